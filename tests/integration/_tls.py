"""TLS helpers for the HTTPS tests: certificates made with the `openssl` CLI, and an nginx
that serves a chosen certificate and logs each request's connection.

```python
ca = make_ca(tmp / "ca")                                   # CertSet(cert=ca.pem, key=ca.key)
bad = sign(ca, tmp / "x", "expired", san="IP:127.0.0.1",
           not_before="20200101000000Z", not_after="20200201000000Z")
with TlsNginx(root, tmp / "ng", cert=bad, ca=ca.cert) as web:
    ...
    for entry in access_entries(web.access_log): entry.connection, entry.reused
```

`openssl x509 -req` of OpenSSL 3.0 cannot set past validity dates (no `-not_before`), so
certificates with chosen dates are signed with `openssl ca -startdate/-enddate`.
"""

from __future__ import annotations

import http.client
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .._servers.nginx import _PROBE, Nginx

__all__ = ["AccessEntry", "CertSet", "TlsNginx", "access_entries", "make_ca", "sign"]

SAN_LOCAL = "IP:127.0.0.1, IP:::1, DNS:localhost"

# $connection: nginx's serial number of the TCP connection; "r" in $ssl_session_reused marks a
# resumed TLS session (ticket or cache).
_LOG_FORMAT = (
    "log_format objget_tls '$connection $connection_requests $ssl_session_reused "
    '$ssl_protocol $status $body_bytes_sent "$http_range"\';'
)


@dataclass(frozen=True)
class CertSet:
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl CLI not found: install the Debian package openssl")
    done = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")


def make_ca(directory: Path, name: str = "objget test CA") -> CertSet:
    """A throwaway CA (self-signed, CA:TRUE), valid for a week."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "ca.cnf").write_text(
        f"[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {name}\n"
        "[ext]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n"
    )
    _openssl("req", "-x509", *_EC, "-config", "ca.cnf", "-extensions", "ext",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "7", cwd=d)  # fmt: skip
    return CertSet(d / "ca.pem", d / "ca.key")


def self_signed(directory: Path, *, san: str = SAN_LOCAL) -> CertSet:
    """A self-signed server certificate (CA:FALSE) for `san`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "self.cnf").write_text(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = 127.0.0.1\n"
        f"[ext]\nbasicConstraints = critical, CA:FALSE\nsubjectAltName = {san}\n"
        "extendedKeyUsage = serverAuth\n"
    )
    _openssl("req", "-x509", *_EC, "-config", "self.cnf", "-extensions", "ext",
             "-keyout", "self.key", "-out", "self.pem", "-days", "7", cwd=d)  # fmt: skip
    return CertSet(d / "self.pem", d / "self.key")


def sign(
    ca: CertSet,
    directory: Path,
    name: str,
    *,
    san: str = SAN_LOCAL,
    not_before: str | None = None,
    not_after: str | None = None,
) -> CertSet:
    """A server certificate for `san` signed by `ca`; dates as YYYYMMDDHHMMSSZ (UTC),
    default: valid from now for a week."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        f"extendedKeyUsage = serverAuth\nsubjectAltName = {san}\n"
        "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n"
    )
    _openssl("req", "-new", *_EC, "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
    db = d / f"{name}-db"
    (db / "new").mkdir(parents=True, exist_ok=True)
    (db / "index.txt").write_text("")
    (db / "serial").write_text("1000\n")
    (d / f"{name}-ca.cnf").write_text(
        f"[ca]\ndefault_ca = test\n[test]\ndatabase = {db / 'index.txt'}\n"
        f"new_certs_dir = {db / 'new'}\nserial = {db / 'serial'}\ndefault_md = sha256\n"
        "policy = any\nunique_subject = no\ndefault_days = 7\n[any]\ncommonName = supplied\n"
    )
    dates: list[str] = []
    if not_before:
        dates += ["-startdate", not_before]
    if not_after:
        dates += ["-enddate", not_after]
    _openssl("ca", "-batch", "-notext", "-config", f"{name}-ca.cnf",
             "-cert", str(ca.cert), "-keyfile", str(ca.key), "-in", f"{name}.csr",
             "-out", f"{name}.pem", "-extfile", f"{name}.ext", *dates, cwd=d)  # fmt: skip
    return CertSet(d / f"{name}.pem", d / f"{name}.key")


class TlsNginx(Nginx):
    """`Nginx(tls=True)` serving `cert` (default: the fixture's own CA and certificate), with
    an access log that names each request's connection and TLS session reuse."""

    def __init__(
        self,
        root: Path,
        workdir: Path,
        *,
        extra: str = "",
        cert: CertSet | None = None,
        ca: Path | None = None,
    ) -> None:
        super().__init__(root, workdir, extra=extra, tls=True)
        self._custom = cert is not None
        if cert is not None:
            self._cert = (cert.cert, cert.key)
            self.ca_path = ca

    def _probe(self) -> str | None:
        # a deliberately bad certificate must not keep the readiness probe from passing
        if not self._custom:
            return super()._probe()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=2, context=ctx)
        try:
            conn.request("GET", _PROBE)
            resp = conn.getresponse()
            return resp.read().decode(errors="replace") if resp.status == 200 else None
        except OSError:
            return None
        finally:
            conn.close()

    def _write_config(self) -> None:
        super()._write_config()
        text = self._conf.read_text()
        plain = f"access_log {self.access_log};"
        if plain not in text:
            raise RuntimeError(f"nginx.conf changed shape; cannot add the log format:\n{text}")
        self._conf.write_text(
            text.replace(plain, f"{_LOG_FORMAT}\n    access_log {self.access_log} objget_tls;")
        )


@dataclass(frozen=True)
class AccessEntry:
    connection: int
    request_no: int
    reused: bool
    protocol: str
    status: int
    sent: int
    range: str


def access_entries(log: Path, skip: int = 0) -> list[AccessEntry]:
    """The requests in a TlsNginx access log, after the first `skip` lines."""
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines()[skip:]:
        conn, reqno, reused, proto, status, sent, rng = line.split(" ", 6)
        out.append(
            AccessEntry(
                connection=int(conn),
                request_no=int(reqno),
                reused=reused == "r",
                protocol=proto,
                status=int(status),
                sent=int(sent),
                range=rng.strip('"'),
            )
        )
    return out
