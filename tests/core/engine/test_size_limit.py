"""The local server's SIZE limit (RFC 1870) decides before a message is downloaded or sent.

A real Postfix with a small ``message_size_limit`` announces it after EHLO; the
scripted POP3 server shows which messages were downloaded (RETR) and can list a
message smaller than it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pop3gui.core.events.model import EventId, Outcome
from pop3gui.core.failures import Failure
from tests.conftest import Pop3User
from tests.servers.postfix import PostfixServer
from tests.support.office import ACCEPTED_DOMAINS, MESSAGE_SIZE_LIMIT, Office, make_message
from tests.support.requirements import require
from tests.support.rig import ALICE, POP3_PASSWORD, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server

LIMIT = 20_000


@pytest.fixture(scope="module")
def small_postfix() -> Iterator[PostfixServer]:
    """A Postfix that takes messages of at most 20 000 bytes."""
    require("Postfix", ["postfix", "postconf", "postsuper", "script"], "postfix")
    server = PostfixServer(ACCEPTED_DOMAINS, message_size_limit=LIMIT).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local(small_postfix: PostfixServer) -> Iterator[PostfixServer]:
    small_postfix.clear()
    yield small_postfix
    small_postfix.clear()


def _retrs(pop: ScriptedPop3Server) -> list[str]:
    return [c for c in pop.commands if c.upper().startswith("RETR")]


async def test_a_message_over_the_announced_limit_stays_undownloaded_with_one_event(
        tmp_path: Path, local: PostfixServer) -> None:
    big = message("big", body="x" * 70 + "\r\n" + ("y" * 78 + "\r\n") * 400)  # about 32 KB
    async with ScriptedPop3Server([message("small"), big], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, local.port)
        first = await rig.cycle()
        second = await rig.cycle()
        left = list(pop.mailbox)

    assert first.exit_code == 0 and second.exit_code == 0
    assert left == [big]  # the small one was delivered and deleted; the big one stays
    assert [c.split()[1] for c in _retrs(pop)] == ["1"]  # never downloaded, in either cycle
    assert len(local.wait_for_delivered(1)) == 1 and local.delivered()[0]["Subject"] == "small"
    (event,) = rig.of(EventId.MESSAGE_TOO_BIG)  # said once, not every cycle
    assert event.outcome is Outcome.LEFT_ON_SERVER and event.diagnosis is Failure.OVER_SIZE_LIMIT
    assert "20 KB" in event.text and "local mail server 127.0.0.1" in event.text and "POP3 server" in event.text
    assert f"{LIMIT} bytes" in event.cause
    assert "message_size_limit" in event.fix and "mail client" in event.fix
    assert rig.quarantined() == [] and not rig.of(EventId.MESSAGE_REFUSED)
    assert first.accounts[0].too_big == 1 and second.accounts[0].too_big == 1


async def test_a_message_listed_smaller_than_it_is_is_measured_again_and_not_sent(
        tmp_path: Path, local: PostfixServer) -> None:
    big = message("understated", body=("z" * 78 + "\r\n") * 400)
    async with ScriptedPop3Server([big], password=POP3_PASSWORD, list_sizes=[5000]) as pop:
        rig = make_rig(tmp_path, pop, local.port)
        first = await rig.cycle()
        retrs_after_first = len(_retrs(pop))
        await rig.cycle()
        left = list(pop.mailbox)

    assert first.exit_code == 0
    assert left == [big]
    assert retrs_after_first == 1 and len(_retrs(pop)) == 1  # the journal remembers its real size
    (event,) = rig.of(EventId.MESSAGE_TOO_BIG)
    assert event.outcome is Outcome.LEFT_ON_SERVER and "message_size_limit" in event.fix
    assert event.uid  # the downloaded message is named
    assert local.delivered() == [] and local.queued() == 0
    assert rig.quarantined() == [] and rig.spool_is_empty()


async def test_a_message_just_under_the_limit_with_our_trace_line_is_delivered(
        tmp_path: Path, local: PostfixServer) -> None:
    fits = message("fits", to=ALICE, body=("w" * 78 + "\r\n") * 200)  # about 16 KB: room for the trace line
    async with ScriptedPop3Server([fits], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, local.port)
        result = await rig.cycle()
        left = list(pop.mailbox)

    assert result.exit_code == 0 and left == []
    assert local.wait_for_delivered(1)[0]["Subject"] == "fits"
    assert not rig.of(EventId.MESSAGE_TOO_BIG)


@pytest.mark.servers
async def test_an_imap_message_over_the_limit_stays_in_its_folder(office: Office, pop3_user: Pop3User) -> None:
    """The office's Postfix announces SIZE 200000; Dovecot's IMAP lists RFC822.SIZE."""
    big = make_message(to="x@isp.example", subject="big", body=("q" * 98 + "\r\n") * 2500)  # about 250 KB
    small = make_message(to="x@isp.example", subject="small")
    office.imap.deliver(pop3_user.name, big)
    office.imap.deliver(pop3_user.name, small)
    office.use(office.imap_account_for(pop3_user, "shared"))

    assert (await office.run_cycle()).exit_code == 0
    assert (await office.run_cycle()).exit_code == 0

    assert office.imap.messages(pop3_user.name) == [big]
    assert [m["Subject"] for m in office.local.wait_for_delivered(1)] == ["small"]
    (event,) = office.of(EventId.MESSAGE_TOO_BIG)
    assert "IMAP server" in event.text and f"{MESSAGE_SIZE_LIMIT} bytes" in event.cause
    assert event.outcome is Outcome.LEFT_ON_SERVER
    assert not office.of(EventId.QUARANTINED) and not list(office.paths.quarantine_dir.glob("*.eml"))
