"""The stream controller's trace of one objget CLI run: each change of the number of streams,
when (seconds since the process started) and at how much process CPU, with its reason.

```
python -m bench.stream_trace URL DEST [objget args...]      # prints the trace
```

`bench.profile_https --trace` runs this once per objget mode. The run is the CLI's own
(`objget.cli.run`, the garbage collector paused as `main` does) with a log handler on the
"objget" logger that keeps only the controller's "streams a -> b: reason" records, stamped
with `time.monotonic()` and `time.process_time()` since start; the last line is the whole
run's wall and CPU time.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time

__all__ = ["parse_trace", "trace_command"]

_START = time.monotonic()


class _Stamp(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("streams "):
            return False
        record.since = time.monotonic() - _START
        record.cpu = time.process_time()
        return True


def trace_command(python: str, argv: list[str]) -> list[str]:
    """The command line that runs objget's CLI with `argv` under this tracer."""
    return [python, "-m", "bench.stream_trace", *argv]


def parse_trace(stderr: str) -> list[str]:
    """The trace lines of a run's stderr (its other output dropped)."""
    return [ln for ln in stderr.splitlines() if ln.startswith("trace ")]


def run(argv: list[str], env: dict[str, str], python: str = sys.executable) -> list[str]:
    done = subprocess.run(
        trace_command(python, argv),
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"traced run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return parse_trace(done.stderr)


def main() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Stamp())
    handler.setFormatter(logging.Formatter("trace %(since)6.3f s  cpu %(cpu)6.3f s  %(message)s"))
    log = logging.getLogger("objget")
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    from objget.cli import run as cli_run
    from objget.cli._process import pause_gc

    pause_gc()  # as objget.cli.main does
    code = cli_run(["-q", *sys.argv[1:]])
    took, cpu = time.monotonic() - _START, time.process_time()
    print(f"trace {took:6.3f} s  cpu {cpu:6.3f} s  end (exit {code})", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
