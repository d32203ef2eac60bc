"""The notification rate limiter: one notice per kind per interval, the rest counted."""

from __future__ import annotations

import pytest

from pop3gui.core.desktop.notify_limit import Notice, NotifyLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_notice_of_each_kind_is_shown_at_once() -> None:
    limiter: NotifyLimiter[str] = NotifyLimiter(60, clock=Clock())
    assert limiter.offer("failed", "a") == Notice("failed", "a", held_back=0)
    assert limiter.offer("quarantined", "q") == Notice("quarantined", "q", held_back=0)


def test_burst_is_held_back_and_counted_into_the_next_notice() -> None:
    clock = Clock()
    limiter: NotifyLimiter[str] = NotifyLimiter(60, clock=clock)
    assert limiter.offer("failed", "a") is not None
    for item in ("b", "c", "d"):
        clock.now += 5
        assert limiter.offer("failed", item) is None
    assert limiter.pending("failed") == 3
    assert limiter.next_due_in() == pytest.approx(45)
    clock.now += 50  # 65 s after the first notice
    notice = limiter.offer("failed", "e")
    assert notice == Notice("failed", "e", held_back=3)
    assert notice is not None and notice.more_text() == "3 more problems"
    assert limiter.pending("failed") == 0
    clock.now += 1
    assert limiter.offer("failed", "f") is None  # a new interval began with "e"


def test_held_back_items_come_out_as_a_summary_when_nothing_new_arrives() -> None:
    clock = Clock()
    limiter: NotifyLimiter[str] = NotifyLimiter(60, clock=clock)
    limiter.offer("failed", "a")
    clock.now += 1
    limiter.offer("failed", "b")
    assert limiter.due() == []  # the interval has not passed
    clock.now += 59
    [summary] = limiter.due()
    assert summary == Notice("failed", "b", held_back=1, summary=True)
    assert summary.more_text() == "1 more problem"
    assert limiter.due() == [] and limiter.next_due_in() is None
    clock.now += 1
    assert limiter.offer("failed", "c") is None  # the summary counted as shown


def test_kinds_are_limited_independently() -> None:
    clock = Clock()
    limiter: NotifyLimiter[int] = NotifyLimiter(60, clock=clock)
    assert limiter.offer("failed", 1) is not None
    assert limiter.offer("failed", 2) is None
    assert limiter.offer("refused", 3) is not None
    assert limiter.pending("refused") == 0 and limiter.pending("failed") == 1


def test_zero_interval_shows_everything_and_negative_is_refused() -> None:
    limiter: NotifyLimiter[int] = NotifyLimiter(0, clock=Clock())
    assert all(limiter.offer("k", i) is not None for i in range(5))
    with pytest.raises(ValueError):
        NotifyLimiter(-1)
