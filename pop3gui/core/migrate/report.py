"""The vocabulary of an import: mailboxes found in another program's file, passwords, and notes.

Both readers (fetchmail, getmail) describe what they found as
:class:`Mailbox` values in pop3gui's own terms, and everything they could not
carry over as a :class:`Note` with the file and line and what to do instead;
:mod:`.mapping` then builds the configuration from the mailboxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pop3gui.core.config.model import DEFAULT_ENVELOPE_HEADERS

__all__ = ["Mailbox", "Note", "Secret", "ImportPlan"]


@dataclass(frozen=True)
class Note:
    """Something the import did not carry over (``unmapped``) or changed on the way (not ``unmapped``)."""

    file: str
    line: int
    what: str
    fix: str
    unmapped: bool = True

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.what}" + (f"\n    what to do: {self.fix}" if self.fix else "")


@dataclass(frozen=True)
class Secret:
    """A password found in the file, for the keyring entry of ``account`` (never for the config file)."""

    account: str
    password: str
    file: str
    line: int
    smtp_username: str = ""  # set: the SMTP login's password instead of an account's

    def describe(self) -> str:
        who = f"the SMTP login {self.smtp_username!r}" if self.smtp_username else f"account {self.account!r}"
        return f"{self.file}:{self.line}: the password of {who}"


@dataclass(frozen=True)
class Mailbox:
    """One remote mailbox as another program fetched it, in pop3gui's terms."""

    file: str
    line: int
    host: str
    username: str
    protocol: str = "pop3"
    port: int = 0  # 0: the usual port of the protocol and security
    security: str = "tls"
    verify_tls: bool = True
    ca_file: str = ""
    password: str = ""
    password_line: int = 0
    auth: str = "password"
    sasl: str = "xoauth2"
    deliver_to: str = ""  # a user mailbox; "" makes a global (multidrop) mailbox
    envelope_headers: tuple[str, ...] = DEFAULT_ENVELOPE_HEADERS
    local_domains: tuple[str, ...] = ()
    leave_on_server: bool = False
    delete_after_days: int = 0
    folders: tuple[str, ...] = ("INBOX",)
    max_message_kb: int = 0  # 0: no limit of its own
    timeout_s: float = 0  # 0: pop3gui's default
    enabled: bool = True
    smtp_host: str = ""  # "" : the program's default (this machine)
    smtp_port: int = 0
    smtp_username: str = ""
    smtp_password: str = ""


@dataclass(frozen=True)
class ImportPlan:
    """What one file holds: its mailboxes, global settings and the notes of the reader."""

    kind: str  # "fetchmail" or "getmail"
    files: tuple[str, ...]
    mailboxes: tuple[Mailbox, ...] = ()
    notes: tuple[Note, ...] = ()
    interval_min: int = 0  # 0: not given
    undeliverable_to: str = ""
    extra: dict[str, str] = field(default_factory=dict)
