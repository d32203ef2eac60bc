"""An IMAP account under faults: the real Connector against the scripted IMAP server and an SMTP sink.

Dovecot (tests/core/engine/test_imap_mailbox.py) shows the happy paths; the
scripted server (tests/support/scripted_imap.py) does what a real server will
not do on purpose: drop the connection inside a FETCH, lack UIDPLUS, MOVE or
IDLE, renumber a folder, refuse SELECT or UID FETCH, send a body longer than
it announced.  Every test checks the promise that matters: what reached the
local server, what is still on the IMAP server, and that nothing is delivered
twice or lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from pop3gui.core.config.model import (
    AccountConfig,
    Config,
    DeliveryConfig,
    LoggingConfig,
    RecipientPolicy,
    ScheduleConfig,
    SmtpConfig,
)
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.push import MAX_WATCHED_FOLDERS, PushWatchers, push_folders
from pop3gui.core.engine.report import Reporter
from pop3gui.core.engine.status import CycleResult
from pop3gui.core.events.model import Event, EventBus, EventId
from pop3gui.core.failures import Failure
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.state.journal import FLAGGED, HANDLED, Journal
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.spool import Spool
from tests.support.rig import ADMIN, ALICE, StaticPasswords, message
from tests.support.scripted_imap import ImapMessage, ScriptedImapServer
from tests.support.smtp_sink import SmtpSink

PASSWORD = "pass"  # the scripted server's default account: user / pass


@dataclass
class FaultRig:
    """A connector installation under tmp_path reading one folder of the scripted IMAP server."""

    home: Path
    srv: ScriptedImapServer
    sink: SmtpSink
    account: AccountConfig
    interval_min: int = 15
    max_message_kb: int = 25600
    events: list[Event] = field(default_factory=list)
    cycle_events: list[Event] = field(default_factory=list)

    @property
    def paths(self) -> Paths:
        return Paths(self.home / "config.toml", self.home / "state", self.home / "logs")

    @property
    def config(self) -> Config:
        return Config(smtp=SmtpConfig(host="127.0.0.1", port=self.sink.port, timeout_s=5),
                      schedule=ScheduleConfig(interval_min=self.interval_min),
                      delivery=DeliveryConfig(undeliverable_to=ADMIN, max_message_kb=self.max_message_kb),
                      policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
                      accounts=(self.account,), logging=LoggingConfig(level="debug"))

    def connector(self, on_event: Callable[[Event], None] | None = None) -> Connector:
        self.cycle_events = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        bus.subscribe(self.cycle_events.append)
        if on_event is not None:
            bus.subscribe(on_event)
        return Connector(self.config, self.paths, bus,
                         credentials=StaticPasswords(PASSWORD))  # type: ignore[arg-type]

    async def cycle(self, on_event: Callable[[Event], None] | None = None) -> CycleResult:
        connector = self.connector(on_event)
        try:
            return await connector.run_cycle()
        finally:
            connector.close()

    def use(self, **changes: object) -> None:
        self.account = replace(self.account, **changes)  # type: ignore[arg-type]

    def of(self, eid: EventId, *, this_cycle: bool = False) -> list[Event]:
        return [e for e in (self.cycle_events if this_cycle else self.events) if e.id == eid]

    def subjects(self) -> list[str]:
        """The subject of every message the local server received, sorted, duplicates included.

        Sorted: a few SMTP sessions submit side by side, so the order of arrival is not fixed.
        """
        return sorted(r.content.split(b"\r\nSubject: ", 1)[1].split(b"\r\n", 1)[0].decode()
                      for r in self.sink.received)

    def left(self, folder: str = "INBOX") -> list[bytes]:
        return self.srv.folder(folder).bodies

    def journal(self) -> dict[str, str]:
        """The journal's rows of the account: name -> state."""
        journal = Journal(self.paths.journal_db)
        try:
            return {name: record.state for name, record in journal.records(self.account.name).items()}
        finally:
            journal.close()

    def name(self, uid: int, folder: str = "INBOX") -> str:
        return f"imap:{self.srv.folder(folder).uidvalidity}:{uid}:{folder}"

    def spool_is_empty(self) -> bool:
        return Spool(self.paths.spool_dir).leftovers() == []


def make_rig(tmp_path: Path, srv: ScriptedImapServer, sink: SmtpSink, **account: object) -> FaultRig:
    values: dict[str, object] = dict(name="office", host="127.0.0.1", port=srv.port, security="none",
                                     username="user", kind="user", deliver_to=ALICE, protocol="imap",
                                     timeout_s=5, idle=False)
    values.update(account)
    return FaultRig(tmp_path / "home", srv, sink, AccountConfig(**values))  # type: ignore[arg-type]


def downloads(rig: FaultRig) -> int:
    return len(rig.of(EventId.MESSAGE_DOWNLOADED, this_cycle=True))


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait (polling) until *condition* holds; fail naming *what* after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- (a) the connection drops inside a FETCH ----------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 100, -1], ids=["before-the-body", "inside-the-body", "whole-body-no-end"])
async def test_a_connection_dropped_mid_fetch_delivers_what_came_whole_and_the_rest_next_cycle(
        tmp_path: Path, sink: SmtpSink, cut: int) -> None:
    big = message("m2", body=("y" * 70 + "\r\n") * 4000)  # over 256 KiB: a spool file
    bodies = [message("m1"), big, message("m3")]
    async with ScriptedImapServer(bodies, drop_fetch=(2, len(big) if cut < 0 else cut)) as srv:
        rig = make_rig(tmp_path, srv, sink)
        first = await rig.cycle()
        account = first.accounts[0]
        assert rig.subjects() == ["m1"]  # whole before the drop: delivered
        assert account.failed and account.diagnosis is Failure.CONNECTION_FAILED
        [failed] = rig.of(EventId.POP3_CONNECTION_FAILED)
        assert failed.cause and failed.fix and failed.transcript
        assert rig.left() == bodies  # nothing removed: the connection was gone before the removal
        assert rig.journal() == {rig.name(1): HANDLED}  # m1's outcome is kept; m2 and m3 are unknown
        assert rig.spool_is_empty()  # the half of m2 is thrown away

        srv.drop_fetch = None  # the network is back
        second = await rig.cycle()
        assert second.exit_code == 0
        assert rig.subjects() == ["m1", "m2", "m3"]  # each once: m1 is not delivered again
        assert downloads(rig) == 2  # m1 was only removed, not fetched again
        assert [r for r in sink.received if r.content.endswith(big)]
        assert rig.left() == [] and rig.journal() == {}


# -- (b) no UIDPLUS and another program's deleted message in the folder -----------------------------------


async def test_without_uidplus_a_foreign_deleted_message_keeps_ours_flagged_until_it_is_gone(
        tmp_path: Path, sink: SmtpSink) -> None:
    """A message another program marked deleted, which pop3gui leaves alone (and it is over the size limit too).

    EXPUNGE would remove it too, so ours stay flagged: said (2014), kept as
    ``flagged`` in the journal, never downloaded or delivered again, and
    expunged by the first cycle after the other message is gone.
    """
    foreign = ImapMessage(message("foreign", body="z" * 3000 + "\r\n"), {"\\Deleted"})
    async with ScriptedImapServer([message("a"), foreign, message("b")], uidplus=False) as srv:
        rig = make_rig(tmp_path, srv, sink)
        rig.max_message_kb = 2
        first = await rig.cycle()
        assert rig.subjects() == ["a", "b"]
        assert first.accounts[0].delivered == 2 and first.accounts[0].deleted == 0
        [said] = rig.of(EventId.IMAP_NOT_EXPUNGED)
        assert said.diagnosis is Failure.NOT_EXPUNGED and said.account == "office"
        assert "UIDPLUS" in said.cause and "later cycle" in said.fix
        assert rig.journal() == {rig.name(1): FLAGGED, rig.name(3): FLAGGED}  # another's deleted mail: not ours
        assert [m.flags for m in srv.folder("INBOX").messages] == [{"\\Deleted"}] * 3
        assert not any(c.split(" ", 1)[1] == "EXPUNGE" for c in srv.commands if " " in c)
        assert all("UID EXPUNGE" not in c for c in srv.commands)

        second = await rig.cycle()  # the foreign one is still there
        assert downloads(rig) == 0 and rig.subjects() == ["a", "b"]
        assert second.accounts[0].deleted == 0 and len(rig.left()) == 3
        assert len(rig.of(EventId.IMAP_NOT_EXPUNGED, this_cycle=True)) == 1
        assert rig.journal() == {rig.name(1): FLAGGED, rig.name(3): FLAGGED}  # another's deleted mail: not ours

        srv.folder("INBOX").messages.remove(next(m for m in srv.folder("INBOX").messages if m.uid == 2))
        third = await rig.cycle()  # the other program emptied its deleted items
        assert downloads(rig) == 0 and rig.subjects() == ["a", "b"]
        assert third.accounts[0].deleted == 2 and rig.left() == []
        assert not rig.of(EventId.IMAP_NOT_EXPUNGED, this_cycle=True)
        assert rig.of(EventId.MESSAGE_DELETED, this_cycle=True)
        assert rig.journal() == {}


async def test_without_uidplus_a_message_another_program_deleted_is_neither_delivered_nor_expunged(
        tmp_path: Path, sink: SmtpSink) -> None:
    """Marked \\Deleted by another mail program before the cycle: that program may still undo it.

    pop3gui's own EXPUNGE (no UIDPLUS) would remove it for good, which is what
    2014 exists to prevent; the message is the other program's to undo or
    expunge, not new mail to deliver.
    """
    foreign = ImapMessage(message("deleted elsewhere"), {"\\Deleted"})
    async with ScriptedImapServer([message("a"), foreign, message("b")], uidplus=False) as srv:
        rig = make_rig(tmp_path, srv, sink)
        await rig.cycle()
        assert rig.subjects() == ["a", "b"]
        assert [m.data for m in srv.folder("INBOX").messages if m.uid == 2] == [foreign.data]  # still undoable
        assert len(rig.of(EventId.IMAP_NOT_EXPUNGED)) == 1


# -- (c) no MOVE: COPY, \Deleted, UID EXPUNGE ----------------------------------------------------------------


@pytest.mark.parametrize("uidplus", [True, False], ids=["uidplus", "no-uidplus"])
async def test_without_move_a_move_is_copy_then_delete_and_copies_once(
        tmp_path: Path, sink: SmtpSink, uidplus: bool) -> None:
    bodies = [message("a"), message("b")]
    async with ScriptedImapServer(bodies, move=False, uidplus=uidplus) as srv:
        rig = make_rig(tmp_path, srv, sink, after_delivery="move", move_to="Delivered")
        first = await rig.cycle()
        assert first.exit_code == 0 and first.accounts[0].deleted == 2
        assert rig.subjects() == ["a", "b"]
        assert rig.left() == [] and rig.left("Delivered") == bodies
        assert all("\\Deleted" not in m.flags for m in srv.folder("Delivered").messages)
        sent = [c.split(" ", 1)[1] for c in srv.commands if c.startswith("P")]
        assert not any(c.startswith("UID MOVE") for c in sent)
        assert sent.count('UID COPY 1:2 "Delivered"') == 2  # TRYCREATE, CREATE, then the copy
        assert 'CREATE "Delivered"' in sent
        assert "UID STORE 1:2 +FLAGS.SILENT (\\Deleted)" in sent
        assert ("UID EXPUNGE 1:2" in sent) is uidplus and ("EXPUNGE" in sent) is not uidplus
        assert sent.index("UID STORE 1:2 +FLAGS.SILENT (\\Deleted)") > sent.index('UID COPY 1:2 "Delivered"')
        assert rig.of(EventId.MESSAGE_MOVED) and rig.journal() == {}

        later = message("c")
        srv.deliver(later)
        await rig.cycle()
        await rig.cycle()
        assert rig.subjects() == ["a", "b", "c"]
        assert rig.left() == [] and rig.left("Delivered") == [*bodies, later]  # each copied exactly once


async def test_a_refused_move_is_retried_without_downloading_the_messages_again(
        tmp_path: Path, sink: SmtpSink) -> None:
    """A UID is never reused within a UIDVALIDITY: a message whose removal failed is still the handled one."""
    async with ScriptedImapServer([message("a"), message("b")],
                                  replies={"UID MOVE": ["NO [OVERQUOTA] full", "NO [OVERQUOTA] full"]}) as srv:
        rig = make_rig(tmp_path, srv, sink, after_delivery="move", move_to="Delivered")
        first = await rig.cycle()
        assert first.accounts[0].failed and rig.subjects() == ["a", "b"]
        assert downloads(rig) == 2 and len(rig.left()) == 2
        await rig.cycle()
        assert downloads(rig) == 0 and rig.subjects() == ["a", "b"]
        assert len(rig.left()) == 2
        await rig.cycle()  # the server takes the move now
        assert downloads(rig) == 0 and rig.left() == [] and len(rig.left("Delivered")) == 2
        assert rig.subjects() == ["a", "b"]


# -- (d) the folder is renumbered between cycles --------------------------------------------------------------


async def test_a_new_uidvalidity_delivers_nothing_twice_and_the_new_message_once(
        tmp_path: Path, sink: SmtpSink) -> None:
    async with ScriptedImapServer([message("first"), message("second")]) as srv:
        rig = make_rig(tmp_path, srv, sink, after_delivery="keep")
        await rig.cycle()
        assert rig.subjects() == ["first", "second"]
        old = rig.journal()
        assert set(old) == {rig.name(1), rig.name(2)}

        inbox = srv.folder("INBOX")
        inbox.uidvalidity += 7  # rebuilt: new UIDVALIDITY, and the old UIDs name other messages now
        inbox.messages.reverse()
        for number, entry in enumerate(inbox.messages, 1):
            entry.uid = number
        inbox.uidnext = 3
        srv.deliver(message("third"))
        second = await rig.cycle()
        assert second.exit_code == 0
        assert rig.subjects() == ["first", "second", "third"]
        [renumbered] = rig.of(EventId.IMAP_FOLDER_RENUMBERED)
        assert renumbered.diagnosis is Failure.FOLDER_RENUMBERED and str(inbox.uidvalidity) in renumbered.text
        assert renumbered.cause and renumbered.fix
        assert len(rig.of(EventId.DUPLICATE_SUPPRESSED, this_cycle=True)) == 2
        assert set(rig.journal()) == {rig.name(1), rig.name(2), rig.name(3)}  # only the new names
        assert len(rig.left()) == 3  # keep: nothing removed

        await rig.cycle()
        assert downloads(rig) == 0 and rig.subjects() == ["first", "second", "third"]
        assert len(rig.of(EventId.IMAP_FOLDER_RENUMBERED)) == 1


# -- (e) NO or BAD to SELECT or UID FETCH ---------------------------------------------------------------------


@pytest.mark.parametrize(("knobs", "eid", "diagnosis", "words", "delivered"), [
    (dict(replies={"SELECT": ["NO [SERVERBUG] Internal error occurred"]}),
     EventId.POP3_COMMAND_FAILED, Failure.COMMAND_FAILED, "NO [SERVERBUG] Internal error occurred", []),
    (dict(replies={"SELECT": ["BAD Error in IMAP command SELECT"]}),
     EventId.POP3_COMMAND_FAILED, Failure.COMMAND_FAILED, "BAD Error in IMAP command SELECT", []),
    (dict(replies={"SELECT": ["NO [INUSE] Mailbox is locked by another session"]}),
     EventId.POP3_MAILBOX_IN_USE, Failure.MAILBOX_IN_USE, "Mailbox is locked", []),
    (dict(replies={"UID FETCH": ["NO [SERVERBUG] Index corrupted"]}),  # the listing of sizes
     EventId.POP3_COMMAND_FAILED, Failure.COMMAND_FAILED, "NO [SERVERBUG] Index corrupted", []),
    (dict(fetch_refusal=(1, "NO [UNAVAILABLE] Backend storage unavailable")),
     EventId.POP3_COMMAND_FAILED, Failure.COMMAND_FAILED, "NO [UNAVAILABLE] Backend storage unavailable", []),
    (dict(fetch_refusal=(2, "BAD Internal error in FETCH")),
     EventId.POP3_COMMAND_FAILED, Failure.COMMAND_FAILED, "BAD Internal error in FETCH", ["m1"]),
], ids=["select-no", "select-bad", "select-inuse", "sizes-no", "body-fetch-no", "body-fetch-bad-midway"])
async def test_a_refused_select_or_fetch_fails_the_account_and_keeps_the_mail(
        tmp_path: Path, sink: SmtpSink, knobs: dict[str, object], eid: EventId, diagnosis: Failure,
        words: str, delivered: list[str]) -> None:
    bodies = [message("m1"), message("m2"), message("m3")]
    async with ScriptedImapServer(bodies, **knobs) as srv:  # type: ignore[arg-type]
        rig = make_rig(tmp_path, srv, sink)
        result = await rig.cycle()
        account = result.accounts[0]
        assert account.failed and account.diagnosis is diagnosis and result.exit_code != 0
        [failed] = rig.of(eid)
        assert failed.diagnosis is diagnosis and words in failed.text and failed.account == "office"
        assert failed.cause and failed.fix and "P0" in failed.transcript
        assert rig.subjects() == delivered
        assert rig.left() == bodies  # every message stays (a delivered one is removed next cycle)
        assert all(not m.flags for m in srv.folder("INBOX").messages)
        assert rig.spool_is_empty()

        srv.fetch_refusal = None  # the server recovered (a reply list is used up already)
        again = await rig.cycle()
        assert again.exit_code == 0
        assert rig.subjects() == ["m1", "m2", "m3"]
        assert downloads(rig) == 3 - len(delivered)
        assert rig.left() == [] and rig.journal() == {}


# -- (f) a server without IDLE: said once, polled on the schedule ----------------------------------------------


async def test_idle_asked_of_a_server_without_it_is_said_once_and_the_schedule_still_delivers(
        tmp_path: Path, sink: SmtpSink) -> None:
    async with ScriptedImapServer([message("before")], idle=False) as srv:
        rig = make_rig(tmp_path, srv, sink, idle=True)
        rig.interval_min = 0  # the schedule comes round at once, so several cycles run within the test
        connector = rig.connector()
        runner = asyncio.create_task(connector.run_forever())
        try:
            await until(lambda: bool(rig.of(EventId.IMAP_NO_IDLE)) and rig.subjects() == ["before"],
                        "the first cycle and the watcher's notice")
            finished = len(rig.of(EventId.CYCLE_FINISHED))
            srv.deliver(message("later"))
            await until(lambda: rig.subjects() == ["before", "later"], "the next scheduled cycle")
            await until(lambda: len(rig.of(EventId.CYCLE_FINISHED)) >= finished + 2, "more scheduled cycles")
        finally:
            connector.request_stop()
            await asyncio.wait_for(runner, 10)
            connector.close()
        [said] = rig.of(EventId.IMAP_NO_IDLE)
        assert said.diagnosis is Failure.NO_IDLE and said.account == "office" and "schedule" in said.text
        assert said.cause and said.fix
        assert not any(c.split(" ")[1:2] == ["IDLE"] for c in srv.commands)  # never tried: not offered
        assert not rig.of(EventId.IMAP_IDLE_FAILED) and not rig.of(EventId.IMAP_IDLE_STARTED)
        assert rig.subjects() == ["before", "later"] and rig.left() == []


# -- (g), (h) the IDLE watcher: a dropped connection, and renewing the IDLE ------------------------------------


@dataclass
class Watching:
    """PushWatchers of the rig's account, with the events they emit and the accounts they woke."""

    watchers: PushWatchers
    events: list[Event]
    woken: list[str]

    def of(self, eid: EventId) -> list[Event]:
        return [e for e in self.events if e.id == eid]


def watch(tmp_path: Path, rig: FaultRig, *, renew_s: float = 60.0,
          retry_pauses_s: tuple[float, ...] = (0.05, 0.1)) -> Watching:
    events: list[Event] = []
    woken: list[str] = []
    bus = EventBus()
    bus.subscribe(events.append)
    credentials = StaticPasswords(PASSWORD)
    watchers = PushWatchers(rig.config, credentials=credentials,  # type: ignore[arg-type]
                            sign_ins=SignIns(credentials, tmp_path / "locks"),  # type: ignore[arg-type]
                            report=Reporter(bus, debug=True), on_mail=woken.append, renew_s=renew_s,
                            retry_pauses_s=retry_pauses_s)
    watchers.start()
    return Watching(watchers, events, woken)


LISTENING = {("office", "INBOX")}


@pytest.mark.parametrize("how", ["reset", "bye"])
async def test_a_dropped_idle_is_said_once_the_watcher_reconnects_and_new_mail_still_wakes_a_run(
        tmp_path: Path, sink: SmtpSink, how: str) -> None:
    # "bye": the server ends each IDLE with "* BYE" and hangs up, as one that times idlers out.
    async with ScriptedImapServer([message("old")], idle_mode="bye" if how == "bye" else "normal",
                                  idle_end_after=0.2) as srv:
        rig = make_rig(tmp_path, srv, sink, idle=True)
        push = watch(tmp_path, rig)
        try:
            await until(lambda: push.watchers.listening == LISTENING, "the watcher to listen")
            if how == "reset":
                srv.hang_up()  # the network drops the connection
            await until(lambda: bool(push.of(EventId.IMAP_IDLE_FAILED)), "the failure to be said")
            # Down for a few attempts (the server turns connections away), then back.
            srv.greeting_line = "* BYE Server is going down for maintenance"
            srv.idle_mode = "normal"
            srv.hang_up()
            sessions = srv.sessions
            await until(lambda: srv.sessions >= sessions + 3, "several attempts to reconnect")
            srv.greeting_line = None
            await until(lambda: push.watchers.listening == LISTENING, "the watcher to listen again")
            assert push.woken == []
            srv.deliver(message("new"))
            await until(lambda: push.woken == ["office"], "new mail to wake a run")
        finally:
            await asyncio.wait_for(push.watchers.stop(), 10)
        [failed] = push.of(EventId.IMAP_IDLE_FAILED)  # once for the whole outage
        assert failed.account == "office" and "INBOX" in failed.text
        assert failed.diagnosis is Failure.CONNECTION_FAILED
        assert "schedule" in failed.fix and failed.cause
        assert len(push.of(EventId.IMAP_NEW_MAIL)) == 1
        assert push.watchers.listening == set()


async def test_a_second_outage_after_listening_again_is_said_again_and_retried_without_the_long_pause(
        tmp_path: Path, sink: SmtpSink) -> None:
    """Each outage is said once, and a watcher that was listening again starts over with the short pause."""
    async with ScriptedImapServer([message("old")]) as srv:
        rig = make_rig(tmp_path, srv, sink, idle=True)
        push = watch(tmp_path, rig, retry_pauses_s=(0.05, 60.0))
        try:
            for outage in (1, 2):
                await until(lambda: push.watchers.listening == LISTENING, f"listening before outage {outage}")
                sessions = srv.sessions
                srv.hang_up()
                await until(lambda: srv.sessions > sessions and push.watchers.listening == LISTENING,
                            f"listening again after outage {outage}", timeout=5)
            srv.deliver(message("new"))
            await until(lambda: push.woken == ["office"], "new mail to wake a run")
        finally:
            await asyncio.wait_for(push.watchers.stop(), 10)
        assert len(push.of(EventId.IMAP_IDLE_FAILED)) == 2


async def test_an_idle_is_renewed_after_renew_s_on_the_same_connection(tmp_path: Path, sink: SmtpSink) -> None:
    async with ScriptedImapServer([message("old")]) as srv:
        rig = make_rig(tmp_path, srv, sink, idle=True)
        push = watch(tmp_path, rig, renew_s=0.2)
        try:
            await until(lambda: sum(c.endswith(" IDLE") for c in srv.commands) >= 3, "two renewals")
            srv.deliver(message("new"))
            await until(lambda: push.woken == ["office"], "new mail to wake a run")
        finally:
            await asyncio.wait_for(push.watchers.stop(), 10)
        assert srv.sessions == 1  # renewed, not reconnected
        idles = [n for n, c in enumerate(srv.commands) if c.endswith(" IDLE")]
        dones = [n for n, c in enumerate(srv.commands) if c == "DONE"]
        assert all(any(a < d < b for d in dones) for a, b in zip(idles, idles[1:]))  # each ended before the next
        assert not push.of(EventId.IMAP_IDLE_FAILED)
        assert len(push.of(EventId.IMAP_IDLE_STARTED)) == 1  # one session, so said once
        assert srv.commands[-1].endswith("LOGOUT")


# -- (i) a body literal longer than announced -----------------------------------------------------------------


@pytest.mark.parametrize(("uid", "extra", "delivered"), [
    (2, b"\r\nextra line\r\n", ["m1"]),
    (1, b"tail", []),
], ids=["second-message-extra-line", "first-message-extra-bytes"])
async def test_a_body_longer_than_announced_is_a_protocol_error_delivering_nothing_of_it(
        tmp_path: Path, sink: SmtpSink, uid: int, extra: bytes, delivered: list[str]) -> None:
    bodies = [message("m1"), message("m2"), message("m3")]
    async with ScriptedImapServer(bodies, literal_overrun=(uid, extra)) as srv:
        rig = make_rig(tmp_path, srv, sink)
        result = await rig.cycle()
        assert result.accounts[0].failed and result.accounts[0].diagnosis is Failure.PROTOCOL_ERROR
        [failed] = rig.of(EventId.POP3_PROTOCOL_ERROR)
        assert failed.diagnosis is Failure.PROTOCOL_ERROR and failed.cause and failed.fix
        assert rig.subjects() == delivered  # nothing of the overlong message, nothing after it
        assert all(extra not in r.content for r in sink.received)
        assert rig.left() == bodies and rig.spool_is_empty()

        srv.literal_overrun = None
        await rig.cycle()
        assert rig.subjects() == ["m1", "m2", "m3"]
        assert downloads(rig) == 3 - len(delivered)
        assert rig.left() == [] and rig.journal() == {}


# -- settings that reach the engine ---------------------------------------------------------------------------

async def test_a_password_that_cannot_be_sent_fails_its_account_and_the_cycle_goes_on(
        tmp_path: Path, sink: SmtpSink) -> None:
    async with ScriptedImapServer([message("waits")]) as srv:
        rig = make_rig(tmp_path, srv, sink)
        bus = EventBus()
        bus.subscribe(rig.events.append)
        connector = Connector(rig.config, rig.paths, bus,
                              credentials=StaticPasswords("line\nbreak"))  # type: ignore[arg-type]
        try:
            result = await connector.run_cycle()
        finally:
            connector.close()
        assert result.accounts[0].failed and result.accounts[0].diagnosis is Failure.CONFIG_INVALID
        [said] = rig.of(EventId.CREDENTIAL_MISSING)
        assert "line break" in said.text and said.fix
        assert len(rig.left()) == 1 and rig.subjects() == []


def test_only_an_accounts_first_folders_are_watched() -> None:
    account = AccountConfig(name="many", host="imap.example", username="u", deliver_to=ALICE, protocol="imap",
                            folders=("INBOX", "A", "B", "C", "D"))
    quiet = replace(account, name="quiet", idle=False)
    watched = push_folders(Config(accounts=(account, quiet)))
    assert [(a.name, f) for a, f in watched] == [("many", "INBOX"), ("many", "A"), ("many", "B")]
    assert len(watched) == MAX_WATCHED_FOLDERS
