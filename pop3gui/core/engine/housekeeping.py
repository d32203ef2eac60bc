"""Housekeeping after every cycle: the stores stay bounded over years of running.

One bounded step per cycle (:meth:`Housekeeper.step`), the same for the tray,
the window and ``pop3gui run``: events past ``[events] keep_days`` or over
``max_mb`` go (:mod:`pop3gui.core.events.retention`), delivery rows past the
duplicate window go from the journal (:func:`~pop3gui.core.state.journal.prune_journal`),
and quarantined messages past ``[delivery] quarantine_keep_days`` go, each
only after an alert listed it a day before (the health monitor keeps when) and
each with an event naming it.  The SQLite work runs in a worker thread on
connections of its own, in short transactions, so the event loop (the GUI,
the next cycle) is never held up; a step that is still running when the next
cycle ends is not started twice.  Nothing here raises: a problem is an event,
said once per kind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pop3gui.core.config.model import Config
from pop3gui.core.engine.report import Reporter
from pop3gui.core.errors import StateError
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.retention import EventRetention, PruneResult
from pop3gui.core.health.store import HealthStore
from pop3gui.core.memory import give_back_free_memory
from pop3gui.core.state import quarantine_ops
from pop3gui.core.state.journal import JournalPrune, prune_journal
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.spool import Quarantine, QuarantineRecord
from pop3gui.core.threads import in_housekeeping_thread

__all__ = ["Housekeeper", "HousekeepingStep"]

_MB = 1024 * 1024


@dataclass
class HousekeepingStep:
    """What one step did (for tests and the benchmark); ``skipped`` when the previous step was still running."""

    events: PruneResult = field(default_factory=PruneResult)
    journal: JournalPrune = field(default_factory=JournalPrune)
    quarantine_removed: list[str] = field(default_factory=list)
    skipped: bool = False
    memory_given_back: bool = False  # the C library was asked to return the heap's free memory


class Housekeeper:
    """Prunes the event store, the journal and the quarantine of one state folder, a bounded step per cycle."""

    def __init__(self, paths: Paths, report: Reporter, *, now: Callable[[], float] = time.time,
                 events: EventRetention | None = None) -> None:
        self.paths = paths
        self.report = report
        self.now = now  # seconds since the epoch; replaceable in tests of day-based rules
        self.events = events or EventRetention(paths.events_db)
        self._running = asyncio.Lock()
        self._said: set[str] = set()  # kinds of problem already reported by this runner

    async def step(self, config: Config) -> HousekeepingStep:
        """One bounded step of every kind of pruning; never raises."""
        if self._running.locked():
            return HousekeepingStep(skipped=True)
        async with self._running:
            done = HousekeepingStep()
            done.quarantine_removed = await self._quarantine(config)
            done.events = await self._events_step(config)
            done.journal = await self._journal_step()
            if done.events.removed or done.events.pages_freed or done.journal.deliveries or done.journal.pages_freed:
                # SQLite's work on the housekeeping thread left freed megabytes in the C library's heap;
                # asking for them back takes well under a millisecond.
                done.memory_given_back = give_back_free_memory()
            return done

    async def _prune_events(self, config: Config) -> PruneResult:
        now = datetime.fromtimestamp(self.now(), timezone.utc)
        result = await in_housekeeping_thread(self.events.step, config.events.keep_days, config.events.max_mb, now)
        if result.removed:
            parts = []
            if result.expired:
                parts.append(f"{result.expired} older than {config.events.keep_days} days")
            if result.over_cap:
                parts.append(f"{result.over_cap} of the oldest to stay under {config.events.max_mb} MB")
            more = "; more follow after the next cycle" if result.backlog else ""
            self.report.event(
                EventId.EVENTS_PRUNED, Severity.INFO if result.over_cap else Severity.DEBUG,
                f"Event history: removed {' and '.join(parts)}; {result.remaining} events kept in "
                f"{result.live_bytes / _MB:.1f} MB{more}.",
                cause="[events] keep_days and max_mb bound the event history." if result.over_cap else "",
                fix="Raise [events] max_mb to keep a longer history." if result.over_cap else "")
        if result.cannot_shrink and "shrink" not in self._said:
            self._said.add("shrink")
            self.report.event(
                EventId.HOUSEKEEPING_FAILED, Severity.WARNING,
                f"The event store {self.paths.events_db} was made by an earlier release and is too big to be "
                f"rebuilt between cycles ({result.live_bytes / _MB:.0f} MB of events): old events are still "
                "removed and their space reused, but the file does not get smaller.",
                cause="Stores of earlier releases were made without incremental vacuuming; rebuilding one holds "
                "it locked as long as the rebuild takes.",
                fix="It is rebuilt by itself once pruning has made it small enough; to shrink it now, stop the "
                f"runner and run: sqlite3 \"{self.paths.events_db}\" \"PRAGMA auto_vacuum=INCREMENTAL; VACUUM;\"")
        return result

    async def _quarantine(self, config: Config) -> list[str]:
        """Remove the quarantined messages whose keep days are up and whose alert is a day old, each said."""
        keep = config.delivery.quarantine_keep_days
        if keep <= 0 or not self.paths.health_db.exists():
            return []
        try:
            due = await in_housekeeping_thread(self._due_removals, keep)
        except StateError as exc:
            self._problem("quarantine", f"Quarantined mail past its keep days was not removed: {exc}",
                          exc.cause, exc.fix)
            return []
        removed = []
        quarantine = Quarantine(self.paths.quarantine_dir)
        for record in due:
            try:
                quarantine_ops.remove(quarantine, quarantine_ops.entry(quarantine, record.id))
            except StateError as exc:
                self._problem("quarantine", f"The quarantined message {record.id} was not removed: {exc}",
                              exc.cause, exc.fix)
                continue
            removed.append(record.id)
            self.report.bus.emit(Event(
                EventId.QUARANTINE_EXPIRED, Severity.WARNING,
                f"Removed the quarantined message {record.id} from {record.sender or '(no sender)'}, subject "
                f"{record.subject or '(no subject)'!r}: it was kept {keep} days, and an alert listed it a day "
                "before.",
                account=record.account, uid=record.uid, message_id=record.message_id, subject=record.subject,
                cause=f"Quarantined mail is kept {keep} days ([delivery] quarantine_keep_days). It was quarantined "
                f"because: {record.reason}",
                fix="Raise [delivery] quarantine_keep_days (0 keeps quarantined mail until you act) and resubmit "
                "or export messages while the alert lists them."))
        return removed

    def _due_removals(self, keep: int) -> list[QuarantineRecord]:
        """The records whose removal is due: listed by an alert (health store), and past both limits."""
        with HealthStore(self.paths.health_db, create=False) as store:
            warned = store.quarantine_warnings()
        if not warned:
            return []
        now = self.now()
        quarantine = Quarantine(self.paths.quarantine_dir)
        due = []
        for record in quarantine.records():
            at = warned.get(record.id)
            if at is not None and quarantine_ops.expiry_listed(record, keep, now) \
                    and now >= quarantine_ops.removal_at(record, keep, at):
                due.append(record)
        return due

    async def _events_step(self, config: Config) -> PruneResult:
        try:
            result = await self._prune_events(config)
        except (OSError, sqlite3.Error) as exc:
            self._problem("events", f"Pruning the event store {self.paths.events_db} failed: {exc}", "", "")
            return PruneResult()
        self._said.discard("events")  # a later failure is news again
        return result

    async def _journal_step(self) -> JournalPrune:
        try:
            result = await in_housekeeping_thread(prune_journal, self.paths.journal_db, self.now())
        except (OSError, sqlite3.Error) as exc:
            self._problem("journal", f"Pruning the journal {self.paths.journal_db} failed: {exc}", "", "")
            return JournalPrune()
        self._said.discard("journal")
        return result

    def _problem(self, kind: str, text: str, cause: str, fix: str) -> None:
        if kind in self._said:
            return
        self._said.add(kind)
        self.report.event(
            EventId.HOUSEKEEPING_FAILED, Severity.WARNING, text,
            cause=cause or "The state folder's database is locked by another program, damaged, or the disk is "
            "full.",
            fix=fix or f"Free disk space and check {self.paths.state_dir}; pruning is tried again after every "
            "cycle, and nothing is lost meanwhile (the stores only grow).")
