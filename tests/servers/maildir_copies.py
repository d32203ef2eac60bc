"""Reading Maildirs in the tests: what a test MTA delivered, and what a POP3 server still holds.

Postfix, Exim and OpenSMTPD each play the office's local mail server and
deliver every accepted recipient into one Maildir. They name the envelope
recipient in different headers and keep different queues, but the tests read
what arrived the same way whichever server took it; this mixin is that one way.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import mailbox
import os
import time
from email.message import EmailMessage
from pathlib import Path

# Headers naming the envelope recipient of a delivered copy, by preference.
RECIPIENT_HEADERS = ("Delivered-To", "Envelope-to")


def envelope_recipient(msg: EmailMessage) -> str:
    """The envelope recipient a server recorded in a delivered copy ('' if none)."""
    for name in RECIPIENT_HEADERS:
        value = msg.get(name)
        if value is not None:
            return str(value).strip()
    return ""


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def mailbox_messages(path: Path) -> list[bytes]:
    """The messages a POP3 server's user Maildir still holds, oldest first.

    The server may remove or rename a file while it is read (a DELE committed,
    new/ moved to cur/): such a message is skipped, not an error.
    """
    box = mailbox.Maildir(str(path), factory=None, create=False)
    try:
        entries = []
        for key in box.keys():
            try:
                stamp = box.get_message(key).get_date()  # file mtime = delivery time
                data = box.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue
            entries.append((stamp, key, data))
    finally:
        box.close()
    entries.sort(key=lambda e: (e[0], e[1]))
    return [data for _, _, data in entries]


class MaildirCopies:
    """Mixin for a server delivering into ``self.maildir``.

    The server class says how many messages still wait in its queue, how to
    drop them and what its logs end with; the rest is here.
    """

    maildir: Path

    def queued(self) -> int:
        """How many messages (or envelopes) wait in the server's queue."""
        raise NotImplementedError

    def _drop_queue(self) -> None:
        raise NotImplementedError

    def _log_tail(self) -> str:
        raise NotImplementedError

    def _files(self) -> list[Path]:
        """The delivered files in new/ and cur/, oldest first (files vanishing meanwhile are skipped)."""
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
            result.append((envelope_recipient(_parse(data)), data))
        return result

    def delivered(self) -> list[EmailMessage]:
        """Every delivered copy parsed; ``msg["Delivered-To"]`` is its envelope recipient.

        A server that names the recipient otherwise (Exim's ``Envelope-to:``)
        gets a ``Delivered-To:`` added here, so tests read every server alike.
        """
        messages = []
        for recipient, data in self.delivered_raw():
            msg = _parse(data)
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
