"""Retention over a long run: the event store's and the journal's size after many messages, and the loop's stall.

``python benchmarks/retention.py [MESSAGES ...]`` (default 100000 1000000)
simulates an office that receives ``--per-day`` messages a day, in cycles every
15 minutes, on a fake clock, into real SQLite files in a temporary folder:

- the event store gets what a real cycle writes at ``[logging] level = "info"``:
  1001, 1002 per cycle; 1003, 1004 and 3007 per account and cycle; one 3002
  (with recipient, subject and Message-ID) per message;
- the journal gets what a real POP3 session writes: ``begin``, ``finish`` with
  one recipient, ``make_durable`` and ``forget`` once QUIT deleted the message;
- after every cycle, one housekeeping step as the runner does it: event
  retention (``keep_days``, ``max_mb``) and the journal's pruning, each in a
  worker thread, while a ticker on the event loop appends an event every 5 ms
  and measures how late the loop wakes it (the stall).

It prints, per run: the stores' size on disk (file + WAL) at the end and at
their peak, the events and delivery rows kept, and the longest loop stall
seen while pruning.  Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pop3gui.core.events.model import Event, EventId, Outcome, Severity  # noqa: E402
from pop3gui.core.events.retention import EventRetention  # noqa: E402
from pop3gui.core.events.store import EventStore  # noqa: E402
from pop3gui.core.state.journal import Journal, prune_journal  # noqa: E402

CYCLE = timedelta(minutes=15)
ACCOUNTS = ("alice", "bob", "office")
MB = 1024 * 1024


def on_disk(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return (path.stat().st_size if path.exists() else 0) + (wal.stat().st_size if wal.exists() else 0)


class Run:
    def __init__(self, folder: Path, messages: int, per_day: int, keep_days: int, max_mb: int) -> None:
        self.events_db = folder / "events.sqlite3"
        self.journal_db = folder / "journal.sqlite3"
        self.store = EventStore(self.events_db)
        self.journal = Journal(self.journal_db)
        self.retention = EventRetention(self.events_db)
        self.messages = messages
        self.per_cycle = max(1, round(per_day / (24 * 4)))
        self.keep_days = keep_days
        self.max_mb = max_mb
        self.clock = datetime(2030, 1, 1, tzinfo=timezone.utc)
        self.worst_stall = 0.0
        self.turns = 0  # turns of the loop timed while pruning
        self.long_turns = 0  # ... of them over 50 ms
        self.peak_events = 0
        self.peak_journal = 0
        self.prune_seconds = 0.0
        self.steps = 0

    def emit(self, eid: EventId, text: str, **fields: object) -> None:
        self.store.append(Event(eid, Severity.INFO, text, time=self.clock, **fields))  # type: ignore[arg-type]

    def cycle(self, first: int, count: int) -> None:
        """What one cycle writes to both stores (synchronously, as the engine does on the loop)."""
        now = self.clock.timestamp()
        self.journal.now = lambda: now
        self.store._db.execute("BEGIN")
        self.emit(EventId.CYCLE_STARTED, f"Retrieving mail from {len(ACCOUNTS)} account(s).")
        for i, account in enumerate(ACCOUNTS):
            self.emit(EventId.ACCOUNT_STARTED, f"Connecting to pop.isp.example:995 as {account}@isp.example.",
                      account=account)
            mine = range(first + i, first + count, len(ACCOUNTS))
            for n in mine:
                self.emit(EventId.MESSAGE_DELIVERED, f"Delivered to {account}@contoso.com.", account=account,
                          uid=f"UID{n:09d}", message_id=f"<{n}.{account}@mail.fabrikam.example>",
                          subject=f"Order {n} confirmation", recipient=f"{account}@contoso.com",
                          outcome=Outcome.DELIVERED)
            self.emit(EventId.MESSAGE_DELETED, f"{len(mine)} handled message(s) deleted on the server.",
                      account=account)
            self.emit(EventId.ACCOUNT_FINISHED, f"{len(mine)} delivered, 0 diverted to the undeliverable mailbox, "
                      f"0 quarantined, 0 left for retry, 0 too big, {len(mine)} deleted on the server.",
                      account=account)
        self.emit(EventId.CYCLE_FINISHED, f"Cycle finished: {count} message(s) delivered.")
        self.store._db.execute("COMMIT")
        for i, account in enumerate(ACCOUNTS):
            uids = [f"UID{n:09d}" for n in range(first + i, first + count, len(ACCOUNTS))]
            for uid in uids:
                key = f"v2:{uid}:{account}:{'f' * 40}"
                self.journal.begin(account, uid, key, 4096)
                self.journal.finish(account, uid, key, 4096, "delivered", [f"{account}@contoso.com"])
            self.journal.make_durable()
            self.journal.forget(account, uids)

    async def housekeeping(self) -> None:
        """One step as the Housekeeper takes it, with a ticker on the loop emitting events through the store's
        sink (as the runner does) and timing each whole turn, its event writes included."""
        done = False

        async def ticker() -> None:
            while not done:
                started = time.perf_counter()
                await asyncio.sleep(0.005)
                self.store(Event(EventId.RUNNER_SCHEDULE, Severity.INFO, "tick", time=self.clock))
                stall = time.perf_counter() - started - 0.005
                self.worst_stall = max(self.worst_stall, stall)
                self.turns += 1
                self.long_turns += stall > 0.050

        task = asyncio.create_task(ticker())
        started = time.perf_counter()
        try:
            await asyncio.to_thread(self.retention.step, self.keep_days, self.max_mb, self.clock)
            await asyncio.to_thread(prune_journal, self.journal_db, self.clock.timestamp())
        finally:
            done = True
            await task
        self.prune_seconds += time.perf_counter() - started
        self.steps += 1

    async def run(self) -> None:
        sent = 0
        while sent < self.messages:
            count = min(self.per_cycle, self.messages - sent)
            self.cycle(sent, count)
            sent += count
            await self.housekeeping()
            self.peak_events = max(self.peak_events, on_disk(self.events_db))
            self.peak_journal = max(self.peak_journal, on_disk(self.journal_db))
            self.clock += CYCLE

    def report(self) -> str:
        events = self.store.count()
        deliveries = int(self.journal._db.execute("SELECT count(*) FROM deliveries").fetchone()[0])
        days = (self.messages / self.per_cycle) * CYCLE / timedelta(days=1)
        return (f"{self.messages:>9,} messages over {days:,.0f} simulated days ({self.per_cycle} a cycle, "
                f"keep_days={self.keep_days}, max_mb={self.max_mb}):\n"
                f"  event store: {on_disk(self.events_db) / MB:8.1f} MB at the end, {self.peak_events / MB:8.1f} MB "
                f"at its peak; {events:,} events kept\n"
                f"  journal:     {on_disk(self.journal_db) / MB:8.1f} MB at the end, {self.peak_journal / MB:8.1f} MB "
                f"at its peak; {deliveries:,} delivery rows kept\n"
                f"  housekeeping: {self.steps:,} steps, {self.prune_seconds / max(self.steps, 1) * 1000:.1f} ms a step "
                f"on average (in a worker thread); longest loop stall while pruning {self.worst_stall * 1000:.1f} ms; "
                f"{self.long_turns} of {self.turns:,} turns over 50 ms")

    def close(self) -> None:
        self.store.close()
        self.journal.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("messages", nargs="*", type=int, default=[100_000, 1_000_000])
    parser.add_argument("--per-day", type=int, default=10_000, help="messages a day (default 10000)")
    parser.add_argument("--keep-days", type=int, default=90)
    parser.add_argument("--max-mb", type=int, default=200)
    args = parser.parse_args()
    for messages in args.messages:
        with tempfile.TemporaryDirectory(prefix="pop3gui-retention-") as tmp:
            run = Run(Path(tmp), messages, args.per_day, args.keep_days, args.max_mb)
            started = time.perf_counter()
            try:
                asyncio.run(run.run())
                print(run.report(), flush=True)
                print(f"  (simulated in {time.perf_counter() - started:.0f} s)", flush=True)
            finally:
                run.close()


if __name__ == "__main__":
    main()
