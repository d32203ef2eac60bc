"""Duplicate suppression against the real Dovecot and Postfix: the same message once, a distinct one always.

Real mail reuses Message-IDs, so only a copy with the same content is a
duplicate (see pop3gui/core/mail/fingerprint.py); and a copy is one whichever
mailbox it comes from.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pop3gui.core.events.model import EventId
from tests.conftest import Pop3User
from tests.support.office import Office
from tests.support.same_id import DISTINCT, SHARED_ID, copies_of

pytestmark = pytest.mark.servers


def _recipients(office: Office) -> Counter[str]:
    return Counter(str(m["Delivered-To"]).lower() for m in office.local.delivered())


async def test_distinct_messages_sharing_one_message_id_all_arrive(office: Office, pop3_user: Pop3User) -> None:
    for text in DISTINCT.values():
        office.isp.deliver(pop3_user.name, copies_of(text)[1])
    office.use(office.account_for(pop3_user, "alice", deliver_to="bob@contoso.com"))

    assert (await office.run_cycle()).exit_code == 0

    delivered = office.local.wait_for_delivered(len(DISTINCT))
    assert office.local.wait_for_queue_empty()
    assert len(office.local.delivered()) == len(DISTINCT)
    assert {str(m["Message-ID"]) for m in delivered} == {SHARED_ID}
    assert not office.of(EventId.DUPLICATE_SUPPRESSED)
    assert office.isp.messages(pop3_user.name) == []


async def test_one_message_in_two_mailboxes_reaches_each_recipient_once(
        office: Office, pop3_user: Pop3User) -> None:
    """Alice's own mailbox and the catch-all both hold it; both are read in one cycle, side by side."""
    text = DISTINCT["more-cc"].replace("To: bob@contoso.com", "To: alice@contoso.com")  # Cc: carol, dave
    catch_all = Pop3User(f"{pop3_user.name}-all", f"{pop3_user.password}-all",
                         office.isp.add_user(f"{pop3_user.name}-all", f"{pop3_user.password}-all"))
    office.isp.deliver(pop3_user.name, copies_of(text)[1])
    office.isp.deliver(catch_all.name, copies_of(text)[2])  # other trace, scanner and flag headers
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@contoso.com"),
               office.account_for(catch_all, "catch-all", kind="global", deliver_to=""))

    assert (await office.run_cycle()).exit_code == 0

    office.local.wait_for_delivered(3)
    assert office.local.wait_for_queue_empty()
    assert _recipients(office) == Counter({"alice@contoso.com": 1, "carol@contoso.com": 1, "dave@contoso.com": 1})
    suppressed = office.of(EventId.DUPLICATE_SUPPRESSED)
    assert len(suppressed) == 1 and "alice@contoso.com" in suppressed[0].text
    assert suppressed[0].cause and suppressed[0].fix
    assert office.isp.messages(pop3_user.name) == [] and office.isp.messages(catch_all.name) == []


async def test_a_resent_copy_is_suppressed_within_the_window_and_delivered_after_it(
        office: Office, pop3_user: Pop3User) -> None:
    original = copies_of(DISTINCT["mime"])[1]
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@contoso.com"))
    office.isp.deliver(pop3_user.name, original)
    assert (await office.run_cycle()).exit_code == 0
    office.local.wait_for_delivered(1)

    # The ISP lists the same message again, under a new UIDL, a day later: not delivered again.
    office.isp.deliver(pop3_user.name, original)
    assert (await office.run_cycle(now_offset_days=1)).exit_code == 0
    assert office.local.wait_for_queue_empty()
    assert len(office.local.delivered()) == 1
    assert len(office.of(EventId.DUPLICATE_SUPPRESSED)) == 1
    assert office.isp.messages(pop3_user.name) == []  # handled: deleted all the same

    # Fifteen days on, outside the 14-day window, it is a message to deliver.
    office.isp.deliver(pop3_user.name, original)
    assert (await office.run_cycle(now_offset_days=15)).exit_code == 0
    office.local.wait_for_delivered(2)
    assert len(office.of(EventId.DUPLICATE_SUPPRESSED)) == 1
