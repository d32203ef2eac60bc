"""Loops are stopped, state stays private, TLS shortcuts are announced."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pop3gui.core.events.model import Event, EventId
from pop3gui.core.mail.messages import trace_header
from tests.core.engine.test_mailbox import delivered_originals
from tests.support.rig import ALICE, POP3_PASSWORD, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server
from tests.support.smtp_sink import SmtpSink


def with_traces(original: bytes, account: str, times: int) -> bytes:
    lines = b"".join(trace_header(pop3_host="pop.isp.example", account=account, uid=f"u{i}") for i in range(times))
    return lines + original


async def test_a_message_that_keeps_coming_back_is_quarantined_as_a_loop(tmp_path: Path, sink: SmtpSink) -> None:
    looping = with_traces(message("round and round"), "alice", 3)
    twice = with_traces(message("forwarded once more"), "alice", 2)
    other_account = with_traces(message("came through another mailbox"), "office", 5)
    async with ScriptedPop3Server([looping, twice, other_account], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        result = await rig.cycle()
    event = rig.one(EventId.MAIL_LOOP)
    assert "3 times" in event.text and "forward" in event.cause and event.fix
    assert result.accounts[0].quarantined == 1
    [(eml, meta)] = rig.quarantined()
    assert eml == looping and "loop" in str(meta["reason"]).lower()
    assert sink.copies_for(ALICE) == 2


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
async def test_state_files_are_private(tmp_path: Path, sink: SmtpSink) -> None:
    sink.rcpt = {ALICE: "550 5.1.1 User unknown", "admin@contoso.com": "550 5.1.1 User unknown"}
    async with ScriptedPop3Server([message("to quarantine")], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        from pop3gui.core.config.save import save_config

        save_config(rig.config, rig.paths.config_file)
        await rig.cycle()
    assert rig.quarantined(), "the scenario must leave a quarantined message"
    state = rig.paths.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    files = [p for p in state.rglob("*") if p.is_file()] + [rig.paths.config_file]
    assert any(p.suffix == ".json" for p in files) and any(p.name.startswith("journal") for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is readable by others"
    for folder in [p for p in state.rglob("*") if p.is_dir()]:
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, f"{folder} is open to others"


async def test_debug_events_only_when_the_logging_level_asks_for_them(tmp_path: Path, sink: SmtpSink) -> None:
    from dataclasses import replace

    from pop3gui.core.config.model import LoggingConfig
    from pop3gui.core.events.model import Event, EventBus, Severity
    from pop3gui.core.engine.cycle import Connector

    for level, expect_debug in (("debug", True), ("info", False)):
        async with ScriptedPop3Server([message(level)], password=POP3_PASSWORD) as pop:
            rig = make_rig(tmp_path / level, pop, sink.port)
            seen: list[Event] = []
            bus = EventBus()
            bus.subscribe(seen.append)
            config = replace(rig.config, logging=LoggingConfig(level=level))
            connector = Connector(config, rig.paths, bus, credentials=rig.passwords)  # type: ignore[arg-type]
            try:
                assert (await connector.run_cycle()).exit_code == 0
            finally:
                connector.close()
        assert any(e.id == EventId.MESSAGE_DELIVERED for e in seen)
        assert any(e.severity == Severity.DEBUG for e in seen) is expect_debug


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelined"])
async def test_outcomes_are_on_disk_before_the_first_dele(tmp_path: Path, sink: SmtpSink, pipelining: bool) -> None:
    """Outcomes are committed as they happen but fsynced once per session: that once must precede DELE."""
    from pop3gui.core.state.journal import DELETING
    from pop3gui.core.engine.cycle import Connector

    originals = [message(f"number {i}") for i in range(3)]
    connectors: list[Connector] = []
    at_dele: list[tuple[str, int, list[str]]] = []
    async with ScriptedPop3Server(originals, password=POP3_PASSWORD, pipelining=pipelining) as pop:
        rig = make_rig(tmp_path, pop, sink.port)

        def on_command(line: str) -> None:
            if line.upper().startswith("DELE"):
                journal = connectors[0].journal
                states = [r.state for r in journal.records("alice").values()]
                at_dele.append((line, journal.unsynced, states))

        pop.on_command = on_command
        result = await rig.cycle(on_event=lambda c, _e: connectors.append(c) if not connectors else None)
    assert result.exit_code == 0 and pop.mailbox == []
    assert [line for line, _, _ in at_dele] == ["DELE 1", "DELE 2", "DELE 3"]
    for line, unsynced, states in at_dele:
        assert unsynced == 0, f"{line} was sent with {unsynced} outcome(s) not yet on disk"
        assert states == [DELETING] * 3  # handled, and marked before DELE goes out


async def test_small_messages_wait_in_memory_and_big_ones_in_the_spool(tmp_path: Path, sink: SmtpSink) -> None:
    """Below IN_MEMORY_LIMIT no spool file is written; above it (even when LIST understates the size)
    the message goes through its spool file. Either way it arrives byte for byte and nothing is left."""
    from pop3gui.core.state.spool import IN_MEMORY_LIMIT
    from pop3gui.core.engine.cycle import Connector

    big_body = "".join(f"line {i:07d} of a long message\r\n" for i in range(IN_MEMORY_LIMIT // 16))
    small = message("small")
    big = message("big", body=big_body)
    understated = message("understated", body=big_body)
    spooled: dict[str, bool] = {}

    def on_event(connector: Connector, event: Event) -> None:
        if event.id == EventId.MESSAGE_DOWNLOADED:
            spooled[event.subject] = connector.spool.path_for("alice", event.uid).exists()

    async with ScriptedPop3Server([small, big, understated], password=POP3_PASSWORD,
                                  list_sizes=[len(small), len(big), 100]) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle(on_event)).exit_code == 0
    assert len(big) > IN_MEMORY_LIMIT
    assert spooled == {"small": False, "big": True, "understated": True}
    assert sorted(delivered_originals(sink, small, big, understated)) == sorted([small, big, understated])
    assert rig.spool_is_empty() and pop.mailbox == []


async def test_an_idle_poll_costs_no_fsync(tmp_path: Path, sink: SmtpSink) -> None:
    """Only a session with outcomes to protect (DELEs, or new outcomes) makes the journal durable."""
    import sqlite3

    async with ScriptedPop3Server([], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle()).exit_code == 0

        def marks() -> int:
            db = sqlite3.connect(rig.paths.journal_db)
            try:
                return int(db.execute("SELECT count(*) FROM sync_marks").fetchone()[0])
            finally:
                db.close()

        assert marks() == 0, "an empty mailbox made the journal durable"
    async with ScriptedPop3Server([message("one")], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        assert (await rig.cycle()).exit_code == 0
        assert marks() == 1 and pop.mailbox == []
