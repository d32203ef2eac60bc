"""What the privately rooted mail servers (Exim, OpenSMTPD) have in common.

Each plays the office's local mail server like :class:`PostfixServer`: it runs
from unpacked Debian packages in its own namespace (see ``privroot``), listens
on a free port of 127.0.0.1, and delivers every accepted recipient into one
Maildir, one file per recipient copy. The subclasses say which packages, which
configuration and which command line; this base class keeps the life cycle and
reads what was delivered, so the tests treat every server the same way.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Self

from tests.servers.dovecot import free_port, mail_ids, wait_for_port
from tests.servers.privroot import NamespacedProcess, PrivateRoot, unpacked_root

# Headers naming the envelope recipient of a delivered copy, by preference.
RECIPIENT_HEADERS = ("Delivered-To", "Envelope-to")


def envelope_recipient(msg: EmailMessage) -> str:
    """The envelope recipient a server recorded in a delivered copy ('' if none)."""
    for name in RECIPIENT_HEADERS:
        value = msg.get(name)
        if value is not None:
            return str(value).strip()
    return ""


class PrivateMta:
    """A real MTA in a private root; use :meth:`start` or the context manager."""

    name = "mta"
    packages: Sequence[str] = ()

    def __init__(
        self,
        accepted_domains: Iterable[str] = ("contoso.com",),
        *,
        unknown_users: Iterable[str] = (),
        message_size_limit: int = 10_240_000,
        root: Path | None = None,
    ) -> None:
        self.accepted_domains = [d.lower() for d in accepted_domains]
        self.unknown_users = [a.lower() for a in unknown_users]
        self.message_size_limit = message_size_limit
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix=f"pop3gui-{self.name}-"))
        self.root.chmod(0o755)
        self.maildir = self.root / "mail"
        self.output = self.root / f"{self.name}.out"
        self.host = "127.0.0.1"
        self.port = 0
        self.start_seconds = 0.0
        self._private_root: PrivateRoot | None = None
        self._process: NamespacedProcess | None = None

    # -- what a subclass provides -------------------------------------------

    def _private(self, unpacked: Path) -> PrivateRoot:
        """The namespace's file system, with this server's users and configuration."""
        raise NotImplementedError

    def _argv(self) -> list[str]:
        """The command that runs the server in the foreground inside the namespace."""
        raise NotImplementedError

    def _write_unknown_users(self) -> None:
        raise NotImplementedError

    def _reload_unknown_users(self) -> None:
        """Make the running server see the rewritten list (nothing if it rereads it anyway)."""

    def queued(self) -> int:
        """How many messages (or envelopes) wait in the server's queue."""
        raise NotImplementedError

    def _drop_queue(self) -> None:
        raise NotImplementedError

    def _logs(self) -> list[Path]:
        return [self.output]

    # -- life cycle ---------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Self:
        began = time.monotonic()
        unpacked = unpacked_root(self.name, self.packages)
        uid, gid = mail_ids()
        self.port = free_port()
        for sub in ("", "new", "cur", "tmp"):
            path = self.maildir / sub
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, uid, gid)
        self._write_unknown_users()
        self._private_root = self._private(unpacked)
        try:
            self._process = self._private_root.start(self._argv(), log_path=self.output)
            wait_for_port(self.port, timeout, self._log_tail, alive=self._process.alive)
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

    # -- what was delivered -------------------------------------------------

    def _files(self) -> list[Path]:
        found: list[tuple[float, str, Path]] = []
        for sub in ("new", "cur"):
            directory = self.maildir / sub
            if not directory.is_dir():
                continue
            for entry in os.scandir(directory):
                if entry.is_file():
                    try:
                        found.append((entry.stat().st_mtime, entry.name, Path(entry.path)))
                    except FileNotFoundError:
                        continue
        found.sort()
        return [path for _, _, path in found]

    def delivered_raw(self) -> list[tuple[str, bytes]]:
        """(envelope recipient, message bytes as the server wrote them), oldest first."""
        result = []
        for path in self._files():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            msg = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            result.append((envelope_recipient(msg), data))
        return result

    def delivered(self) -> list[EmailMessage]:
        """Every delivered copy parsed; ``msg["Delivered-To"]`` is its envelope recipient.

        A server that names the recipient otherwise (Exim's ``Envelope-to:``)
        gets a ``Delivered-To:`` added here, so tests read every server alike.
        """
        messages = []
        for recipient, data in self.delivered_raw():
            msg = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            if msg.get("Delivered-To") is None and recipient:
                msg["Delivered-To"] = recipient
            messages.append(msg)
        return messages

    def wait_for_delivered(self, n: int, timeout: float = 10.0) -> list[EmailMessage]:
        """Poll until at least *n* copies are delivered; return them all."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.delivered()
            if len(got) >= n:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{len(got)} of {n} messages delivered after {timeout} s; "
                    f"{self.queued()} still queued\n{self._log_tail()}"
                )
            time.sleep(0.05)

    def clear(self) -> None:
        """Forget everything: drop queued messages and empty the Maildir."""
        if self.queued():
            self._drop_queue()
        for path in self._files():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
