"""How the Events tab and ``pop3gui events`` cope with a long history: 10,000 to 1,000,000 events.

For each size, fills a temporary event store with a realistic mix (seven
accounts of uneven traffic; downloads, deliveries, deferrals and refusals with
their causes and fixes), then opens the Events tab offscreen and times: the
tab shown with the newest rows in sight; a severity filter; an account filter;
a text search for a common and a rare word; appending 5,000 live events (50
every 10 ms, as a busy run would) while a 1 ms timer measures the longest gap
the event loop had; ``pop3gui events --limit 50`` as a subprocess; and, for a
store of an earlier release (no text index), its opening and one step of the
index built in the background.  Prints a table; asserts nothing.

Run: ``python3 benchmarks/event_view.py [--sizes 10000,100000,1000000] [--keep DIR]``
(``--keep`` reuses the filled stores across runs: filling a million takes a minute or two).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from pop3gui.core.config.model import Config  # noqa: E402
from pop3gui.core.events.model import Event, EventId, Severity  # noqa: E402
from pop3gui.core.events.store import EventStore  # noqa: E402
from pop3gui.core.state.paths import Paths  # noqa: E402
from pop3gui.gui.controller import ConnectorController  # noqa: E402
from pop3gui.gui.search_index import INDEX_STEP_MS  # noqa: E402
from pop3gui.gui.tabs.events import EventsTab  # noqa: E402

SIZES = (10_000, 100_000, 1_000_000)
LIVE = 5_000
LIVE_CHUNK = 50  # events per producer tick
LIVE_TICK_MS = 10
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
ACCOUNTS = ("info", "sales", "support", "jobs", "billing", "office", "alice.meyer")
WORDS = ("invoice", "meeting", "report", "holiday", "order", "quote", "update", "newsletter", "contract", "delivery")
COMMON_WORD = "delivered"  # in about half the events
RARE_WORD = "<4242."  # the start of one Message-ID: one event in each store
_COLUMNS = "time, id, severity, account, uid, message_id, subject, text, cause, fix, transcript"


def history(n: int, seed: int = 1) -> Iterator[tuple[object, ...]]:
    """Rows for the events table: 40 % downloads (debug), 53 % deliveries, 5.5 % deferrals, 1.5 % refusals."""
    r = random.Random(seed)
    for i in range(n):
        x = r.random()
        account = ACCOUNTS[int(r.random() ** 2 * len(ACCOUNTS))]
        subject = f"{r.choice(WORDS).title()} {r.randrange(100_000)}"
        common = (T0 + timedelta(seconds=3 * i)).isoformat(), account, str(i), f"<{i}.{r.randrange(10**9)}@example.net>"
        stamp, acct, uid, mid = common
        if x < 0.40:
            yield (stamp, 3001, 10, acct, uid, mid, subject, f"Downloaded message {i} ({r.randrange(2, 900)} KB)",
                   "", "", "")
        elif x < 0.93:
            yield stamp, 3002, 20, acct, uid, mid, subject, f"Delivered to {acct}@office.local", "", "", ""
        elif x < 0.985:
            yield (stamp, 4002, 30, acct, uid, mid, subject, "Recipient deferred: 451 4.3.0 try again later",
                   "The local server is busy or short of disk space.",
                   "Nothing to do: the message is retried at the next run.", "")
        else:
            yield (stamp, 4001, 40, acct, uid, mid, subject,
                   f"Recipient refused: 550 5.1.1 <{acct}{r.randrange(50)}@office.local> unknown user",
                   "The mailbox does not exist on the local server.",
                   "Create the mailbox or route the address elsewhere.", "S: 550 5.1.1 unknown user")


def live_event(i: int) -> Event:
    return Event(id=EventId.MESSAGE_DELIVERED, severity=Severity.INFO, text=f"Delivered live message {i}",
                 account=ACCOUNTS[i % 3], subject=f"Live {i}", message_id=f"<live{i}@example.net>")


def filled_store(path: Path, n: int, keep: Path | None) -> float:
    """A store of *n* events at *path* (copied from *keep* when filled there before); the fill time or 0."""
    cached = keep / f"events-{n}.sqlite3" if keep else None
    if cached is not None and cached.exists():
        shutil.copyfile(cached, path)
        return 0.0
    t = time.perf_counter()
    store = EventStore(path)
    store._db.execute("BEGIN")  # noqa: SLF001 (one transaction: set-up speed only)
    store._db.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES ({', '.join('?' * 11)})",  # noqa: SLF001
                          history(n))
    store._db.execute("COMMIT")  # noqa: SLF001
    store.close()
    elapsed = time.perf_counter() - t
    if cached is not None:
        shutil.copyfile(path, cached)
    return elapsed


def settle() -> None:
    """Flush the system's dirty pages: a store just written or copied is otherwise written out by the
    first fsync SQLite makes (a WAL checkpoint), hundreds of milliseconds that no real session has."""
    if hasattr(os, "sync"):
        os.sync()


def earlier_release(path: Path) -> None:
    """Make *path* a store as an earlier release left it: no text index."""
    db = sqlite3.connect(path)
    db.executescript("DROP TRIGGER events_fts_insert; DROP TRIGGER events_fts_delete; "
                     "DROP TRIGGER events_fts_update; DROP TABLE events_fts; DROP TABLE events_fts_state;")
    db.close()


class _RefcountGuard:
    """Works around PySide6 6.12.0 on Python < 3.12, which drops a reference to None on every
    void call and to True on every Signal.emit() (the wheels assume immortal singletons).

    Unchecked, a long run deallocates None and aborts; topping the counts back up to where they
    started lets the benchmark finish.  The application itself has no such guard.
    """

    SINGLETONS = (None, True, False)

    def __init__(self) -> None:
        self.baseline = {id(o): sys.getrefcount(o) for o in self.SINGLETONS}
        self.repaid = 0

    def top_up(self) -> None:
        for o in self.SINGLETONS:
            lost = self.baseline[id(o)] - sys.getrefcount(o)
            for _ in range(max(0, lost)):
                ctypes.pythonapi.Py_IncRef(ctypes.py_object(o))
            self.repaid += max(0, lost)


def open_tab(app: QApplication, paths: Paths) -> tuple[ConnectorController, EventsTab, float]:
    """The Events tab on the store under *paths*, shown and painted once; and how long that took (s)."""
    t = time.perf_counter()
    controller = ConnectorController(paths, Config())
    tab = EventsTab(controller)
    tab.resize(1000, 700)
    tab.show()
    app.processEvents()
    return controller, tab, time.perf_counter() - t


def measure(n: int, app: QApplication, guard: _RefcountGuard, keep: Path | None) -> dict[str, str]:
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        paths = Paths(base / "config.toml", base / "state", base / "logs")
        paths.state_dir.mkdir(mode=0o700)
        filled = filled_store(paths.events_db, n, keep)
        settle()
        results["fill store (one transaction)"] = f"{filled:.1f} s" if filled else "cached"

        controller, tab, elapsed = open_tab(app, paths)
        newest = controller.store.latest(1)[0].seq
        bottom = tab.view.rowAt(tab.view.viewport().height() - 2)
        in_sight = tab.proxy.event_at(bottom).seq == newest if bottom >= 0 else False
        results["open tab, newest rows shown"] = f"{elapsed * 1000:.0f} ms" + ("" if in_sight else " (NOT in sight)")
        guard.top_up()

        def timed(label: str, change: Callable[[], object]) -> None:
            t = time.perf_counter()
            change()
            app.processEvents()
            guard.top_up()
            elapsed = time.perf_counter() - t
            results[label] = f"{elapsed * 1000:.0f} ms ({tab.count_label.text().split(': ', 1)[1]})"

        tab.view.selectRow(tab.proxy.rowCount() - 1)
        timed("filter: warnings and errors", lambda: tab.severity_combo.setCurrentIndex(2))
        timed("filter: + one account", lambda: tab.account_combo.setCurrentIndex(tab.account_combo.findData("jobs")))
        timed("reset filters", tab.reset_filters)
        timed("filter: one account", lambda: tab.account_combo.setCurrentIndex(tab.account_combo.findData("jobs")))
        timed("reset filters ", tab.reset_filters)
        def search(word: str) -> None:
            tab.search_edit.setText(word)
            tab.apply_search()

        for label, word in (("search: common word", COMMON_WORD), ("search: rare word", RARE_WORD),
                            ("search: 2 letters (no index)", "zq")):
            timed(label, functools.partial(search, word))
        timed("reset filters  ", tab.reset_filters)
        tab.view.scrollToBottom()
        app.processEvents()

        rows_before = tab.model.rowCount()
        t = time.perf_counter()
        tab.view.scrollToTop()
        app.processEvents()
        results["scroll to top: older page read"] = (f"{(time.perf_counter() - t) * 1000:.0f} ms "
                                                     f"(+{tab.model.rowCount() - rows_before} rows)")
        tab.view.scrollToBottom()
        app.processEvents()
        guard.top_up()

        worst, elapsed = live_stall(app, guard, controller, tab)
        results["live: 5,000 events, worst stall"] = (f"{worst * 1000:.1f} ms (in {elapsed:.1f} s, "
                                                      f"at bottom: {tab.is_at_bottom()})")
        tab.close()
        tab.deleteLater()
        controller.close()
        app.processEvents()
        guard.top_up()

        settle()
        env = {**os.environ, "POP3GUI_HOME": str(base)}
        best = min(_cli(env) for _ in range(3))
        results["pop3gui events --limit 50"] = f"{best * 1000:.0f} ms"

        earlier_release(paths.events_db)
        settle()
        t = time.perf_counter()
        store = EventStore(paths.events_db)
        results["earlier release's store: open"] = f"{(time.perf_counter() - t) * 1000:.0f} ms"
        t = time.perf_counter()
        store.query(grep=RARE_WORD, limit=50)
        results["earlier release: --grep rare, no index yet"] = f"{(time.perf_counter() - t) * 1000:.0f} ms"
        store.close()
        controller, tab, elapsed = open_tab(app, paths)
        results["earlier release: open tab"] = f"{elapsed * 1000:.0f} ms"
        worst, elapsed = live_stall(app, guard, controller, tab)
        results["earlier release: live stall while indexing"] = f"{worst * 1000:.1f} ms"
        while tab.indexer.running():
            app.processEvents()
            guard.top_up()
            time.sleep(0.001)
        results[f"earlier release: text index built (~{INDEX_STEP_MS} ms a step)"] = \
            f"{time.perf_counter() - t:.1f} s"
        tab.close()
        tab.deleteLater()
        controller.close()
        app.processEvents()
        guard.top_up()
    return results


def live_stall(app: QApplication, guard: _RefcountGuard, controller: ConnectorController,
               tab: EventsTab) -> tuple[float, float]:
    """Emit LIVE events, LIVE_CHUNK every LIVE_TICK_MS; the longest event-loop gap and the time taken."""
    worst = 0.0
    last = time.perf_counter()
    emitted = 0

    def monitor() -> None:
        nonlocal worst, last
        now = time.perf_counter()
        worst = max(worst, now - last)
        last = now
        guard.top_up()

    def produce() -> None:
        nonlocal emitted
        for _ in range(LIVE_CHUNK):
            controller.bus.emit(live_event(emitted))
            emitted += 1
        guard.top_up()
        if emitted >= LIVE:
            producer.stop()

    monitor_timer = QTimer()
    monitor_timer.setInterval(1)
    monitor_timer.timeout.connect(monitor)
    producer = QTimer()
    producer.setInterval(LIVE_TICK_MS)
    producer.timeout.connect(produce)
    t = time.perf_counter()
    last = t
    monitor_timer.start()
    producer.start()
    while emitted < LIVE or tab.model.pending():
        app.processEvents()
        guard.top_up()
    app.processEvents()
    monitor_timer.stop()
    return worst, time.perf_counter() - t


def _cli(env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pop3gui", "events", "--limit", "50"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated numbers of events")
    parser.add_argument("--keep", type=Path, help="folder to keep the filled stores in, and reuse them from")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    guard = _RefcountGuard()
    table: dict[int, dict[str, str]] = {}
    for n in sizes:
        table[n] = measure(n, app, guard, args.keep)
        print(f"{n:,} events done", file=sys.stderr, flush=True)
    labels = list(table[sizes[0]])
    print("| measurement | " + " | ".join(f"{n:,} events" for n in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for label in labels:
        print(f"| {label.strip()} | " + " | ".join(table[n][label] for n in sizes) + " |")
    if guard.repaid:
        print(f"\nnote: gave back {guard.repaid} references to None/True/False that this PySide6 "
              "dropped (broken refcounting on Python < 3.12); see _RefcountGuard")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown, where the broken PySide6 refcounts above abort
