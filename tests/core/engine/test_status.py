"""What the engine tells its driver: an account's result, the cycle's exit code, progress while it runs."""

from __future__ import annotations

import pytest

from pop3gui.core.engine.status import AccountResult, CycleResult, Phase, Progress
from pop3gui.core.failures import Failure
from tests.support.rig import StatusLog as Seen


def test_a_result_is_clean_until_a_message_needs_attention() -> None:
    res = AccountResult("alice", downloaded=3, delivered=1, too_big=1, duplicates=1, deleted=2)
    assert res.clean, "too big (left on the server) and duplicates are by rule"


@pytest.mark.parametrize("field", ["diverted", "quarantined", "deferred"])
def test_a_message_that_needs_attention_makes_the_result_unclean(field: str) -> None:
    res = AccountResult("alice")
    setattr(res, field, 1)
    assert not res.clean and not res.failed


def test_fail_keeps_the_first_reason_and_every_error() -> None:
    res = AccountResult("alice")
    res.fail("login refused", diagnosis=Failure.AUTH_FAILED, cause="Wrong password.", fix="Set it again.")
    res.fail("connection lost", diagnosis=Failure.CONNECTION_FAILED, cause="Dropped.", fix="Wait.")
    assert res.failed and not res.clean
    assert (res.diagnosis, res.cause, res.fix) == (Failure.AUTH_FAILED, "Wrong password.", "Set it again.")
    assert res.errors == ["login refused", "connection lost"]


def test_the_exit_code_is_zero_only_when_every_account_is_clean() -> None:
    clean, other = AccountResult("alice", delivered=2), AccountResult("bob")
    assert CycleResult().exit_code == 0
    assert CycleResult([clean, other]).exit_code == 0
    other.deferred = 1
    assert CycleResult([clean, other]).exit_code == 1
    failed = AccountResult("carol")
    failed.fail("no password", diagnosis=Failure.CREDENTIAL_MISSING)
    assert CycleResult([clean, failed]).exit_code == 1


def test_progress_is_downloading_until_the_last_message_arrives_then_delivering() -> None:
    seen = Seen()
    progress = Progress("alice", 3, seen)
    progress.one_downloaded()
    progress.one_done(100)
    progress.one_downloaded()
    progress.one_downloaded()
    progress.one_done(250)
    progress.one_done(50)

    assert seen.progress() == [
        (Phase.DOWNLOADING, 0, 3, 0),
        (Phase.DOWNLOADING, 1, 3, 100),
        (Phase.DELIVERING, 1, 3, 100),  # the last one arrived: said once, when it does
        (Phase.DELIVERING, 2, 3, 350),
        (Phase.DELIVERING, 3, 3, 400),
    ]
    assert {s.account for s in seen.statuses} == {"alice"} and all(s.result is None for s in seen.statuses)


def test_progress_of_an_empty_mailbox_is_delivering_at_once() -> None:
    seen = Seen()
    Progress("alice", 0, seen)
    assert seen.progress() == [(Phase.DELIVERING, 0, 0, 0)]


def test_progress_without_an_observer_only_counts() -> None:
    progress = Progress("alice", 1, None)
    progress.one_downloaded()
    progress.one_done(10)
    assert (progress.downloaded, progress.done, progress.size) == (1, 1, 10)
