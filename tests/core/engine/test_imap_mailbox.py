"""The IMAP session of the engine against the real Dovecot IMAP server and an SMTP sink.

Each test runs the real Connector: download, deliver, journal, then delete,
move or keep, and checks the folders on disk and what the sink received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from pop3gui.core.config.model import AccountConfig, Config, DeliveryConfig, LoggingConfig, RecipientPolicy, SmtpConfig
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import CycleResult
from pop3gui.core.events.model import Event, EventBus, EventId, Outcome
from pop3gui.core.failures import Failure
from pop3gui.core.state.journal import FLAGGED, Journal
from pop3gui.core.state.paths import Paths
from tests.servers.dovecot import DovecotServer
from tests.servers.pop3_fixtures import ImapUser
from tests.support.rig import ADMIN, ALICE, StaticPasswords, message
from tests.support.smtp_sink import SmtpSink


@dataclass
class ImapRig:
    """A connector installation under tmp_path reading one Dovecot IMAP mailbox."""

    home: Path
    server: DovecotServer
    user: ImapUser
    sink: SmtpSink
    account: AccountConfig
    events: list[Event] = field(default_factory=list)

    @property
    def paths(self) -> Paths:
        return Paths(self.home / "config.toml", self.home / "state", self.home / "logs")

    @property
    def config(self) -> Config:
        return Config(smtp=SmtpConfig(host="127.0.0.1", port=self.sink.port, timeout_s=5),
                      delivery=DeliveryConfig(undeliverable_to=ADMIN),
                      policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
                      accounts=(self.account,), logging=LoggingConfig(level="debug"))

    def connector(self) -> Connector:
        bus = EventBus()
        bus.subscribe(self.events.append)
        return Connector(self.config, self.paths, bus,
                         credentials=StaticPasswords(self.user.password))  # type: ignore[arg-type]

    async def cycle(self) -> CycleResult:
        connector = self.connector()
        try:
            return await connector.run_cycle()
        finally:
            connector.close()

    def of(self, eid: EventId) -> list[Event]:
        return [e for e in self.events if e.id == eid]

    def deliver(self, data: bytes, folder: str = "INBOX") -> None:
        self.server.deliver(self.user.name, data, folder)

    def left(self, folder: str = "INBOX") -> list[bytes]:
        return self.server.messages(self.user.name, folder)

    def subjects(self) -> list[str]:
        return sorted(r.content.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for r in self.sink.received)


@pytest.fixture
def rig(tmp_path: Path, dovecot_imap: DovecotServer, imap_user: ImapUser, sink: SmtpSink) -> Iterator[ImapRig]:
    account = AccountConfig(name="office", host="127.0.0.1", port=imap_user.imap_port, security="starttls",
                            ca_file=str(imap_user.ca_path), username=imap_user.name, kind="user", deliver_to=ALICE,
                            protocol="imap", timeout_s=10)
    yield ImapRig(tmp_path / "home", dovecot_imap, imap_user, sink, account)


def use(rig: ImapRig, **changes: object) -> None:
    rig.account = replace(rig.account, **changes)  # type: ignore[arg-type]


async def test_delete_delivers_every_message_then_expunges_it(rig: ImapRig) -> None:
    for n in range(3):
        rig.deliver(message(f"m{n}"))
    result = await rig.cycle()
    assert rig.subjects() == ["m0", "m1", "m2"]
    assert result.accounts[0].delivered == 3 and result.accounts[0].deleted == 3
    assert rig.left() == []
    assert [e.outcome for e in rig.events if e.outcome] == [Outcome.DELIVERED] * 3
    assert Journal(rig.paths.journal_db).records("office") == {}  # forgotten once expunged


async def test_every_listed_folder_is_fetched_and_a_missing_one_is_explained(rig: ImapRig) -> None:
    rig.server.create_folder(rig.user.name, "Sales/EU")
    use(rig, folders=("INBOX", "Nowhere", "Sales/EU"))
    rig.deliver(message("inbox"))
    rig.deliver(message("sales"), "Sales/EU")
    result = await rig.cycle()
    assert rig.subjects() == ["inbox", "sales"]
    failure = [e for e in rig.events if e.diagnosis is Failure.FOLDER_MISSING]
    assert len(failure) == 1 and "Nowhere" in failure[0].text and "Test" in failure[0].fix
    assert result.accounts[0].failed  # said on the account, though the other folders went on


async def test_move_creates_the_folder_and_moves_handled_mail_there(rig: ImapRig) -> None:
    use(rig, after_delivery="move", move_to="Delivered")
    rig.deliver(message("a"))
    rig.deliver(message("b"))
    await rig.cycle()
    assert rig.subjects() == ["a", "b"]
    assert rig.left() == []
    assert len(rig.left("Delivered")) == 2
    assert rig.of(EventId.MESSAGE_MOVED)


async def test_keep_delivers_once_and_leaves_the_messages_unread(rig: ImapRig) -> None:
    use(rig, after_delivery="keep")
    rig.deliver(message("kept"))
    await rig.cycle()
    await rig.cycle()
    assert rig.subjects() == ["kept"]
    assert len(rig.left()) == 1
    # BODY.PEEK[]: the message is not marked \Seen (Maildir flag S in the file name).
    cur = [p.name for p in (rig.user.maildir / "cur").iterdir()]
    assert cur and all(":2," not in name or "S" not in name.split(":2,", 1)[1] for name in cur)


async def test_leave_on_server_removes_after_the_configured_days(rig: ImapRig) -> None:
    use(rig, leave_on_server=True, delete_after_days=2)
    rig.deliver(message("old"))
    await rig.cycle()
    assert len(rig.left()) == 1
    journal = Journal(rig.paths.journal_db)
    journal.now = lambda: time.time() + 3 * 86400  # type: ignore[method-assign]
    connector = rig.connector()
    connector.journal.now = journal.now  # type: ignore[method-assign]
    try:
        await connector.run_cycle()
    finally:
        connector.close()
    assert rig.left() == []
    assert rig.subjects() == ["old"]


async def test_a_renumbered_folder_delivers_nothing_twice_and_new_mail_once(rig: ImapRig) -> None:
    use(rig, after_delivery="keep")
    rig.deliver(message("first"))
    rig.deliver(message("second"))
    await rig.cycle()
    assert rig.subjects() == ["first", "second"]
    await asyncio.sleep(1.1)  # Dovecot's UIDVALIDITY is a time stamp
    for index in rig.user.maildir.glob("dovecot*"):
        index.unlink()  # the folder's UID list and indexes: Dovecot numbers it afresh
    rig.deliver(message("third"))
    await rig.cycle()
    assert rig.subjects() == ["first", "second", "third"]
    renumbered = rig.of(EventId.IMAP_FOLDER_RENUMBERED)
    assert len(renumbered) == 1 and renumbered[0].diagnosis is Failure.FOLDER_RENUMBERED
    assert len(rig.of(EventId.DUPLICATE_SUPPRESSED)) == 2


async def test_a_folder_renumbered_long_after_delivery_delivers_nothing_twice(rig: ImapRig) -> None:
    """The duplicate window is 14 days; mail kept on the server for longer is still known by its content."""
    use(rig, after_delivery="keep")
    rig.deliver(message("old one"))
    await rig.cycle()
    await asyncio.sleep(1.1)  # Dovecot's UIDVALIDITY is a time stamp
    for index in rig.user.maildir.glob("dovecot*"):
        index.unlink()
    connector = rig.connector()
    real_now = connector.journal.now
    connector.journal.now = lambda: real_now() + 40 * 86400  # type: ignore[method-assign]
    try:
        await connector.run_cycle()
    finally:
        connector.close()
    assert rig.subjects() == ["old one"]
    assert rig.of(EventId.IMAP_FOLDER_RENUMBERED) and rig.of(EventId.DUPLICATE_SUPPRESSED)


async def test_inbox_spelt_in_lower_case_is_the_same_folder_to_the_journal(rig: ImapRig) -> None:
    use(rig, after_delivery="keep")
    rig.deliver(message("once"))
    await rig.cycle()
    use(rig, folders=("inbox",))
    await rig.cycle()
    assert rig.subjects() == ["once"]
    assert not rig.of(EventId.DUPLICATE_SUPPRESSED)  # known by name, not downloaded again
    assert len(rig.of(EventId.MESSAGE_DOWNLOADED)) == 1
    names = list(Journal(rig.paths.journal_db).records("office"))
    assert len(names) == 1 and names[0].endswith(":INBOX")


async def test_the_same_message_in_two_folders_is_delivered_once(rig: ImapRig) -> None:
    rig.server.create_folder(rig.user.name, "Copies")
    use(rig, folders=("INBOX", "Copies"))
    same = message("twice", message_id="<same@fabrikam.example>")
    rig.deliver(same)
    rig.deliver(same, "Copies")
    await rig.cycle()
    assert rig.subjects() == ["twice"]
    assert rig.left() == [] and rig.left("Copies") == []


async def test_a_refused_message_stays_on_the_server_while_the_local_server_is_down(rig: ImapRig) -> None:
    rig.deliver(message("waiting"))
    await rig.sink.stop()
    result = await rig.cycle()
    assert result.accounts[0].delivered == 0
    assert len(rig.left()) == 1  # nothing flagged, nothing expunged
    await rig.sink.start()  # on a new port, which the next cycle's config names
    await rig.cycle()
    assert rig.subjects() == ["waiting"]
    assert rig.left() == []


async def test_a_message_over_the_size_limit_stays_with_one_event(rig: ImapRig) -> None:
    rig.deliver(message("big", body="x" * 3000 + "\r\n"))
    rig.deliver(message("small"))
    config = rig.config
    connector = rig.connector()
    connector.use_config(replace(config, delivery=replace(config.delivery, max_message_kb=2)))
    try:
        await connector.run_cycle()
        await connector.run_cycle()
    finally:
        connector.close()
    assert rig.subjects() == ["small"]
    assert len(rig.left()) == 1
    assert len(rig.of(EventId.MESSAGE_TOO_BIG)) == 1


async def test_flagged_messages_wait_for_their_expunge_without_being_fetched_again(rig: ImapRig) -> None:
    """A message the journal says is flagged is only expunged, never downloaded or copied again."""
    use(rig, after_delivery="keep")
    rig.deliver(message("flag me"))
    await rig.cycle()
    journal = Journal(rig.paths.journal_db)
    [name] = journal.records("office")
    journal.mark_flagged("office", [name])
    assert journal.records("office")[name].state == FLAGGED
    journal.close()
    use(rig, after_delivery="delete")
    downloads = len(rig.of(EventId.MESSAGE_DOWNLOADED))
    await rig.cycle()
    assert len(rig.of(EventId.MESSAGE_DOWNLOADED)) == downloads
    assert rig.left() == []
    assert rig.subjects() == ["flag me"]


async def test_push_runs_the_account_within_seconds_of_new_mail(rig: ImapRig) -> None:
    use(rig, idle=True)
    connector = rig.connector()
    runner = asyncio.create_task(connector.run_forever())
    try:
        for _ in range(200):  # the first (scheduled) cycle, then the watcher listening
            if rig.of(EventId.IMAP_IDLE_STARTED) and rig.of(EventId.CYCLE_FINISHED):
                break
            await asyncio.sleep(0.05)
        assert rig.of(EventId.IMAP_IDLE_STARTED)
        started = time.monotonic()
        rig.deliver(message("pushed"))
        while not rig.sink.received and time.monotonic() - started < 15:
            await asyncio.sleep(0.05)
        assert rig.subjects() == ["pushed"]
        assert time.monotonic() - started < 10
        assert rig.of(EventId.IMAP_NEW_MAIL)
    finally:
        connector.request_stop()
        await asyncio.wait_for(runner, 20)
        connector.close()
