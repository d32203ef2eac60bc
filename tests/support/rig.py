"""A connector installation wired to the scripted POP3 server and the SMTP sink.

Shared by the fault and safety tests in tests/core: :class:`Rig` runs real
:class:`~pop3gui.core.engine.cycle.Connector` cycles and keeps their events.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pop3gui.core.config.model import AccountConfig, Config, DeliveryConfig, LoggingConfig, RecipientPolicy, SmtpConfig
from pop3gui.core.events.model import Event, EventBus, EventId
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.spool import Spool
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import AccountStatus, CycleResult, Phase, StatusObserver
from tests.support.scripted_pop3 import ScriptedPop3Server

ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"
CAROL = "carol@contoso.com"
ADMIN = "admin@contoso.com"
POP3_PASSWORD = "pop3-S3cret!"


def message(subject: str = "Hello", *, to: str = "someone@isp.example", cc: str = "",
            message_id: str | None = None, body: str = "Hi there.\r\n") -> bytes:
    """A plain RFC 5322 message as an ISP stores it (CRLF, ends with CRLF)."""
    lines = [
        "Return-Path: <sender@fabrikam.example>",
        "From: Sender <sender@fabrikam.example>",
        f"To: {to}",
        f"Cc: {cc}" if cc else "",
        f"Subject: {subject}",
        "Date: Mon, 01 Jan 2024 10:00:00 +0000",
        f"Message-ID: {message_id or email.utils.make_msgid(domain='fabrikam.example')}",
    ]
    return ("\r\n".join(line for line in lines if line) + "\r\n\r\n" + body).encode()


class StatusLog:
    """A StatusObserver that keeps what the engine tells it."""

    def __init__(self) -> None:
        self.statuses: list[AccountStatus] = []
        self.cycles: list[CycleResult] = []

    def on_account_status(self, status: AccountStatus) -> None:
        self.statuses.append(status)

    def on_cycle_finished(self, result: CycleResult) -> None:
        self.cycles.append(result)

    def progress(self) -> list[tuple[Phase, int, int, int]]:
        return [(s.phase, s.done, s.total, s.size) for s in self.statuses]


class StaticPasswords:
    """Hands the Connector fixed passwords.

    This is not a mock of behaviour under test: the keyring (Credentials) is
    exercised against a real Secret Service in tests/integration; the Connector
    only needs an object with these two methods to get the passwords.
    """

    def __init__(self, pop3: str = POP3_PASSWORD, smtp: str = "") -> None:
        self.pop3 = pop3
        self.smtp = smtp

    def pop3_password(self, account: str) -> str:
        return self.pop3

    def smtp_password(self, username: str) -> str:
        return self.smtp


@dataclass
class Rig:
    """One connector installation under tmp_path, pointed at the two test servers."""

    home: Path
    pop: ScriptedPop3Server
    smtp_port: int
    account: AccountConfig
    passwords: StaticPasswords = field(default_factory=StaticPasswords)
    smtp_username: str = ""  # non-empty: the connector logs in to the SMTP sink
    smtp_security: str = "none"
    smtp_ca_file: str = ""
    observer: StatusObserver | None = None  # given the engine's account status and cycle results
    local_domains: tuple[str, ...] = ("contoso.com",)  # the recipient policy's domains
    undeliverable_to: str = ADMIN  # "": no undeliverable mailbox, refused mail goes to quarantine
    log_level: str = "debug"  # every step, so tests can hook into any of them
    events: list[Event] = field(default_factory=list)
    cycle_events: list[Event] = field(default_factory=list)

    @property
    def paths(self) -> Paths:
        return Paths(self.home / "config.toml", self.home / "state", self.home / "logs")

    @property
    def config(self) -> Config:
        return Config(
            smtp=SmtpConfig(host="127.0.0.1", port=self.smtp_port, timeout_s=5, username=self.smtp_username,
                            security=self.smtp_security, ca_file=self.smtp_ca_file),
            delivery=DeliveryConfig(undeliverable_to=self.undeliverable_to),
            policies=(RecipientPolicy("Default Policy", self.local_domains, "contoso.com"),),
            accounts=(self.account,),
            logging=LoggingConfig(level=self.log_level),
        )

    async def cycle(self, on_event: Callable[[Connector, Event], None] | None = None) -> CycleResult:
        """One run of the real Connector; its events land in ``events`` and ``cycle_events``."""
        self.cycle_events = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        bus.subscribe(self.cycle_events.append)
        connector = Connector(self.config, self.paths, bus, credentials=self.passwords,  # type: ignore[arg-type]
                              observer=self.observer)
        if on_event is not None:
            hook = on_event
            bus.subscribe(lambda event: hook(connector, event))
        try:
            return await connector.run_cycle()
        finally:
            connector.close()

    def of(self, eid: EventId, *, this_cycle: bool = False) -> list[Event]:
        return [e for e in (self.cycle_events if this_cycle else self.events) if e.id == eid]

    def one(self, eid: EventId) -> Event:
        found = self.of(eid)
        assert found, f"no {eid.name} event; got {[e.id.name for e in self.events]}"
        return found[0]

    def quarantined(self) -> list[tuple[bytes, dict[str, object]]]:
        folder = self.paths.quarantine_dir
        return [(eml.read_bytes(), json.loads(eml.with_suffix(".json").read_text()))
                for eml in sorted(folder.glob("*.eml"))] if folder.exists() else []

    def spool_is_empty(self) -> bool:
        return Spool(self.paths.spool_dir).leftovers() == []


def account(port: int, **kw: object) -> AccountConfig:
    values: dict[str, object] = dict(name="alice", host="127.0.0.1", port=port, security="none",
                                     username="user", kind="user", deliver_to=ALICE, timeout_s=5)
    values.update(kw)
    return AccountConfig(**values)  # type: ignore[arg-type]


def make_rig(tmp_path: Path, pop: ScriptedPop3Server, smtp_port: int, **account_kw: object) -> Rig:
    return Rig(home=tmp_path / "home", pop=pop, smtp_port=smtp_port, account=account(pop.port, **account_kw))
