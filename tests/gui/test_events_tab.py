"""The event log model, its filter and the Events tab (offscreen, pytest-qt)."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QMessageBox

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.events.model import Event, EventId, Reply, Severity
from pop3gui.core.events.search import EventFilter
from pop3gui.core.failures import Failure
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.paths import Paths
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.event_model import (COL_ACCOUNT, COL_ID, COL_SEVERITY, COL_TEXT, COL_TIME, COUNT_CAP, PAGE_ROWS,
                                     AccountRole, EventFilterProxy, EventRole, EventTableModel, SeverityRole)
from pop3gui.core.events.export import EXPORT_FIELDS, ExportError, export_events
from pop3gui.gui.tabs.events import EventsTab

# The offscreen platform cannot pass a window's size limits on; harmless, but logged as a warning.
OFFSCREEN_SIZE_HINTS = "This plugin does not support propagateSizeHints"

T0 = datetime(2025, 3, 4, 8, 0, tzinfo=timezone.utc)
SEVERITIES = (Severity.DEBUG, Severity.INFO, Severity.WARNING, Severity.ERROR)


def make_event(i: int, **kw: object) -> Event:
    fields: dict[str, object] = dict(
        id=EventId.MESSAGE_DELIVERED, severity=SEVERITIES[i % 4], text=f"event {i}", account=f"acct{i % 3}",
        subject=f"subject {i}", message_id=f"<m{i}@example.net>", time=T0 + timedelta(seconds=i))
    fields.update(kw)
    return Event(**fields)  # type: ignore[arg-type]


def fill(store: EventStore, events: list[Event]) -> None:
    """Append many events in one transaction (the store commits each append on its own otherwise)."""
    store._db.execute("BEGIN")  # noqa: SLF001 (test set-up speed only)
    for event in events:
        store.append(event)
    store._db.execute("COMMIT")  # noqa: SLF001


def live(store: EventStore, model: EventTableModel, event: Event) -> None:
    """What the window's bus does with an event: store it, then hand it to the model."""
    store.append(event)
    model.add(event)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    s = EventStore(tmp_path / "events.sqlite3")
    yield s
    s.close()


@pytest.fixture
def controller(tmp_path: Path, qapp: object) -> Iterator[ConnectorController]:
    config = Config(accounts=(AccountConfig(name="configured", host="pop.example.net", username="c"),))
    c = ConnectorController(Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs"), config)
    yield c
    c.close()


@pytest.fixture
def tab(controller: ConnectorController, qtbot: object) -> EventsTab:
    t = EventsTab(controller)
    qtbot.addWidget(t)  # type: ignore[attr-defined]
    return t


def texts(model: EventTableModel | EventFilterProxy) -> list[str]:
    return [model.index(r, COL_TEXT).data() for r in range(model.rowCount())]


# --- the model, with no view attached --------------------------------------------------------------


def test_model_and_proxy_pass_the_model_tester(qtmodeltester: object, qtbot: object, store: EventStore) -> None:
    fill(store, [make_event(i, transcript="S: 250 ok" if i == 3 else "") for i in range(40)])
    model = EventTableModel(store)
    model.load_history()
    proxy = EventFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(model)  # type: ignore[attr-defined]
    qtmodeltester.check(proxy)  # type: ignore[attr-defined]
    proxy.set_min_severity(Severity.WARNING)
    proxy.set_text("event 1")
    qtmodeltester.check(proxy)  # type: ignore[attr-defined]


def test_history_loads_in_store_order_with_roles(qapp: object, store: EventStore) -> None:
    fill(store, [make_event(i, cause="because" if i == 2 else "", fix="do this" if i == 2 else "")
                 for i in range(10)])
    model = EventTableModel(store)
    assert model.load_history() == 10
    assert texts(model) == [f"event {i}" for i in range(10)]
    assert [model.index(0, c).data() for c in (COL_SEVERITY, COL_ID, COL_ACCOUNT)] == ["Debug", "3002", "acct0"]
    assert model.index(0, COL_TIME).data() == f"{T0.astimezone():%Y-%m-%d %H:%M:%S}"
    assert not model.index(0, COL_SEVERITY).data(Qt.ItemDataRole.DecorationRole).isNull()
    row = model.index(2, COL_TEXT)
    event = row.data(EventRole)
    assert isinstance(event, Event) and event.seq == 3 and event.text == "event 2"
    assert row.data(SeverityRole) == int(Severity.WARNING)
    assert row.data(AccountRole) == "acct2"
    assert "because" in row.data(Qt.ItemDataRole.ToolTipRole) and "do this" in row.data(Qt.ItemDataRole.ToolTipRole)
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(5)] == \
        ["Time", "Severity", "Id", "Account", "Text"]


def test_history_limit_keeps_the_newest(qapp: object, store: EventStore) -> None:
    fill(store, [make_event(i) for i in range(10)])
    model = EventTableModel(store)
    assert model.load_history(limit=3) == 3
    assert texts(model) == ["event 7", "event 8", "event 9"]


def test_added_events_arrive_in_one_insertion_without_reset(qtbot: object, store: EventStore) -> None:
    model = EventTableModel(store)
    model.load_history()
    inserted: list[tuple[int, int]] = []
    resets: list[bool] = []
    model.rowsInserted.connect(lambda _p, first, last: inserted.append((first, last)))
    model.modelReset.connect(lambda: resets.append(True))
    with qtbot.waitSignal(model.batch_added, timeout=2000):  # type: ignore[attr-defined]
        for i in range(5):
            live(store, model, make_event(i))
        assert model.rowCount() == 0 and model.pending() == 5  # queued until the batch timer fires
    assert inserted == [(0, 4)]
    assert not resets
    assert texts(model) == [f"event {i}" for i in range(5)]


def test_max_rows_drops_the_oldest(qtbot: object, store: EventStore) -> None:
    fill(store, [make_event(i) for i in range(4)])
    model = EventTableModel(store, max_rows=5)
    model.load_history()
    removed: list[tuple[int, int]] = []
    model.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))
    for i in range(4, 7):
        live(store, model, make_event(i))
    model.flush()
    assert removed == [(0, 1)]
    assert texts(model) == [f"event {i}" for i in range(2, 7)]
    for i in range(7, 20):  # a batch larger than the whole buffer
        live(store, model, make_event(i))
    model.flush()
    assert texts(model) == [f"event {i}" for i in range(15, 20)]


def test_max_rows_also_bounds_the_history(qapp: object, store: EventStore) -> None:
    fill(store, [make_event(i) for i in range(10)])
    model = EventTableModel(store, max_rows=4)
    model.load_history()
    assert texts(model) == ["event 6", "event 7", "event 8", "event 9"]


def test_proxy_filters_severity_account_and_text(qapp: object, store: EventStore) -> None:
    fill(store, [make_event(0, text="Login refused", cause="Wrong PASSWORD"),
                 make_event(1, text="Delivered", fix="nothing to do"),
                 make_event(2, text="Too big", subject="Holiday photos"),
                 make_event(3, text="Refused", message_id="<XYZ@example.net>")])
    model = EventTableModel(store)
    model.load_history()
    proxy = EventFilterProxy()
    proxy.setSourceModel(model)
    assert proxy.rowCount() == 4
    proxy.set_text("password")  # cause, any case
    assert texts(proxy) == ["Login refused"]
    proxy.set_text("NOTHING")  # fix
    assert texts(proxy) == ["Delivered"]
    proxy.set_text("holiday")  # subject
    assert texts(proxy) == ["Too big"]
    proxy.set_text("xyz@")  # Message-ID
    assert texts(proxy) == ["Refused"]
    proxy.set_text("refused")  # text
    assert texts(proxy) == ["Login refused", "Refused"]
    proxy.set_min_severity(Severity.WARNING)
    assert texts(proxy) == ["Refused"]
    proxy.set_text("")
    assert texts(proxy) == ["Too big", "Refused"]
    proxy.set_account("acct0")
    assert texts(proxy) == ["Refused"]  # event 3 is acct0 and ERROR
    proxy.set_min_severity(Severity.DEBUG)
    assert texts(proxy) == ["Login refused", "Refused"]
    assert [e.text for e in proxy.events()] == ["Login refused", "Refused"]


def test_proxy_filters_live_rows(qtbot: object, store: EventStore) -> None:
    model = EventTableModel(store)
    proxy = EventFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_min_severity(Severity.ERROR)
    for i in range(8):
        live(store, model, make_event(i))
    model.flush()
    assert texts(proxy) == ["event 3", "event 7"]


@pytest.mark.slow
def test_hundred_thousand_events_page_and_filter(qapp: object, store: EventStore) -> None:
    n = 100_000
    fill(store, [make_event(i, text=f"event {i}" + (" needle" if i % 1000 == 7 else "")) for i in range(n)])
    model = EventTableModel(store)
    proxy = EventFilterProxy()
    proxy.setSourceModel(model)
    assert model.load_history() == PAGE_ROWS
    assert model.index(PAGE_ROWS - 1, COL_TEXT).data() == f"event {n - 1}"
    assert model.total() == n and model.matching() == (n, True)
    proxy.set_min_severity(Severity.WARNING)
    assert model.matching() == (COUNT_CAP, False)
    assert all(proxy.index(r, 0).data(SeverityRole) >= Severity.WARNING for r in range(proxy.rowCount()))
    proxy.set_account("acct1")
    expected = [i for i in range(n) if i % 4 >= 2 and i % 3 == 1]
    assert model.matching() == (COUNT_CAP, False)
    proxy.set_text("NEEDLE")
    expected = [i for i in expected if i % 1000 == 7]
    assert [e.seq - 1 for e in model.events()] == expected
    assert [e.seq - 1 for e in proxy.events()] == expected
    assert model.matching() == (len(expected), True)
    proxy.set_min_severity(Severity.DEBUG)
    proxy.set_account("")
    assert proxy.rowCount() == n // 1000 and not model.can_fetch_older()


# --- exporting ---------------------------------------------------------------------------------------


EXPORTED = [make_event(1, text="Delivered, with comma", subject='Quote "this"'),
            make_event(2, text="Refused", cause="550 user unknown", fix="Create the mailbox",
                       transcript="C: RCPT TO:<bob@office.local>\nS: 550 5.1.1 unknown", account="ä-account",
                       recipient="bob@office.local", reply=Reply(550, "5.1.1", "unknown"),
                       diagnosis=Failure.UNKNOWN_USER)]


def test_export_csv_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    assert export_events(EXPORTED, path) == 2
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == EXPORT_FIELDS
    records = [dict(zip(rows[0], row)) for row in rows[1:]]
    assert [r["text"] for r in records] == ["Delivered, with comma", "Refused"]
    assert records[0]["subject"] == 'Quote "this"'
    assert records[1]["transcript"] == "C: RCPT TO:<bob@office.local>\nS: 550 5.1.1 unknown"
    assert records[1]["account"] == "ä-account" and records[1]["severity"] == "warning"
    assert records[1]["recipient"] == "bob@office.local" and records[1]["reply"] == "550 5.1.1 unknown"
    assert records[1]["diagnosis"] == "unknown_user" and records[1]["outcome"] == ""
    assert records[0]["reply"] == "" and records[0]["diagnosis"] == ""
    assert records[1]["id"] == str(int(EventId.MESSAGE_DELIVERED))
    assert datetime.fromisoformat(records[0]["time"]) == EXPORTED[0].time


def test_export_json_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "events.JSON"
    assert export_events(EXPORTED, path) == 2
    with path.open(encoding="utf-8") as f:
        records = json.load(f)
    assert [tuple(r) for r in records] == [EXPORT_FIELDS, EXPORT_FIELDS]
    assert records[1]["cause"] == "550 user unknown" and records[1]["fix"] == "Create the mailbox"
    assert records[1]["id"] == int(EventId.MESSAGE_DELIVERED)
    assert records[1]["transcript"].splitlines()[1] == "S: 550 5.1.1 unknown"
    assert records[1]["reply"] == {"code": 550, "enhanced": "5.1.1", "text": "unknown"}
    assert records[1]["diagnosis"] == "unknown_user" and records[1]["outcome"] is None
    assert records[0]["reply"] is None and records[0]["recipient"] == ""
    # Written an event at a time, laid out as one json.dump of the whole list would.
    assert path.read_text(encoding="utf-8") == json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    assert export_events([], path) == 0 and json.loads(path.read_text(encoding="utf-8")) == []


def test_an_export_is_written_as_it_is_read_and_takes_its_name_when_whole(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("an earlier export\n", encoding="utf-8")
    seen: list[bool] = []

    def events() -> Iterator[Event]:
        for i, event in enumerate(EXPORTED * 3):
            seen.append((tmp_path / "events.csv.part").exists())
            if i == 4:
                raise OSError(28, "No space left on device")
            yield event

    with pytest.raises(ExportError, match="No space left on device"):
        export_events(events(), path)
    assert seen[1:] == [True] * 4  # written while read, into the part file
    assert path.read_text(encoding="utf-8") == "an earlier export\n"  # a failed export replaces nothing
    assert not (tmp_path / "events.csv.part").exists()


def test_export_to_unwritable_path_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "no such folder" / "events.csv"
    with pytest.raises(ExportError) as caught:
        export_events(EXPORTED, path)
    assert caught.value.path == path
    assert str(path) in str(caught.value)
    assert caught.value.fix  # says what to do


# --- the tab -------------------------------------------------------------------------------------------


def test_tab_shows_history_and_live_events(tab: EventsTab, controller: ConnectorController,
                                           qtbot: object) -> None:
    assert tab.model.rowCount() == 0
    with qtbot.waitSignal(tab.model.rowsInserted, timeout=2000):  # type: ignore[attr-defined]
        controller.bus.emit(make_event(1))
        controller.bus.emit(make_event(2))
    assert texts(tab.proxy) == ["event 1", "event 2"]
    assert controller.store.count() == 2  # the bus also stored them


def test_tab_loads_stored_history(controller: ConnectorController, qtbot: object) -> None:
    fill(controller.store, [make_event(i) for i in range(5)])
    t = EventsTab(controller)
    qtbot.addWidget(t)  # type: ignore[attr-defined]
    assert texts(t.proxy) == [f"event {i}" for i in range(5)]


def test_a_thousand_live_events_are_batched(tab: EventsTab, controller: ConnectorController,
                                            qtbot: object) -> None:
    insertions: list[int] = []
    tab.model.rowsInserted.connect(lambda _p, first, last: insertions.append(last - first + 1))
    for i in range(1000):
        controller.bus.emit(make_event(i))
    qtbot.waitUntil(lambda: tab.model.rowCount() == 1000, timeout=5000)  # type: ignore[attr-defined]
    assert sum(insertions) == 1000
    assert len(insertions) < 20


def test_selecting_a_row_fills_the_detail_pane(tab: EventsTab, controller: ConnectorController,
                                               qtbot: object) -> None:
    transcript = "S: 220 mail.office.local ESMTP\nC: RCPT TO:<bob@office.local>\nS: 550 5.1.1 <bob@x>: unknown"
    controller.bus.emit(make_event(0))
    controller.bus.emit(make_event(1, text="Recipient refused", cause="User unknown", fix="Create the mailbox",
                                   transcript=transcript))
    tab.model.flush()
    assert not tab.copy_button.isEnabled()
    tab.view.selectRow(1)
    shown = tab.detail.toPlainText()
    for part in ("Recipient refused", "User unknown", "Create the mailbox", "acct1", "subject 1",
                 *transcript.splitlines()):
        assert part in shown
    assert tab.copy_button.isEnabled()
    tab.copy_button.click()
    assert QGuiApplication.clipboard().text() == tab.selected_event().full_text()  # type: ignore[union-attr]
    tab.view.clearSelection()
    assert tab.detail.toPlainText() == ""


def test_tab_filters_and_accounts(tab: EventsTab, controller: ConnectorController, qtbot: object) -> None:
    for i in range(8):
        controller.bus.emit(make_event(i, text=f"event {i}" + (" special" if i == 6 else "")))
    tab.model.flush()
    accounts = [tab.account_combo.itemText(i) for i in range(tab.account_combo.count())]
    assert accounts == ["All accounts", "acct0", "acct1", "acct2", "configured"]
    tab.severity_combo.setCurrentIndex(2)  # Warnings and errors
    assert texts(tab.proxy) == ["event 2", "event 3", "event 6 special", "event 7"]
    tab.account_combo.setCurrentIndex(tab.account_combo.findData("acct0"))
    assert texts(tab.proxy) == ["event 3", "event 6 special"]
    tab.search_edit.setText("SPECIAL")
    qtbot.waitUntil(lambda: tab.proxy.rowCount() == 1, timeout=2000)  # type: ignore[attr-defined]
    assert tab.count_label.text() == "Events shown: 1 of 8"
    tab.reset_button.click()
    assert tab.proxy.rowCount() == 8 and tab.search_edit.text() == ""
    controller.save(Config(accounts=(AccountConfig(name="newbox", host="h", username="u", deliver_to="newbox@office.local"),)))
    assert tab.account_combo.findText("newbox") > 0


def test_filter_change_keeps_the_selected_event(tab: EventsTab, controller: ConnectorController) -> None:
    for i in range(8):
        controller.bus.emit(make_event(i))
    tab.model.flush()
    tab.view.selectRow(7)
    tab.severity_combo.setCurrentIndex(3)  # Errors: event 7 is still shown
    assert tab.selected_event() is not None and tab.selected_event().text == "event 7"  # type: ignore[union-attr]
    assert "event 7" in tab.detail.toPlainText()
    tab.account_combo.setCurrentIndex(tab.account_combo.findData("acct0"))  # event 7 is acct1: hidden
    assert tab.selected_event() is None and tab.detail.toPlainText() == ""


def test_tab_exports_the_filtered_rows(tab: EventsTab, controller: ConnectorController, tmp_path: Path,
                                      loop: asyncio.AbstractEventLoop) -> None:
    for i in range(8):
        controller.bus.emit(make_event(i))
    tab.model.flush()
    tab.severity_combo.setCurrentIndex(3)  # Errors
    assert loop.run_until_complete(tab.export_to(tmp_path / "errors.json"))
    with (tmp_path / "errors.json").open(encoding="utf-8") as f:
        assert [r["text"] for r in json.load(f)] == ["event 3", "event 7"]
    assert loop.run_until_complete(tab.export_to(tmp_path / "errors.csv"))
    with (tmp_path / "errors.csv").open(encoding="utf-8-sig", newline="") as f:
        assert [r["text"] for r in csv.DictReader(f)] == ["event 3", "event 7"]


def test_tab_export_error_is_explained(tab: EventsTab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      loop: asyncio.AbstractEventLoop) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, title, text, *a: shown.append((title, text)))
    path = tmp_path / "missing" / "events.csv"
    assert not loop.run_until_complete(tab.export_to(path))
    assert tab.export_button.isEnabled()
    assert len(shown) == 1
    title, text = shown[0]
    assert title == "Export failed"
    assert str(path) in text and "Choose a folder" in text and "Traceback" not in text


@pytest.mark.qt_log_ignore(OFFSCREEN_SIZE_HINTS)
def test_auto_scroll_only_when_at_the_bottom(tab: EventsTab, controller: ConnectorController,
                                             qtbot: object) -> None:
    fill(controller.store, [make_event(i) for i in range(300)])
    tab.model.load_history()
    tab.resize(800, 500)
    tab.show()
    qtbot.waitExposed(tab)  # type: ignore[attr-defined]
    bar = tab.view.verticalScrollBar()
    tab.view.scrollToBottom()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()

    with qtbot.waitSignal(tab.model.batch_added, timeout=2000):  # type: ignore[attr-defined]
        controller.bus.emit(make_event(300))
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() and tab.is_at_bottom(), timeout=2000)  # type: ignore[attr-defined]
    last_row = tab.proxy.rowCount() - 1
    assert tab.view.rowAt(tab.view.viewport().height() - 2) == last_row  # the new row is in sight

    tab.view.scrollToTop()
    assert bar.value() == 0
    with qtbot.waitSignal(tab.model.batch_added, timeout=2000):  # type: ignore[attr-defined]
        controller.bus.emit(make_event(301))
    qtbot.wait(50)  # type: ignore[attr-defined]  # let any posted layout run before looking
    assert bar.value() == 0
    assert tab.proxy.rowCount() == 302


def test_keyboard_and_accessibility(tab: EventsTab) -> None:
    buddies = {label.buddy() for label in tab.findChildren(QLabel) if label.buddy() is not None}
    assert {tab.severity_combo, tab.account_combo, tab.search_edit, tab.detail} <= buddies
    for button in (tab.reset_button, tab.copy_button, tab.export_button):
        assert button.accessibleName(), button
        assert button.focusPolicy() & Qt.FocusPolicy.TabFocus
    assert tab.reset_button.accessibleName() == "Reset filters"
    assert not tab.view.tabKeyNavigation()
    assert [tab.severity_combo.itemText(i) for i in range(4)] == \
        ["All", "Info and above", "Warnings and errors", "Errors"]


def test_model_rejects_index_outside(qapp: object, store: EventStore) -> None:
    model = EventTableModel(store)
    assert model.data(QModelIndex()) is None
    assert model.rowCount(model.index(0, 0)) == 0


# --- a long history: pages from the store ---------------------------------------------------------------


def shown_tab(controller: ConnectorController, qtbot: object) -> EventsTab:
    t = EventsTab(controller)
    qtbot.addWidget(t)  # type: ignore[attr-defined]
    t.resize(800, 500)
    t.show()
    qtbot.waitExposed(t)  # type: ignore[attr-defined]
    return t


def bottom_text(tab: EventsTab) -> str:
    return str(tab.proxy.index(tab.view.rowAt(tab.view.viewport().height() - 2), COL_TEXT).data())


@pytest.mark.qt_log_ignore(OFFSCREEN_SIZE_HINTS)
def test_a_long_history_opens_on_its_newest_page(controller: ConnectorController, qtbot: object) -> None:
    fill(controller.store, [make_event(i) for i in range(2000)])
    tab = shown_tab(controller, qtbot)
    assert tab.model.rowCount() == PAGE_ROWS
    assert texts(tab.proxy)[0] == f"event {2000 - PAGE_ROWS}" and texts(tab.proxy)[-1] == "event 1999"  # oldest on top
    assert bottom_text(tab) == "event 1999" and tab.is_at_bottom()  # the newest in sight
    assert tab.count_label.text() == "Events: 2000"


@pytest.mark.qt_log_ignore(OFFSCREEN_SIZE_HINTS)
def test_scrolling_up_reads_older_pages_keeping_the_rows_in_sight(controller: ConnectorController,
                                                                   qtbot: object) -> None:
    fill(controller.store, [make_event(i) for i in range(1200)])
    tab = shown_tab(controller, qtbot)
    tab.view.scrollToTop()
    qtbot.waitUntil(lambda: tab.model.rowCount() == 2 * PAGE_ROWS, timeout=2000)  # type: ignore[attr-defined]
    # The view stays on the rows it showed (the first of the first page), now with older rows above them.
    qtbot.waitUntil(lambda: tab.proxy.index(tab.view.rowAt(0), COL_TEXT).data() == "event 700",  # type: ignore[attr-defined]
                    timeout=2000)
    assert texts(tab.proxy)[0] == "event 200"
    tab.view.scrollToTop()
    qtbot.waitUntil(lambda: tab.model.rowCount() == 1200, timeout=2000)  # type: ignore[attr-defined]
    assert texts(tab.proxy) == [f"event {i}" for i in range(1200)]
    assert not tab.model.can_fetch_older()


def test_filters_combine_over_the_whole_history(controller: ConnectorController, qtbot: object) -> None:
    n = 3000
    fill(controller.store, [make_event(i, text=f"event {i}" + (" Grüße aus KÖLN" if i % 50 == 3 else ""))
                            for i in range(n)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)  # type: ignore[attr-defined]
    tab.severity_combo.setCurrentIndex(3)  # Errors
    tab.account_combo.setCurrentIndex(tab.account_combo.findData("acct1"))
    want = [f"event {i}" for i in range(n) if i % 4 == 3 and i % 3 == 1]
    assert [t.split(" Gr")[0] for t in texts(tab.proxy)] == want  # fewer than a page: all of them
    assert tab.count_label.text() == f"Events shown: {len(want)} of {n}"
    tab.reset_filters()
    for typed in ("köln", "grüsse", "E AUS k"):  # substrings, ignoring case, beyond ASCII; "ß" is "ss"
        tab.search_edit.setText(typed)
        tab.apply_search()
        assert texts(tab.proxy) == [f"event {i} Grüße aus KÖLN" for i in range(n) if i % 50 == 3], typed
    tab.search_edit.setText("event 2")  # more than a page: the newest page of them, and a count
    tab.apply_search()
    matching = [f"event {i}" for i in range(n) if f"event {i}".startswith("event 2")]
    assert [t.split(" Gr")[0] for t in texts(tab.proxy)] == matching[-PAGE_ROWS:]
    assert tab.count_label.text() == f"Events shown: {len(matching)} of {n}"


def test_live_events_appear_while_filtered(controller: ConnectorController, qtbot: object) -> None:
    fill(controller.store, [make_event(i) for i in range(100)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)  # type: ignore[attr-defined]
    tab.severity_combo.setCurrentIndex(2)  # Warnings and errors
    tab.search_edit.setText("live")
    tab.apply_search()
    assert tab.proxy.rowCount() == 0
    resets: list[bool] = []
    tab.model.modelReset.connect(lambda: resets.append(True))
    for i in range(100, 108):
        controller.bus.emit(make_event(i, text=f"live {i}"))
    controller.bus.emit(make_event(111, text="not this one"))  # an error, but not the text
    qtbot.waitUntil(lambda: tab.proxy.rowCount() == 4, timeout=2000)  # type: ignore[attr-defined]
    assert texts(tab.proxy) == ["live 102", "live 103", "live 106", "live 107"]
    assert not resets
    assert tab.count_label.text() == "Events shown: 4 of 109"
    tab.reset_filters()
    assert texts(tab.proxy)[-3:] == ["live 106", "live 107", "not this one"]


def test_events_another_process_stores_show_up_with_the_next_batch(controller: ConnectorController,
                                                                  qtbot: object, tmp_path: Path) -> None:
    tab = EventsTab(controller)
    qtbot.addWidget(tab)  # type: ignore[attr-defined]
    runner = EventStore(controller.paths.events_db)  # the tray runner, say
    runner.append(make_event(1, text="stored elsewhere"))
    runner.close()
    controller.bus.emit(make_event(2))
    qtbot.waitUntil(lambda: tab.proxy.rowCount() == 2, timeout=2000)  # type: ignore[attr-defined]
    assert texts(tab.proxy) == ["stored elsewhere", "event 2"]


def test_the_selected_event_stays_selected_when_older_than_the_first_page(controller: ConnectorController,
                                                                         qtbot: object) -> None:
    fill(controller.store, [make_event(i, text=f"event {i}" + (" rare" if i in (10, 1900) else ""))
                            for i in range(2000)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)  # type: ignore[attr-defined]
    tab.search_edit.setText("RARE")
    tab.apply_search()
    assert texts(tab.proxy) == ["event 10 rare", "event 1900 rare"]
    tab.view.selectRow(0)
    tab.reset_filters()  # event 10 is far older than the newest page: read down to it
    assert tab.selected_event() is not None and tab.selected_event().text == "event 10 rare"  # type: ignore[union-attr]
    assert "event 10 rare" in tab.detail.toPlainText()
    assert texts(tab.proxy)[-1] == "event 1999"


def test_the_account_list_comes_from_the_whole_store(controller: ConnectorController, qtbot: object) -> None:
    fill(controller.store, [make_event(0, account="long-ago")] + [make_event(i) for i in range(1, 1000)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)  # type: ignore[attr-defined]
    assert tab.model.rowCount() == PAGE_ROWS  # the long-ago event is not held
    assert [tab.account_combo.itemText(i) for i in range(tab.account_combo.count())] == \
        ["All accounts", "acct0", "acct1", "acct2", "configured", "long-ago"]
    tab.account_combo.setCurrentIndex(tab.account_combo.findData("long-ago"))
    assert texts(tab.proxy) == ["event 0"]


def test_export_writes_every_matching_event_not_only_the_rows_held(controller: ConnectorController, qtbot: object,
                                                                  tmp_path: Path,
                                                                  loop: asyncio.AbstractEventLoop) -> None:
    fill(controller.store, [make_event(i) for i in range(3000)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)  # type: ignore[attr-defined]
    tab.severity_combo.setCurrentIndex(3)  # Errors: 750 of them, more than a page
    assert tab.model.rowCount() == PAGE_ROWS
    assert loop.run_until_complete(tab.export_to(tmp_path / "errors.json"))
    with (tmp_path / "errors.json").open(encoding="utf-8") as f:
        assert [r["text"] for r in json.load(f)] == [f"event {i}" for i in range(3, 3000, 4)]


def test_the_window_goes_on_while_a_long_history_is_exported(controller: ConnectorController, qtbot: object,
                                                             tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    """The export runs in a worker thread: the loop (the window and the connector) keeps turning meanwhile."""
    fill(controller.store, [make_event(i) for i in range(20_000)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)  # type: ignore[attr-defined]
    turns = 0
    during: list[bool] = []

    async def scenario() -> bool:
        nonlocal turns
        export = asyncio.ensure_future(tab.export_to(tmp_path / "all.csv"))
        await asyncio.sleep(0)  # the export starts
        while not export.done():
            during.append(tab.export_button.isEnabled())
            turns += 1
            await asyncio.sleep(0.001)
        return export.result()

    assert loop.run_until_complete(asyncio.wait_for(scenario(), 60))
    assert turns > 2 and not any(during)  # the loop turned; Export waited for the file
    assert tab.export_button.isEnabled()
    with (tmp_path / "all.csv").open(encoding="utf-8-sig", newline="") as f:
        assert sum(1 for _ in csv.DictReader(f)) == 20_000


def test_an_earlier_release_store_gets_its_text_index_in_the_background(tmp_path: Path, qtbot: object) -> None:
    paths = Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")
    paths.state_dir.mkdir(mode=0o700)
    db = sqlite3.connect(paths.events_db)
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, id INTEGER NOT NULL, "
               "severity INTEGER NOT NULL, account TEXT NOT NULL, uid TEXT NOT NULL, message_id TEXT NOT NULL, "
               "subject TEXT NOT NULL, text TEXT NOT NULL, cause TEXT NOT NULL, fix TEXT NOT NULL, "
               "transcript TEXT NOT NULL)")
    db.executemany("INSERT INTO events (time, id, severity, account, uid, message_id, subject, text, cause, fix, "
                   "transcript) VALUES (?, 3002, 20, 'old', '', '', '', ?, '', '', '')",
                   [((T0 + timedelta(seconds=i)).isoformat(), f"old event {i}") for i in range(25_000)])
    db.commit()
    db.close()
    c = ConnectorController(paths, Config())
    try:
        tab = EventsTab(c)
        qtbot.addWidget(tab)  # type: ignore[attr-defined]
        assert not c.store.search_index_complete
        tab.search_edit.setText("EVENT 12345")  # answered while the index is being built
        tab.apply_search()
        assert texts(tab.proxy) == ["old event 12345"]
        assert tab.indexer.running()
        qtbot.waitUntil(lambda: c.store.search_index_complete, timeout=30_000)  # type: ignore[attr-defined]
        assert not tab.indexer.running()
        check = EventStore(paths.events_db)
        assert check.search_index_complete
        check._db.execute("INSERT INTO events_fts(events_fts, rank) VALUES ('integrity-check', 1)")  # noqa: SLF001
        check.close()
    finally:
        c.close()


@pytest.mark.qt_log_ignore(OFFSCREEN_SIZE_HINTS)
def test_a_search_too_short_for_the_index_reads_on_in_stretches(controller: ConnectorController,
                                                               qtbot: object) -> None:
    fill(controller.store, [make_event(i, text=f"event {i}" + (" Zq" if i in (5, 2990) else "")) for i in range(3000)])
    tab = shown_tab(controller, qtbot)
    tab.model.scan_rows = 200  # a stretch per call, as 40,000 are in a large store
    stretches: list[int] = []
    tab.model.rowsInserted.connect(lambda *_: stretches.append(tab.model.rowCount()))
    tab.search_edit.setText("zQ")
    tab.apply_search()
    assert texts(tab.proxy) == ["event 2990 Zq"]  # the newest stretch only, at first
    assert "so far" in tab.count_label.text()
    qtbot.waitUntil(lambda: tab.proxy.rowCount() == 2, timeout=5000)  # type: ignore[attr-defined]
    assert texts(tab.proxy) == ["event 5 Zq", "event 2990 Zq"]
    qtbot.waitUntil(lambda: tab.count_label.text() == "Events shown: 2 of 3000", timeout=5000)  # type: ignore[attr-defined]
    assert not tab.model.can_fetch_older()


@pytest.mark.qt_log_ignore(OFFSCREEN_SIZE_HINTS)
def test_a_short_search_reads_on_when_its_few_matches_still_fit_the_view(controller: ConnectorController,
                                                                          qtbot: object) -> None:
    """A search read in stretches finds a match while the rows still fit the view: no scroll range change comes,
    and the next stretches must still be read (the kept position used to block them for good)."""
    marks = (5, 1500, 2990)
    fill(controller.store, [make_event(i, text=f"event {i}" + (" Zq" if i in marks else "")) for i in range(3000)])
    tab = shown_tab(controller, qtbot)
    tab.model.scan_rows = 200  # "Zq" is too short for the text index: read 200 events per stretch
    tab.search_edit.setText("zQ")
    tab.apply_search()
    qtbot.waitUntil(lambda: tab.proxy.rowCount() == 3, timeout=5000)
    assert texts(tab.proxy) == [f"event {i} Zq" for i in marks]
    qtbot.waitUntil(lambda: not tab.model.can_fetch_older(), timeout=5000)
    assert tab.count_label.text().startswith("Events shown: 3 of ")  # exact: no "so far", no "searching"
    assert "searching" not in tab.count_label.text()


def test_a_reload_while_another_process_stores_shows_each_event_once(controller: ConnectorController,
                                                                     qtbot: object,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fill(controller.store, [make_event(i) for i in range(10)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)
    store = controller.store
    real_latest = store.latest

    def latest_then_the_runner_stores(limit: int) -> list[Event]:
        newest = real_latest(limit)
        runner = EventStore(controller.paths.events_db)  # the tray runner commits right now
        runner.append(make_event(99, text="from runner"))
        runner.close()
        return newest

    monkeypatch.setattr(store, "latest", latest_then_the_runner_stores)
    tab.search_edit.setText("from")
    tab.apply_search()
    monkeypatch.setattr(store, "latest", real_latest)
    controller.bus.emit(make_event(100, text="from live"))
    qtbot.waitUntil(lambda: tab.model.pending() == 0 and "from live" in texts(tab.proxy), timeout=2000)
    assert texts(tab.proxy) == ["from runner", "from live"]
    assert tab.model.total() == store.count() == 12
    assert tab.model.matching() == (2, True)


def test_the_counts_follow_retention_after_a_run(controller: ConnectorController, qtbot: object) -> None:
    fill(controller.store, [make_event(i) for i in range(1000)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)
    db = sqlite3.connect(controller.paths.events_db)  # retention, on a connection of its own
    db.execute("DELETE FROM events WHERE seq <= 600")
    db.commit()
    db.close()
    for i in range(5):
        controller.bus.emit(make_event(1000 + i))
    qtbot.waitUntil(lambda: tab.model.pending() == 0 and tab.model.rowCount() == 505, timeout=2000)
    controller.run_finished.emit(None)  # the cycle (and its housekeeping) is over
    assert tab.model.total() == controller.store.count() == 405
    assert tab.count_label.text() == "Events: 405"


def test_a_filter_hiding_the_selected_event_reads_no_history_for_it(controller: ConnectorController,
                                                                    qtbot: object) -> None:
    fill(controller.store, [make_event(i, severity=Severity.ERROR if i % 7 == 0 else Severity.DEBUG)
                            for i in range(20_000)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)
    row = tab.model.reach(tab.model.event_at(0).seq - 5_000)  # an old Debug event, scrolled to
    assert row >= 0
    tab.view.selectRow(row)
    tab.severity_combo.setCurrentIndex(tab.severity_combo.findData(int(Severity.ERROR)))
    assert tab.model.rowCount() == PAGE_ROWS  # the newest page only: the Debug event does not pass
    assert tab.selected_event() is None


def test_reach_reads_on_past_stretches_without_a_match(qapp: object, store: EventStore) -> None:
    fill(store, [make_event(i, text=f"event {i}" + (" Zq" if i in (10, 2990) else "")) for i in range(3000)])
    model = EventTableModel(store)
    model.scan_rows = 200
    model.set_filter(EventFilter(text="zq"))
    assert texts(model) == ["event 2990 Zq"]
    target = next(e.seq for e in store.all() if e.text == "event 10 Zq")
    assert model.reach(target) == 0
    assert texts(model) == ["event 10 Zq", "event 2990 Zq"]
    assert model.reach(target - 1) == -1  # does not pass: nothing read for it


def test_a_live_event_the_store_could_not_write_yet_is_shown_once_written(tab: EventsTab,
                                                                           controller: ConnectorController,
                                                                           loop: asyncio.AbstractEventLoop) -> None:
    """Housekeeping holds the store's lock (a text index rewrite): the window's loop does not wait for it,
    and the event shows up when its retry has written it, with no other event to bring it."""
    db = sqlite3.connect(controller.paths.events_db, isolation_level=None)

    async def scenario() -> tuple[int, list[str]]:
        db.execute("BEGIN IMMEDIATE")
        controller.bus.emit(make_event(1, text="during the rewrite"))
        await asyncio.sleep(0.4)
        during = (controller.store.waiting(), texts(tab.proxy))
        db.execute("COMMIT")
        for _ in range(100):
            await asyncio.sleep(0.05)
            if "during the rewrite" in texts(tab.proxy):
                break
        return during

    waiting, shown = loop.run_until_complete(asyncio.wait_for(scenario(), 20))
    db.close()
    assert waiting == 1 and "during the rewrite" not in shown
    assert "during the rewrite" in texts(tab.proxy)
    assert controller.store.waiting() == 0


def test_a_recount_leaves_a_search_count_that_grows_stretch_by_stretch(controller: ConnectorController,
                                                                        qtbot: object) -> None:
    fill(controller.store, [make_event(i, text=f"event {i}" + (" Zq" if i % 100 == 0 else "")) for i in range(3000)])
    tab = EventsTab(controller)
    qtbot.addWidget(tab)
    tab.model.scan_rows = 200
    tab.model.set_filter(EventFilter(text="zq"))
    for _ in range(5):
        tab.model.fetch_older()
    grown = tab.model.matching()
    assert grown[1] is False and grown[0] > 2  # "so far": more than the first stretch found
    controller.run_finished.emit(None)
    assert tab.model.matching() == grown
    assert tab.model.total() == 3000
