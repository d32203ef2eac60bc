"""What the privately rooted POP3 servers (Courier, GNU Mailutils) have in common.

Each plays the ISP's POP3 server like :class:`DovecotServer`: it runs from
unpacked Debian packages in its own namespace (:class:`PrivateServer` keeps
that life cycle), with plain POP3 (STLS) on ``pop3_port`` and implicit TLS on
``pop3s_port`` of 127.0.0.1, certified by a CA of its own. The subclasses say
which packages, which configuration, which command line, and how users and
their mailboxes are made, so the tests treat every server the same way.
:class:`PrivateMta` does the same for the SMTP side.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from tests.servers.certs import TestCertificates, make_certificates
from tests.servers.dovecot import free_port, mail_ids
from tests.servers.private_server import PrivateServer


class PrivatePop3Server(PrivateServer):
    """A real POP3 server in a private root; use :meth:`start` or the context manager."""

    name = "pop3"
    label = "pop3"
    """Names the server in start-up errors."""
    log_name = "pop3.log"

    def __init__(self, root: Path | None = None) -> None:
        super().__init__(root, self.log_name)
        self.mail_dir = self.root / "mail"
        self.pop3_port = 0
        self.pop3s_port = 0
        self.certs: TestCertificates | None = None
        self._uid, self._gid = mail_ids()

    @property
    def ca_path(self) -> Path:
        assert self.certs is not None, "server not started"
        return self.certs.ca_path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this server's CA (host name checked)."""
        assert self.certs is not None, "server not started"
        return self.certs.client_context()

    # -- life cycle (PrivateServer.start calls these) ------------------------

    def _prepare(self) -> None:
        self.certs = make_certificates(self.root / "tls")
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        while self.pop3s_port == self.pop3_port:
            self.pop3s_port = free_port()

    def _ports(self) -> tuple[int, ...]:
        return (self.pop3_port, self.pop3s_port)

    def _describe(self) -> str:
        if self._process is None:
            return "not started"
        state = "running" if self._process.alive() else f"exited with {self._process.popen.returncode}"
        return f"{self.label} {state}; log:\n{self._process.log_tail()}"

    def _mail_owned_dir(self, path: Path, mode: int) -> None:
        """Create *path* (if missing) owned by the mail user, with *mode*."""
        path.mkdir(exist_ok=True)
        os.chown(path, self._uid, self._gid)
        path.chmod(mode)
