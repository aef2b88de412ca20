"""Start-up cost as instructions, not seconds: callgrind's count of the objget CLI downloading
8 MiB from a local nginx (`-q`, whole process) and of `import objget.cli`, per source tree.

    python -m bench.startup_count [NAME=SRC_DIR ...]     (default: this checkout's src/)

Wall time of an 80 ms process swings by a third on a shared machine; the instruction count of
the same run moves by under 0.5 %, so a 1 % difference between two trees is real. Each tree's
bytecode is compiled first, as an install does. Needs valgrind (Debian package `valgrind`).
The count is of user-space instructions of the whole process: the interpreter's own start
(`python -c pass`, printed first) included, system calls and waits not.

Not part of the bench run: the measuring tool behind docs/architecture.md ("Start-up").
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests._servers.nginx import Nginx

from bench.model import PYTHON, REPO

_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(argv: list[str], env: dict[str, str]) -> float:
    """Millions of instructions `argv` runs, by callgrind."""
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"valgrind {' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return int(found.group(1)) / 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("trees", nargs="*", metavar="NAME=SRC_DIR", help="source trees to count")
    a = p.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed: install the Debian package `valgrind`")
    trees = dict(t.split("=", 1) for t in a.trees) or {"this": str(REPO / "src")}
    with tempfile.TemporaryDirectory() as tmp:
        www = Path(tmp, "www")
        www.mkdir()
        Path(www, "8M.bin").write_bytes(os.urandom(8 << 20))
        with Nginx(www, Path(tmp, "nginx")) as web:
            url = f"{web.url}/8M.bin"
            print(f"python -c pass: {instructions([PYTHON, '-c', 'pass'], dict(os.environ)):.1f} M")
            for name, src in trees.items():
                compileall.compile_dir(str(Path(src) / "objget"), quiet=1)
                env = dict(os.environ, PYTHONPATH=str(Path(src).resolve()))
                out = Path(tmp, "out.bin")
                out.unlink(missing_ok=True)
                cli = [PYTHON, "-c", "from objget.cli import main; main()", "-q", url, str(out)]
                run = instructions(cli, env)
                if out.stat().st_size != 8 << 20:
                    raise SystemExit(f"{name}: the download wrote {out.stat().st_size} bytes")
                imp = instructions([PYTHON, "-c", "import objget.cli"], env)
                print(f"{name}: CLI 8 MiB download {run:.1f} M, import objget.cli {imp:.1f} M")
                sys.stdout.flush()


if __name__ == "__main__":
    main()
