"""An office on loopback: a real POP3 server as the ISP, a real SMTP server as the local server.

Usually Dovecot and Postfix; the compatibility tests put Courier or GNU
Mailutils in the ISP's place and Exim or OpenSMTPD in the local server's.

The ``office`` fixture (tests/conftest.py) builds a config for a temporary ``POP3GUI_HOME``, stores the POP3
passwords in the real (gnome-keyring) Secret Service, and runs cycles of the
real :class:`Connector` in-process, collecting its events.

The office's Dovecot also speaks IMAP (``office.isp.imap_port``, ``imaps_port``,
``create_folder``, ``deliver(user, message, folder)``: :class:`ImapServer`);
:meth:`Office.imap_account_for` makes an IMAPS account on it.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.config.save import save_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.events.model import Event, EventBus, EventId
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.paths import Paths
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import CycleResult

if TYPE_CHECKING:
    from tests.conftest import Pop3User


def make_message(*, to: str = "", cc: str = "", subject: str = "Hello", body: str = "Hi there.\r\n",
                 headers: dict[str, str] | None = None, message_id: str | None = None) -> bytes:
    """A plain RFC 5322 message as an ISP would store it."""
    lines = [
        "Return-Path: <sender@fabrikam.example>",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
        "From: Sender <sender@fabrikam.example>",
        f"To: {to}" if to else "",
        f"Cc: {cc}" if cc else "",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate()}",
        f"Message-ID: {message_id or email.utils.make_msgid(domain='fabrikam.example')}",
    ]
    head = "\r\n".join(line for line in lines if line)
    return (head + "\r\n\r\n" + body).encode("utf-8")


ADMIN = "admin@contoso.com"
ACCEPTED_DOMAINS = ("contoso.com", "contoso.local")
UNKNOWN_USERS = ("ghost@contoso.com",)
MESSAGE_SIZE_LIMIT = 200_000


class IspServer(Protocol):
    """What the tests need of a POP3 server (Dovecot, Courier, GNU Mailutils)."""

    @property
    def pop3s_port(self) -> int: ...
    @property
    def pop3_port(self) -> int: ...
    @property
    def ca_path(self) -> Path: ...
    def deliver(self, user: str, message: bytes) -> str: ...
    def messages(self, user: str) -> list[bytes]: ...


class ImapServer(IspServer, Protocol):
    """What the tests need of an ISP server that also speaks IMAP (Dovecot)."""

    @property
    def imap_port(self) -> int: ...
    @property
    def imaps_port(self) -> int: ...
    def deliver(self, user: str, message: bytes, folder: str = "INBOX") -> str: ...
    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]: ...
    def create_folder(self, user: str, name: str) -> Path: ...
    def folders(self, user: str) -> list[str]: ...


class LocalServer(Protocol):
    """What the tests need of the office's SMTP server (Postfix, Exim, OpenSMTPD)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    def delivered(self) -> list[EmailMessage]: ...
    def wait_for_delivered(self, n: int, timeout: float = 10.0) -> list[EmailMessage]: ...


@dataclass
class Office:
    """One test's connector installation and its servers."""

    home: Path
    isp: IspServer
    local: LocalServer
    config: Config
    events: list[Event] = field(default_factory=list)

    @property
    def paths(self) -> Paths:
        return Paths(self.home / "config.toml", self.home / "state", self.home / "logs")

    def account_for(self, user: Pop3User, name: str, **kw: object) -> AccountConfig:
        """A POP3S account on the ISP's server, trusting its CA."""
        values: dict[str, object] = dict(
            name=name, host="127.0.0.1", port=self.isp.pop3s_port, security="tls",
            ca_file=str(self.isp.ca_path), username=user.name, kind="user",
            deliver_to="alice@contoso.com", timeout_s=20,
        )
        values.update(kw)
        Credentials().set_pop3_password(name, user.password)
        return AccountConfig(**values)  # type: ignore[arg-type]

    @property
    def imap(self) -> ImapServer:
        """The ISP's server as an IMAP server (AttributeError for one that speaks only POP3)."""
        port = getattr(self.isp, "imaps_port", 0)
        if not port:
            raise AttributeError(f"the office's ISP server ({type(self.isp).__name__}) does not speak IMAP")
        return self.isp  # type: ignore[return-value]

    def imap_account_for(self, user: Pop3User, name: str, **kw: object) -> AccountConfig:
        """An IMAPS account (protocol "imap") on the ISP's server, trusting its CA; *kw* as for :meth:`account_for`."""
        values: dict[str, object] = dict(protocol="imap", port=self.imap.imaps_port)
        values.update(kw)
        return self.account_for(user, name, **values)

    def use(self, *accounts: AccountConfig, **config_changes: object) -> Config:
        self.config = replace(self.config, accounts=tuple(accounts), **config_changes)  # type: ignore[arg-type]
        save_config(self.config, self.paths.config_file)
        return self.config

    async def run_cycle(self, *, now_offset_days: float = 0) -> CycleResult:
        bus = EventBus()
        store = EventStore(self.paths.events_db)
        bus.subscribe(store)
        bus.subscribe(self.events.append)
        connector = Connector(self.config, self.paths, bus)
        if now_offset_days:
            real_now = connector.journal.now
            connector.journal.now = lambda: real_now() + now_offset_days * 86400
        try:
            return await connector.run_cycle()
        finally:
            connector.close()
            store.close()

    def ids(self) -> list[int]:
        return [int(e.id) for e in self.events]

    def of(self, eid: EventId) -> list[Event]:
        return [e for e in self.events if e.id == eid]
