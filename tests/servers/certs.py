"""A throw-away certificate authority and a server certificate for loopback tests.

Made with the openssl command line tool: a CA, and a certificate for
``localhost`` and ``127.0.0.1`` signed by it, so a client can verify the server
with an ordinary ``ssl.SSLContext`` that trusts only the CA.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TestCertificates:
    ca_path: Path
    cert_path: Path
    key_path: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this CA and checks the host name."""
        ctx = ssl.create_default_context(cafile=str(self.ca_path))
        return ctx


def _openssl(*args: str) -> None:
    proc = subprocess.run(
        ["openssl", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{proc.stderr}")


def make_certificates(directory: Path, host: str = "localhost") -> TestCertificates:
    """Create ca.pem, server.pem and server.key in *directory* (readable by all)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = directory / "ca.key"
    ca_pem = directory / "ca.pem"
    key = directory / "server.key"
    csr = directory / "server.csr"
    pem = directory / "server.pem"
    ext = directory / "server.ext"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-keyout", str(ca_key), "-out", str(ca_pem),
        "-subj", "/CN=pop3gui test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}",
    )  # fmt: skip
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName=DNS:{host},IP:127.0.0.1\n"
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(ext), "-out", str(pem),
    )  # fmt: skip
    for path in (ca_pem, pem, key):
        path.chmod(0o644)
    return TestCertificates(ca_path=ca_pem, cert_path=pem, key_path=key)
