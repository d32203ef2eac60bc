"""The life cycle every privately rooted test server shares, POP3 or SMTP.

Courier, GNU Mailutils, Exim and OpenSMTPD conflict with the installed Dovecot
or Postfix, so each runs from unpacked Debian packages in its own namespace
(see ``privroot``), under a temporary root of its own that goes when it stops.
:class:`PrivatePop3Server` and :class:`PrivateMta` add what their kind needs
(certificates and two ports; a port and a Maildir), the servers their
configuration and command line.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from tests.servers.dovecot import wait_for_port
from tests.servers.privroot import NamespacedProcess, PrivateRoot, unpacked_root


class PrivateServer:
    """A real server in a private root; use :meth:`start` or the context manager."""

    name = "server"
    """Names the package cache and the temporary root."""
    packages: Sequence[str] = ()
    host = "127.0.0.1"

    def __init__(self, root: Path | None, log_name: str) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix=f"pop3gui-{self.name}-"))
        self.root.chmod(0o755)
        self.log_path = self.root / log_name
        self.start_seconds = 0.0
        self._private_root: PrivateRoot | None = None
        self._process: NamespacedProcess | None = None

    # -- what a subclass provides -------------------------------------------

    def _prepare(self) -> None:
        """Choose the ports and make what the configuration names, before the namespace exists."""
        raise NotImplementedError

    def _private(self, unpacked: Path) -> PrivateRoot:
        """The namespace's file system, with this server's users and configuration."""
        raise NotImplementedError

    def _argv(self) -> list[str]:
        """The command that runs the server in the foreground inside the namespace."""
        raise NotImplementedError

    def _launched(self) -> None:
        """Finish what needs the started namespace (nothing by default)."""

    def _ports(self) -> tuple[int, ...]:
        """The ports that are open once the server serves."""
        raise NotImplementedError

    def _describe(self) -> str:
        """The state and logs, for a server that did not come up."""
        raise NotImplementedError

    # -- life cycle ---------------------------------------------------------

    def start(self, timeout: float = 20.0) -> Self:
        """Unpack (cached), configure and start; raises PrivateRootError when it cannot be prepared."""
        began = time.monotonic()
        unpacked = unpacked_root(self.name, self.packages)
        self._prepare()
        self._private_root = self._private(unpacked)
        try:
            self._process = self._private_root.start(self._argv(), log_path=self.log_path)
            self._launched()
            for port in self._ports():
                wait_for_port(port, timeout, self._describe, alive=self._process.alive)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        try:
            if process is not None:
                process.stop()
        finally:
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def running(self) -> bool:
        return self._process is not None and self._process.alive()
