"""What the privately rooted mail servers (Exim, OpenSMTPD) have in common.

Each plays the office's local mail server like :class:`PostfixServer`: it runs
from unpacked Debian packages in its own namespace (see ``privroot``), listens
on a free port of 127.0.0.1, and delivers every accepted recipient into one
Maildir, one file per recipient copy. The subclasses say which packages, which
configuration and which command line; :class:`PrivateServer` keeps the life
cycle (as for the POP3 servers), this base class the port, the Maildir and the
unknown users, and :class:`MaildirCopies` (shared with Postfix) reads what was
delivered, so the tests treat every server the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from tests.servers.dovecot import free_port, mail_ids
from tests.servers.maildir_copies import MaildirCopies
from tests.servers.private_server import PrivateServer


class PrivateMta(PrivateServer, MaildirCopies):
    """A real MTA in a private root; use :meth:`start` or the context manager."""

    name = "mta"

    def __init__(
        self,
        accepted_domains: Iterable[str] = ("contoso.com",),
        *,
        unknown_users: Iterable[str] = (),
        message_size_limit: int = 10_240_000,
        root: Path | None = None,
    ) -> None:
        super().__init__(root, f"{self.name}.out")
        self.accepted_domains = [d.lower() for d in accepted_domains]
        self.unknown_users = [a.lower() for a in unknown_users]
        self.message_size_limit = message_size_limit
        self.maildir = self.root / "mail"
        self.output = self.log_path
        self.port = 0

    # -- what a subclass provides -------------------------------------------
    # (PrivateServer's _private() and _argv(), MaildirCopies' queued() and _drop_queue())

    def _write_unknown_users(self) -> None:
        raise NotImplementedError

    def _reload_unknown_users(self) -> None:
        """Make the running server see the rewritten list (nothing if it rereads it anyway)."""

    def _logs(self) -> list[Path]:
        return [self.output]

    # -- life cycle (PrivateServer.start calls these) ------------------------

    def start(self, timeout: float = 30.0) -> Self:
        """As for every private server, with the longer time an MTA has always been given."""
        return super().start(timeout)

    def _prepare(self) -> None:
        uid, gid = mail_ids()
        self.port = free_port()
        for sub in ("", "new", "cur", "tmp"):
            path = self.maildir / sub
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, uid, gid)
        self._write_unknown_users()

    def _ports(self) -> tuple[int, ...]:
        return (self.port,)

    def _describe(self) -> str:
        return self._log_tail()

    def _log_tail(self) -> str:
        parts = []
        for path in self._logs():
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            parts.append(f"{path.name}:\n{text[-2000:]}")
        return "\n".join(parts) or "(no log)"

    def set_unknown_users(self, addresses: Iterable[str]) -> None:
        """Replace the recipients this server refuses as unknown users."""
        self.unknown_users = [a.lower() for a in addresses]
        self._write_unknown_users()
        if self.running():
            self._reload_unknown_users()
