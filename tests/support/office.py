"""An office on loopback: real Dovecot as the ISP, real Postfix as the local server.

The ``office`` fixture (tests/conftest.py) builds a config for a temporary ``POP3GUI_HOME``, stores the POP3
passwords in the real (gnome-keyring) Secret Service, and runs cycles of the
real :class:`Connector` in-process, collecting its events.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pop3gui.core.config import AccountConfig, Config, save_config
from pop3gui.core.credentials import Credentials
from pop3gui.core.events import Event, EventBus, EventId
from pop3gui.core.eventstore import EventStore
from pop3gui.core.paths import Paths
from pop3gui.core.worker import Connector, CycleResult
from tests.servers.dovecot import DovecotServer
from tests.servers.postfix import PostfixServer

if TYPE_CHECKING:
    from tests.conftest import Pop3User

ADMIN = "admin@contoso.com"


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


@dataclass
class Office:
    """One test's connector installation and its servers."""

    home: Path
    dovecot: DovecotServer
    postfix: PostfixServer
    config: Config
    events: list[Event] = field(default_factory=list)

    @property
    def paths(self) -> Paths:
        return Paths(self.home / "config.toml", self.home / "state", self.home / "logs")

    def account_for(self, user: Pop3User, name: str, **kw: object) -> AccountConfig:
        """A POP3S account on the test Dovecot, trusting its CA."""
        values: dict[str, object] = dict(
            name=name, host="127.0.0.1", port=self.dovecot.pop3s_port, security="tls",
            ca_file=str(self.dovecot.ca_path), username=user.name, kind="user",
            deliver_to="alice@contoso.com", timeout_s=20,
        )
        values.update(kw)
        Credentials().set_pop3_password(name, user.password)
        return AccountConfig(**values)  # type: ignore[arg-type]

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
