"""How the Events tab copes with a long history: load time and event-loop stalls.

Fills a temporary event store with 100,000 events, opens the Events tab
offscreen, then appends 5,000 events live (50 every 10 ms, as a busy run
would) while a 1 ms timer measures the longest gap the event loop had.
Prints figures; asserts nothing.  Run: ``python3 benchmarks/event_view.py``.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from pop3gui.core.config.model import Config  # noqa: E402
from pop3gui.core.events.model import Event, EventId, Severity  # noqa: E402
from pop3gui.core.state.paths import Paths  # noqa: E402
from pop3gui.gui.controller import ConnectorController  # noqa: E402
from pop3gui.gui.tabs.events import EventsTab  # noqa: E402

HISTORY = 100_000
LIVE = 5_000
LIVE_CHUNK = 50  # events per producer tick
LIVE_TICK_MS = 10
SEVERITIES = (Severity.DEBUG, Severity.INFO, Severity.WARNING, Severity.ERROR)
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def sample(i: int) -> Event:
    return Event(id=EventId.MESSAGE_DELIVERED, severity=SEVERITIES[i % 4], text=f"Delivered message {i}",
                 account=f"account{i % 7}", subject=f"Subject {i}", message_id=f"<{i}@example.net>",
                 cause="", fix="", time=T0 + timedelta(seconds=i))


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


def main() -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    guard = _RefcountGuard()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        controller = ConnectorController(Paths(base / "config.toml", base / "state", base / "logs"), Config())
        store = controller.store
        t = time.perf_counter()
        store._db.execute("BEGIN")  # noqa: SLF001 (one transaction: set-up speed only)
        for i in range(HISTORY):
            store.append(sample(i))
        store._db.execute("COMMIT")  # noqa: SLF001
        print(f"filled store:            {HISTORY:>7} events in {time.perf_counter() - t:6.2f} s")

        t = time.perf_counter()
        tab = EventsTab(controller)
        tab.resize(1000, 700)
        tab.show()
        app.processEvents()
        print(f"tab created and shown:   {tab.model.rowCount():>7} rows   in {time.perf_counter() - t:6.2f} s")

        tab.view.selectRow(tab.proxy.rowCount() - 1)
        for label, change in (("filter Warnings+errors", lambda: tab.severity_combo.setCurrentIndex(2)),
                              ("filter one account", lambda: tab.account_combo.setCurrentIndex(1)),
                              ("search text", lambda: (tab.search_edit.setText("message 9999"),
                                                       tab.apply_search())),
                              ("reset filters", tab.reset_filters)):
            t = time.perf_counter()
            change()
            app.processEvents()
            guard.top_up()
            print(f"{label + ':':<24} {tab.proxy.rowCount():>7} rows   in {time.perf_counter() - t:6.3f} s")

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
                controller.bus.emit(sample(HISTORY + emitted))
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
        elapsed = time.perf_counter() - t
        print(f"live appends:            {LIVE:>7} events in {elapsed:6.2f} s "
              f"(includes storing each one in SQLite)")
        print(f"worst event-loop stall:  {worst * 1000:9.1f} ms")
        print(f"rows now:                {tab.model.rowCount():>7}, at bottom: {tab.is_at_bottom()}")
        if guard.repaid:
            print(f"note: gave back {guard.repaid} references to None/True/False that this PySide6 "
                  "dropped (broken refcounting on Python < 3.12); see _RefcountGuard")
        tab.close()
        controller.close()
        guard.top_up()


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown, where the broken PySide6 refcounts above abort
