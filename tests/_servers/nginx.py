"""A real static HTTP(S) server for tests: nginx serving a directory on a free 127.0.0.1 port.

```python
with Nginx(root, tmp / "nginx", extra="limit_rate 20m;") as web:
    url = f"{web.url}/big.bin"            # real Range/ETag/If-Match semantics
    web.reload(extra="return 403;")       # switch the fault, same port
```

`extra` goes into the `location /` block: `max_ranges 0;` (200 to a Range),
`limit_rate_after 64k; limit_rate 2k;` (trickle), `return 503;`, `access_log PATH;`...
With `tls=True` a throwaway CA and a server certificate for 127.0.0.1/localhost are made
with the `openssl` CLI; trust `ca_path` to verify. Everything (config, logs, temp files,
pid file, keys) lives under `workdir`. Stopped by PID.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path
from types import TracebackType

from .util import free_port, tail, wait_until

__all__ = ["Nginx", "find_nginx", "make_certificates"]

START_TIMEOUT = 30.0
_PROBE = "/.objget-generation"


def find_nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("nginx not found: install the Debian package nginx-light")


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl CLI not found: install the Debian package openssl")
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, ::1 and localhost.

    Returns (ca.pem, server.pem, server.key), all under `directory`.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "ca.cnf").write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = objget test CA\n"
        "[ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n"
    )
    (d / "server.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = IP:127.0.0.1, IP:::1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-config", "ca.cnf", "-extensions", "ca",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "7", cwd=d)  # fmt: skip
    _openssl("req", "-new", *ec, "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr", cwd=d)  # fmt: skip
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-extfile", "server.ext", "-days", "7",
             "-out", "server.pem", cwd=d)  # fmt: skip
    return d / "ca.pem", d / "server.pem", d / "server.key"


class Nginx:
    """nginx serving `root` read-only, with `extra` directives in `location /`."""

    def __init__(self, root: Path, workdir: Path, *, extra: str = "", tls: bool = False) -> None:
        self.root = Path(root).resolve()
        self.workdir = Path(workdir).resolve()
        self.extra = extra
        self.tls = tls
        self.port = 0
        self.url = ""
        self.ca_path: Path | None = None
        self.error_log = self.workdir / "error.log"
        self.access_log = self.workdir / "access.log"
        self._conf = self.workdir / "nginx.conf"
        self._cert: tuple[Path, Path] | None = None
        self._generation = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("nginx is not started")
        return self._proc.pid

    def start(self) -> Nginx:
        if self._proc is not None:
            raise RuntimeError("nginx already started")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.tls and self._cert is None:
            ca, cert, key = make_certificates(self.workdir / "tls")
            self.ca_path, self._cert = ca, (cert, key)
        self.port = free_port()
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"
        self._write_config()
        cmd = [find_nginx(), "-e", str(self.error_log), "-p", str(self.workdir),
               "-c", str(self._conf), "-g", "daemon off;"]  # fmt: skip
        with open(self.workdir / "nginx.out", "wb") as out:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            self._wait_generation(START_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def reload(self, *, extra: str) -> None:
        """Replace the `location /` directives on the running server (same port, same PID).

        Returns once new connections are served by the new configuration and the old
        workers have stopped taking requests (in-flight responses may still be finishing).
        """
        if self._proc is None:
            raise RuntimeError("nginx is not started")
        previous = self.extra
        self.extra = extra
        self._generation += 1
        self._write_config()
        check = subprocess.run(
            [find_nginx(), "-t", "-q", "-e", str(self.error_log), "-p", str(self.workdir),
             "-c", str(self._conf)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if check.returncode != 0:
            self.extra = previous
            self._generation -= 1
            self._write_config()
            raise RuntimeError(f"nginx rejects extra={extra!r}:\n{check.stderr}")
        old_workers = _children(self._proc.pid)
        os.kill(self._proc.pid, signal.SIGHUP)
        self._wait_generation(START_TIMEOUT)
        # Old workers keep serving a kept-alive connection until they process the shutdown
        # (then they close idle connections): wait for that, not for their in-flight requests.
        wait_until(
            lambda: all(_retiring(pid) for pid in old_workers),
            START_TIMEOUT,
            what="old nginx workers to begin shutting down",
        )
        time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master's PID); SIGKILL it and its workers if stuck."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
                return
            except subprocess.TimeoutExpired:
                for child in _children(proc.pid):
                    _kill(child)
                _kill(proc.pid)
        proc.wait(timeout=15)

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _write_config(self) -> None:
        w = self.workdir
        temps = "\n".join(
            f"    {name}_temp_path {w / ('tmp-' + name)};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root root;" if os.geteuid() == 0 else ""
        listen = f"127.0.0.1:{self.port}" + (" ssl" if self.tls else "")
        tls = ""
        if self._cert is not None:
            tls = f"ssl_certificate {self._cert[0]};\n        ssl_certificate_key {self._cert[1]};"
        self._conf.write_text(f"""\
{user}
worker_processes 2;
pid {w / "nginx.pid"};
error_log {self.error_log} warn;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    access_log {self.access_log};
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
{temps}
    server {{
        listen {listen};
        server_name localhost;
        {tls}
        root {self.root};
        location = {_PROBE} {{
            access_log off;
            default_type text/plain;
            return 200 "{self._generation}";
        }}
        location / {{
            {self.extra}
        }}
    }}
}}
""")

    def _probe(self) -> str | None:
        conn: http.client.HTTPConnection
        if self.tls:
            assert self.ca_path is not None
            ctx = ssl.create_default_context(cafile=str(self.ca_path))
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", _PROBE)
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace")
            return body if resp.status == 200 else None
        except OSError:
            return None
        finally:
            conn.close()

    def _wait_generation(self, timeout: float) -> None:
        want = str(self._generation)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited with {self._proc.returncode}; {self.error_log}:\n"
                    f"{tail(self.error_log)}\n{tail(self.workdir / 'nginx.out')}"
                )
            if self._probe() == want:
                return
            time.sleep(0.05)
        raise RuntimeError(
            f"nginx on {self.url} not serving generation {want} after {timeout:g} s; "
            f"{self.error_log}:\n{tail(self.error_log)}"
        )


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _retiring(pid: int) -> bool:
    """An old worker is gone, a zombie, or has retitled itself "... is shutting down"."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z" or b"shutting down" in cmdline or not cmdline


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
