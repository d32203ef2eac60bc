"""Rate limiting for desktop notifications (no Qt).

A burst of failures must not bury the desktop in balloons.  Per *kind* (run
failed, quarantined, refused by policy) at most one notice is shown per
``interval_s``; the ones held back are counted and folded into the next notice
("3 more problems"), or into a summary notice once the interval has passed
(:meth:`NotifyLimiter.due`), so nothing is dropped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

T = TypeVar("T")

DEFAULT_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Notice(Generic[T]):
    """One notification to show now.

    ``item`` is what it is about; ``held_back`` is how many items of the same
    kind were not shown on their own since the last notice.  For a ``summary``
    notice, ``item`` is the newest of those held back (and counted in ``held_back``).
    """

    kind: Hashable
    item: T
    held_back: int = 0
    summary: bool = False  # True: only a count of held-back items, nothing new

    def more_text(self, noun: str = "problem", plural: str = "problems") -> str:
        """``"3 more problems"``, ``"1 more problem"``, or ``""``."""
        if not self.held_back:
            return ""
        return f"{self.held_back} more {noun if self.held_back == 1 else plural}"


@dataclass
class _Slot(Generic[T]):
    last_shown: float
    held_back: int = 0
    newest: T | None = None
    has_newest: bool = field(default=False)


class NotifyLimiter(Generic[T]):
    """At most one notice per kind per ``interval_s``; the rest are counted into the next one."""

    def __init__(self, interval_s: float = DEFAULT_INTERVAL_S, *, clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s < 0:
            raise ValueError("interval_s must not be negative")
        self.interval_s = interval_s
        self._clock = clock
        self._slots: dict[Hashable, _Slot[T]] = {}

    def offer(self, kind: Hashable, item: T) -> Notice[T] | None:
        """A notice to show now for ``item``, or None when it was held back (and counted)."""
        now = self._clock()
        slot = self._slots.get(kind)
        if slot is None or now - slot.last_shown >= self.interval_s:
            held = slot.held_back if slot is not None else 0
            self._slots[kind] = _Slot(last_shown=now)
            return Notice(kind, item, held_back=held)
        slot.held_back += 1
        slot.newest = item
        slot.has_newest = True
        return None

    def pending(self, kind: Hashable) -> int:
        """How many items of ``kind`` are held back right now."""
        slot = self._slots.get(kind)
        return slot.held_back if slot is not None else 0

    def next_due_in(self) -> float | None:
        """Seconds until :meth:`due` has something to return; None when nothing is held back."""
        now = self._clock()
        waits = [max(0.0, slot.last_shown + self.interval_s - now)
                 for slot in self._slots.values() if slot.held_back]
        return min(waits) if waits else None

    def due(self) -> list[Notice[T]]:
        """Summary notices for kinds whose interval has passed with items still held back.

        Each counts as shown: the next item of that kind waits another interval.
        """
        now = self._clock()
        notices: list[Notice[T]] = []
        for kind, slot in self._slots.items():
            if slot.held_back and slot.has_newest and now - slot.last_shown >= self.interval_s:
                notices.append(Notice(kind, cast(T, slot.newest), held_back=slot.held_back, summary=True))
                self._slots[kind] = _Slot(last_shown=now)
        return notices
