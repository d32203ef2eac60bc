"""One message in flight: where its downloaded copy is, and who it says it is.

A message is downloaded into memory, or into a spool file when it is big; it
is identified once (Message-ID, Subject, envelope sender and the duplicate
key) and forgotten as soon as its outcome is recorded -- the POP3 server's
copy stays until DELE.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from pop3gui.core.mail.fingerprint import file_chunks, message_fingerprint
from pop3gui.core.mail.headers import has_value, header_text
from pop3gui.core.mail.messages import header_block, read_header_block
from pop3gui.core.mail.recipients import envelope_sender, parse_headers
from pop3gui.core.smtp.data import MessageSource
from pop3gui.core.state.journal import KEY_PREFIX, uid_key


@dataclass
class InFlight:
    """One message being handled: identity and what we know of it so far."""

    number: int
    uid: str
    size: int
    spool: Path
    message_id: str = ""
    subject: str = ""
    sender: str = ""
    headers: EmailMessage | None = None
    interrupted: bool = False  # a previous submission ended without a recorded outcome
    data: bytes | None = None  # the message itself while it is small enough to stay in memory
    key: str = ""  # duplicate-suppression key, known once the message is identified

    def header_block(self) -> bytes:
        return header_block(io.BytesIO(self.data)) if self.data is not None else read_header_block(self.spool)

    def source(self, prefix: bytes) -> MessageSource:
        """The message for SMTP DATA, after *prefix* (the trace line)."""
        if self.data is not None:
            return MessageSource(prefix=prefix, data=self.data)
        return MessageSource.from_file(self.spool, prefix)

    def content(self) -> bytes | Path:
        return self.data if self.data is not None else self.spool

    def read_bytes(self) -> bytes:
        return self.data if self.data is not None else self.spool.read_bytes()

    def discard(self) -> None:
        """Forget the downloaded copy (the POP3 server's copy is still there until DELE)."""
        if self.data is not None:
            self.data = None
        else:
            self.spool.unlink(missing_ok=True)

    def identify(self, account: str) -> EmailMessage:
        """Read the headers once: identity, subject, envelope sender and duplicate key."""
        if self.headers is None:
            headers = parse_headers(self.header_block())
            self.message_id = header_text(headers, "Message-ID").strip()
            self.subject = header_text(headers, "Subject")
            self.sender = envelope_sender(headers)
            self.headers = headers
            self.key = duplicate_key(account, self, dated=has_value(headers, "Date"))
        return self.headers


def duplicate_key(account: str, msg: InFlight, *, dated: bool) -> str:
    """The journal key under which a message's deliveries are remembered.

    The content fingerprint, shared by every copy of the message in any mailbox.
    A message with neither Message-ID nor Date cannot be told apart from the same
    text sent again later, so only a retry of that very POP3 message (same UIDL,
    same content) is matched.
    """
    fingerprint = message_fingerprint([msg.data] if msg.data is not None else file_chunks(msg.spool))
    if not msg.message_id and not dated:
        return uid_key(account, msg.uid, fingerprint)
    return f"{KEY_PREFIX}{fingerprint}"
