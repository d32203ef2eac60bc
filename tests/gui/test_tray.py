"""The tray runner: offscreen for its logic, under a real X server (Xvfb + trayer) for the icon itself.

The pytest process renders offscreen and Qt cannot switch platform inside a
process, so the X scenarios run in a subprocess (tests/gui/tray_scenarios.py)
that prints JSON.  ``pop3gui tray`` itself runs as a subprocess for the
single-instance and clean-shutdown tests.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel

from pop3gui.core.config.model import AccountConfig, Config, LoggingConfig, OAuthProviderConfig, SmtpConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.events.model import Event, EventId, Reply, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.state.journal import SUBMITTING, Journal
from pop3gui.core.desktop.notify_limit import NotifyLimiter
from pop3gui.core.state.paths import Paths
from pop3gui.core.engine.status import AccountResult, AccountStatus, CycleResult, Phase
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.properties import PropertiesWindow
from pop3gui.gui.single_instance import server_name
from pop3gui.gui.tray import (
    BUSY,
    ERROR,
    IDLE,
    KIND_FAILED,
    KIND_POLICY,
    KIND_QUARANTINED,
    KIND_SIGN_IN,
    SHOWN_KEPT,
    TrayRunner,
    run_summary,
)
from tests.conftest import Pop3User
from tests.gui.test_controller_push import wait_for_imap_sessions
from tests.support.requirements import in_ci
from tests.servers.dovecot import free_port
from tests.support.office import Office, make_message
from tests.support.processes import stop as stop_process
from tests.support.x_server import XCB, start_trayer, start_xvfb

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).with_name("tray_scenarios.py")




@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths(tmp_path / "config.toml", tmp_path / "state", tmp_path / "logs")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def tray(qtbot: Any, paths: Paths) -> Iterator[tuple[TrayRunner, Clock]]:
    clock = Clock()
    controller = ConnectorController(paths, Config())
    windows: list[PropertiesWindow] = []

    def make_window() -> PropertiesWindow:
        window = PropertiesWindow(controller)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    runner = TrayRunner(controller, window_factory=make_window, limiter=NotifyLimiter(60, clock=clock))
    yield runner, clock
    for window in windows:
        window.hide()
    runner.menu.deleteLater()
    runner.deleteLater()
    controller.close()


def failed_result() -> CycleResult:
    return CycleResult([AccountResult("alice", failed=True, errors=["boom"])])


# --- offscreen: menu, state, notifications ----------------------------------------------


def test_menu_is_rebuilt_from_live_state(tray: tuple[TrayRunner, Clock]) -> None:
    runner, _ = tray
    c = runner.controller
    runner.menu.aboutToShow.emit()
    texts = [a.text() for a in runner.menu.actions() if not a.isSeparator()]
    assert texts[:4] == ["Retrieve &Now", "&Pause schedule", "Open &Properties…", "Open &Events…"]
    assert texts[-1] == "&Quit"
    assert runner.action("summary").text().startswith("No run yet — next ")
    assert not runner.action("summary").isEnabled()

    runner.action("pause").trigger()
    assert c.paused
    runner.menu.aboutToShow.emit()
    assert runner.action("pause").text() == "&Resume schedule"
    assert runner.action("summary").text() == "No run yet — schedule paused"
    runner.action("pause").trigger()
    assert not c.paused

    c.last_result = CycleResult([AccountResult("alice", delivered=12, quarantined=1)])
    c.last_run_at = datetime(2026, 1, 2, 14, 5)
    runner.menu.aboutToShow.emit()
    assert runner.action("summary").text().startswith("Last run 14:05: 12 delivered, 1 quarantined — next ")


def test_summary_line_texts() -> None:
    at = datetime(2026, 1, 2, 9, 30)
    assert run_summary(None, None) == "No run yet"
    assert run_summary(None, at) == "Last run 09:30: could not run (see Events)"
    assert run_summary(failed_result(), at) == "Last run 09:30: 0 delivered, 1 account failed"


def test_icon_and_tooltip_follow_the_run(tray: tuple[TrayRunner, Clock]) -> None:
    runner, _ = tray
    c = runner.controller
    assert runner.state == IDLE and not runner.icon().isNull()
    idle_key = runner.icon().cacheKey()
    c.run_started.emit()
    c.bridge.on_account_status(AccountStatus("alice", Phase.DOWNLOADING, 12, 200, 4096))
    assert runner.state == BUSY and runner.icon().cacheKey() != idle_key
    assert "alice: 12 of 200" in runner.toolTip()
    runner.menu.aboutToShow.emit()
    assert runner.action("retrieve").text() == "Retrieving… alice: 12 of 200"
    assert not runner.action("retrieve").isEnabled()
    c.run_finished.emit(failed_result())
    assert runner.state == ERROR and runner.icon().cacheKey() not in (idle_key,)
    c.run_finished.emit(CycleResult([AccountResult("alice", delivered=1)]))
    assert runner.state == IDLE and runner.icon().cacheKey() == idle_key


def test_problems_notify_once_a_minute_per_kind_and_count_the_rest(tray: tuple[TrayRunner, Clock]) -> None:
    runner, clock = tray
    c = runner.controller
    refused_policy = Event(EventId.RECIPIENT_REFUSED, Severity.ERROR,
                           "The local server refused recipient erin@contoso.eu (domain not accepted): 554 5.7.1 <erin@contoso.eu>: "
                           "Relay access denied", account="alice", fix="Add contoso.eu to a recipient policy.",
                           recipient="erin@contoso.eu", reply=Reply(554, "5.7.1", "<erin@contoso.eu>: Relay access denied"),
                           diagnosis=Failure.DOMAIN_NOT_ACCEPTED)
    # Its text names a policy code, but its diagnosis says what it is: the tray reads the diagnosis.
    refused_unknown = Event(EventId.RECIPIENT_REFUSED, Severity.ERROR,
                            "The local server refused recipient ghost@contoso.com: 550 5.7.1 User unknown",
                            recipient="ghost@contoso.com", reply=Reply(550, "5.7.1", "User unknown"),
                            diagnosis=Failure.UNKNOWN_USER)
    quarantined = Event(EventId.QUARANTINED, Severity.ERROR, "Kept in quarantine (x.eml): nobody accepted it")
    c.bus.emit(refused_unknown)  # not a policy reason: no notification
    c.bus.emit(refused_policy)
    c.bus.emit(quarantined)
    c.bus.emit(replace(quarantined, text="second"))  # within the minute: held back
    c.bus.emit(Event(EventId.SMTP_CONNECTION_FAILED, Severity.ERROR, "Cannot connect to 127.0.0.1:2525",
                     fix="Start the mail server."))
    c.run_finished.emit(failed_result())
    assert [kind for kind, _, _ in runner.shown] == [KIND_POLICY, KIND_QUARANTINED, KIND_FAILED]
    assert "554 5.7.1" in runner.shown[0][2] and "Add contoso.eu" in runner.shown[0][2]
    assert runner.shown[2][1] == "Mail retrieval failed"
    assert "Cannot connect to 127.0.0.1:2525" in runner.shown[2][2] and "Fix: Start the mail server." in \
        runner.shown[2][2]

    for _ in range(3):
        c.run_finished.emit(failed_result())
    assert len(runner.shown) == 3 and runner.limiter.pending(KIND_FAILED) == 3
    clock.now += 61
    c.run_finished.emit(failed_result())
    assert runner.shown[-1][0] == KIND_FAILED and "3 more problems" in runner.shown[-1][2]
    clock.now += 61  # the held-back quarantine comes out as a summary
    runner._show_due_summaries()
    assert runner.shown[-1][0] == KIND_QUARANTINED and "1 more problem" in runner.shown[-1][2]


def test_clicking_a_notification_opens_events_with_that_event_selected(
        qtbot: Any, tray: tuple[TrayRunner, Clock]) -> None:
    runner, _ = tray
    c = runner.controller
    window = runner.window  # open before the event, so it arrives live (seq 0)
    for i in range(5):
        c.bus.emit(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, f"delivered {i}", account="alice"))
    quarantined = Event(EventId.QUARANTINED, Severity.ERROR, "Kept in quarantine (q.eml): nobody accepted it",
                        account="alice")
    c.bus.emit(quarantined)
    c.bus.emit(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "delivered later", account="alice"))
    window.events.search_edit.setText("delivered")  # a filter that hides it: reset to show it
    window.events.apply_search()
    assert runner.shown and runner.shown[-1][0] == KIND_QUARANTINED
    runner.messageClicked.emit()
    assert window.isVisible() and window.tabs.currentWidget() is window.events
    selected = window.events.selected_event()
    assert selected is not None and selected.text == quarantined.text


def test_clicking_finds_an_event_the_window_loaded_from_the_store(qtbot: Any, tray: tuple[TrayRunner, Clock]) -> None:
    runner, _ = tray
    event = Event(EventId.QUARANTINED, Severity.ERROR, "Kept in quarantine (old.eml)")
    runner.controller.bus.emit(event)  # stored with a seq; the window is made afterwards
    runner.messageClicked.emit()
    selected = runner.window.events.selected_event()
    assert selected is not None and selected.text == event.text and selected.seq > 0


M365 = AccountConfig(name="m365", host="outlook.office365.com", username="dave@contoso.com",
                    deliver_to="dave@contoso.com", auth="oauth2", oauth_provider="contoso-entra")
ENTRA = OAuthProviderConfig(name="contoso-entra", client_id="11111111-2222", kind="microsoft")


def sign_in_failed(account: str = "m365", diagnosis: Failure = Failure.SIGN_IN_NEEDED) -> Event:
    return Event(EventId.SIGN_IN_FAILED, Severity.ERROR,
                 "the sign-in is no longer valid: invalid_grant: AADSTS700082: The refresh token has expired",
                 account=account, cause="The sign-in expired: it was not used for 90 days.",
                 fix=f"Sign in again with `pop3gui auth login {account}`.", diagnosis=diagnosis)


def expired_result() -> CycleResult:
    res = AccountResult("m365")
    res.fail("the sign-in is no longer valid", diagnosis=Failure.SIGN_IN_NEEDED)
    return CycleResult([res])


@pytest.fixture
def oauth_tray(qtbot: Any, paths: Paths) -> Iterator[tuple[TrayRunner, Clock]]:
    clock = Clock()
    controller = ConnectorController(paths, Config(accounts=(M365,), oauth_providers=(ENTRA,)))
    windows: list[PropertiesWindow] = []

    def make_window() -> PropertiesWindow:
        window = PropertiesWindow(controller)
        qtbot.addWidget(window)
        windows.append(window)
        return window

    runner = TrayRunner(controller, window_factory=make_window, limiter=NotifyLimiter(60, clock=clock))
    yield runner, clock
    for window in windows:
        if window.accounts.dialog is not None:
            window.accounts.dialog.reject()
        window.hide()
    runner.menu.deleteLater()
    runner.deleteLater()
    controller.close()


def test_an_account_that_must_sign_in_again_notifies_once_and_the_click_opens_it(
        oauth_tray: tuple[TrayRunner, Clock]) -> None:
    runner, clock = oauth_tray
    c = runner.controller
    c.run_started.emit()
    c.bus.emit(sign_in_failed())
    c.run_finished.emit(expired_result())
    assert [kind for kind, _, _ in runner.shown] == [KIND_SIGN_IN]  # not also "Mail retrieval failed"
    kind, title, text = runner.shown[0]
    assert title == "Sign-in needed for m365"
    assert "AADSTS700082" in text and text.endswith("Click to open the account and sign in again.")
    assert runner.state == ERROR

    c.run_started.emit()  # the next run within the minute: held back, counted
    c.bus.emit(sign_in_failed())
    c.run_finished.emit(expired_result())
    assert len(runner.shown) == 1 and runner.limiter.pending(KIND_SIGN_IN) == 1

    runner.messageClicked.emit()
    window = runner.window
    assert window.isVisible() and window.tabs.currentWidget() is window.accounts
    assert window.accounts.selected_account() == M365
    dialog = window.accounts.dialog
    assert dialog is not None and dialog.isVisible() and dialog.account() == M365
    assert dialog.sign_in_box.sign_in_button.isVisibleTo(dialog) and dialog.sign_in_box.sign_in_button.isEnabled()
    runner.messageClicked.emit()  # a second click shows the same dialog, not another one
    assert window.accounts.dialog is dialog

    clock.now += 61
    runner._show_due_summaries()
    assert runner.shown[-1][0] == KIND_SIGN_IN and runner.shown[-1][1] == "Sign-in is still needed"
    assert "1 more problem" in runner.shown[-1][2] and "Click to sign in m365." in runner.shown[-1][2]


def test_only_failures_a_sign_in_mends_ask_for_one(oauth_tray: tuple[TrayRunner, Clock]) -> None:
    runner, _ = oauth_tray
    c = runner.controller
    c.run_started.emit()
    c.bus.emit(sign_in_failed(diagnosis=Failure.OAUTH_CLIENT_INVALID))  # the app registration is wrong
    res = AccountResult("m365")
    res.fail("the sign-in service does not accept this app", diagnosis=Failure.OAUTH_CLIENT_INVALID)
    c.run_finished.emit(CycleResult([res]))
    assert [kind for kind, _, _ in runner.shown] == [KIND_FAILED]
    runner.messageClicked.emit()
    assert runner.window.tabs.currentWidget() is runner.window.events

    # The mail server refusing even a renewed token also asks for a new sign-in.
    c.bus.emit(Event(EventId.POP3_LOGIN_FAILED, Severity.ERROR, "the server refused the access token",
                     account="m365", diagnosis=Failure.OAUTH_TOKEN_REFUSED))
    assert runner.shown[-1][:2] == (KIND_SIGN_IN, "Sign-in needed for m365")


def test_a_sign_in_notice_for_an_account_no_longer_there_opens_its_event(oauth_tray: tuple[TrayRunner, Clock]) -> None:
    runner, _ = oauth_tray
    gone = sign_in_failed("renamed-since")
    runner.controller.bus.emit(gone)
    assert runner.shown[-1][1] == "Sign-in needed for renamed-since"
    runner.messageClicked.emit()
    window = runner.window
    assert window.tabs.currentWidget() is window.events and window.accounts.dialog is None
    selected = window.events.selected_event()
    assert selected is not None and selected.text == gone.text

    smtp = replace(sign_in_failed(""), fix="Sign in again with `pop3gui auth login --smtp`.")
    runner.limiter = NotifyLimiter(0)
    runner.controller.bus.emit(smtp)
    assert runner.shown[-1][1] == "Sign-in needed for the local mail server's login"
    assert runner.shown[-1][2].endswith("`pop3gui auth login --smtp`.")


# --- offscreen: no system tray -> the window stays open ---------------------------------


def test_without_a_tray_the_window_stays_open_and_closing_it_quits(
        qapp: Any, paths: Paths, capsys: pytest.CaptureFixture[str]) -> None:
    from pop3gui.gui.app import run_tray

    save_config(replace(Config(), schedule=replace(Config().schedule, enabled=False)), paths.config_file)
    seen: dict[str, Any] = {}

    def inspect_and_close() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, PropertiesWindow) and w.isVisible()]
        seen["windows"] = len(windows)
        if windows:
            banner = windows[0].findChild(QLabel, "noTrayBanner")
            seen["banner"] = banner.text() if banner is not None else ""
            seen["quit_on_last_window_closed"] = QApplication.quitOnLastWindowClosed()
            windows[0].reject()  # nothing edited: closes, which ends the process

    QTimer.singleShot(300, inspect_and_close)
    try:
        code = run_tray(paths)
    finally:
        asyncio.set_event_loop(None)
    assert code == 0
    assert seen["windows"] == 1 and "no system tray" in seen["banner"]
    captured = capsys.readouterr()
    assert "no system tray is available" in captured.err
    assert "stopped cleanly" in captured.out


def test_instance_names_differ_per_state_folder(tmp_path: Path) -> None:
    a = Paths(tmp_path / "a" / "c.toml", tmp_path / "a" / "state", tmp_path / "a" / "logs")
    b = Paths(tmp_path / "b" / "c.toml", tmp_path / "b" / "state", tmp_path / "b" / "logs")
    a_again = Paths(tmp_path / "x.toml", tmp_path / "a" / ".." / "a" / "state", tmp_path / "logs")
    assert server_name(a) != server_name(b)
    assert server_name(a) == server_name(a_again)
    assert len(server_name(a)) < 50


# --- the Scheduling tab's autostart box ---------------------------------------------------


def test_autostart_checkbox_writes_and_removes_the_entry(
        qtbot: Any, paths: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    entry = tmp_path / "xdg" / "autostart" / "pop3gui.desktop"
    controller = ConnectorController(paths, Config())
    window = PropertiesWindow(controller)
    qtbot.addWidget(window)
    box = window.schedule.autostart_box
    assert not box.isChecked()
    box.setChecked(True)
    assert entry.is_file() and "tray" in entry.read_text()
    assert not window.dirty  # desktop state, not the config file
    box.setChecked(False)
    assert not entry.exists()

    entry.parent.rmdir()
    entry.parent.write_text("a file where the folder should be")
    box.setChecked(True)
    assert not box.isChecked()
    error = window.schedule.autostart_error
    assert not error.isHidden() and "Cause:" in error.text() and "Fix:" in error.text()
    controller.close()


# --- a real X server: Xvfb + trayer ----------------------------------------------------------


def _need(binaries: list[str], packages: str) -> None:
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        problem = f"{', '.join(missing)} not found; apt-get install -y {packages} (or bash scripts/test.sh)"
        if in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)


def _start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    try:
        return start_xvfb()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def x_display() -> Iterator[dict[str, str]]:
    """A private Xvfb display with trayer as the system tray: the variables an xcb subprocess needs."""
    _need(["Xvfb", "trayer"], "xvfb trayer")
    xvfb, number = _start_xvfb()
    trayer: subprocess.Popen[bytes] | None = None
    try:
        env = dict(os.environ, DISPLAY=f":{number}", **XCB)
        trayer = start_trayer(env)
        probe = subprocess.run([sys.executable, str(SCENARIOS), "probe"], env=env, capture_output=True, text=True,
                               timeout=60, cwd=ROOT)
        lines = probe.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if lines else {}
        if not result.get("available"):
            pytest.fail(f"no system tray on :{number} with trayer: {probe.stdout}{probe.stderr[-2000:]}",
                        pytrace=False)
        yield {k: env[k] for k in ("DISPLAY", "QT_QPA_PLATFORM", "QT_API")}
    finally:
        if trayer is not None:
            stop_process(trayer)
        stop_process(xvfb)


def _closed_port() -> int:
    return free_port()


@pytest.mark.servers
def test_tray_icon_menu_runs_and_notifications_under_x(
        x_display: dict[str, str], office: Office, pop3_user: Pop3User, tmp_path: Path) -> None:
    for i in range(3):
        office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject=f"tray {i}"))
    office.use(office.account_for(pop3_user, "alice"),
               schedule=replace(office.config.schedule, enabled=True, interval_min=60))
    # a second installation whose SMTP port is closed, with mail waiting, so its run fails
    bob_password = "pw-bob-tray"
    office.isp.add_user("bobtray", bob_password)
    office.isp.deliver("bobtray", make_message(to="x@isp.example", subject="stays"))
    bob = replace(office.account_for(Pop3User("bobtray", bob_password, Path()), "bob"), deliver_to="bob@contoso.com")
    fail_home = tmp_path / "fail-home"
    fail_config = replace(office.config, accounts=(bob,),
                          smtp=SmtpConfig(host="127.0.0.1", port=_closed_port(), timeout_s=5))
    save_config(fail_config, fail_home / "config.toml")
    shot = Path(os.environ.get("POP3GUI_TRAY_SHOT") or tmp_path / "tray.png")  # set it to keep the picture

    proc = subprocess.run([sys.executable, str(SCENARIOS), "live", str(office.home), str(fail_home), str(shot)],
                          env=dict(os.environ, **x_display), capture_output=True, text=True, timeout=180,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["available"] and out["visible"], out
    assert out["geometry"][2] > 0 and out["geometry"][3] > 0
    assert out["menu_initial"]["retrieve"] == {"text": "Retrieve &Now", "enabled": True}
    assert out["paused_after_pause"] is True and out["paused_after_resume"] is False
    assert out["menu_paused"]["pause"]["text"] == "&Resume schedule"
    assert out["menu_while_running"]["retrieve"]["enabled"] is False
    assert out["ok_run_exit_code"] == 0 and out["ok_run_delivered"] == 3
    assert out["state_after_ok_run"] == IDLE
    assert out["menu_after_ok_run"]["summary"]["text"].startswith("Last run ")
    assert "3 delivered" in out["menu_after_ok_run"]["summary"]["text"]
    assert out["notifications_after_ok_run"] == []
    office.local.wait_for_delivered(3, timeout=30)
    assert office.isp.messages(pop3_user.name) == []

    assert out["notified"], out
    kinds = [n[0] for n in out["notifications"]]
    assert KIND_FAILED in kinds
    assert out["state_after_failed_run"] == ERROR
    assert out["states"][:2] == [BUSY, IDLE] and out["states"][-1] == ERROR
    assert out["window_visible_after_click"] and out["window_tab_after_click"] == "Events"
    assert out["selected_event_id"] == int(EventId.SMTP_CONNECTION_FAILED)
    assert len(office.isp.messages("bobtray")) == 1  # nothing lost when the SMTP port was closed
    assert out["screenshot_saved"] and shot.stat().st_size > 1000


def _wait_for_log(office: Office, proc: subprocess.Popen[bytes], out: Path, *needles: str,
                  timeout: float = 60) -> str:
    """The runner's log file once it holds every one of *needles* (fails if the runner ends first)."""
    deadline = time.monotonic() + timeout
    while True:
        log = office.paths.log_file.read_text(errors="replace") if office.paths.log_file.exists() else ""
        if all(needle in log for needle in needles):
            return log
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the tray runner's log never said {needles!r} (exit code {proc.poll()}):\n{log[-3000:]}\n"
                        f"{out.read_text(errors='replace')[-3000:]}", pytrace=False)
        time.sleep(0.05)


@pytest.mark.servers
def test_the_tray_delivers_pushed_imap_mail_within_seconds_and_quit_stops_listening(
        x_display: dict[str, str], office: Office, pop3_user: Pop3User, dovecot_imap: Any, tmp_path: Path) -> None:
    """The real tray runner in a real tray: it listens on the IMAP INBOX (IDLE) and delivers mail put
    there within seconds, though its schedule runs every 15 minutes; Quit ends every IDLE session."""
    office.use(office.imap_account_for(pop3_user, "shared", idle=True),
               schedule=replace(office.config.schedule, enabled=True, interval_min=15),
               logging=LoggingConfig(level="debug"))
    control = tmp_path / "control"
    control.mkdir()
    out_path = tmp_path / "push.out"
    env = dict(os.environ, **x_display, POP3GUI_HOME=str(office.home), PYTHONUNBUFFERED="1")
    with out_path.open("wb") as out_file:
        proc = subprocess.Popen([sys.executable, str(SCENARIOS), "push", str(office.home), str(control)], env=env,
                                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out_file, stderr=subprocess.STDOUT)
    try:
        # Idling (event 2015, logged at level debug) and the start-up run over: new mail now comes by push only.
        _wait_for_log(office, proc, out_path, f" {int(EventId.IMAP_IDLE_STARTED)} [shared] Waiting for new mail in INBOX",
                      f" {int(EventId.CYCLE_FINISHED)} ")
        assert "running in the system tray" in out_path.read_text(errors="replace")
        wait_for_imap_sessions(dovecot_imap, pop3_user.name, 1)  # the watcher's, in IDLE
        assert office.local.delivered() == []

        office.imap.deliver(pop3_user.name, make_message(to="x@isp.example", subject="pushed to the tray"))
        put = time.monotonic()
        delivered = office.local.wait_for_delivered(1, timeout=10)  # the schedule's next run is 15 minutes away
        latency = time.monotonic() - put
        assert [m["Subject"] for m in delivered] == ["pushed to the tray"]
        assert delivered[0]["Delivered-To"] == "alice@contoso.com"
        print(f"pushed IMAP mail reached Postfix {latency:.2f} s after it was put into the INBOX")
        log = _wait_for_log(office, proc, out_path, f" {int(EventId.IMAP_NEW_MAIL)} [shared] New mail in INBOX")
        assert log.count(f" {int(EventId.CYCLE_FINISHED)} ") >= 1

        deadline = time.monotonic() + 30  # the push run deletes it on the ISP's server once delivered
        while office.imap.messages(pop3_user.name):
            assert time.monotonic() < deadline, "the pushed message stayed on the ISP's server"
            time.sleep(0.05)
        (control / "quit").touch()  # Quit from the tray's menu
        code = proc.wait(timeout=60)
    finally:
        stop_process(proc)
    text = out_path.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "pop3gui: stopped cleanly" in text
    out = json.loads(text.strip().splitlines()[-1])
    assert out["in_tray"] and out["listening"] and out["push_run_over"], out
    assert out["listening_before_quit"] == [["shared", "INBOX"]] and out["running_before_quit"] is False
    assert out["runs"] == [[["shared", 0, False]], [["shared", 1, False]]]  # the start-up run, then the push's
    assert out["exit_code"] == 0
    assert out["push_after_quit"] == "None" and out["listening_after_quit"] == []
    assert out["watchers"] == 1 and out["watchers_done"] and out["running_after_quit"] is False
    assert out["driver_done"] and out["tasks_left"] == []
    assert ERROR not in out["states"]
    wait_for_imap_sessions(dovecot_imap, pop3_user.name, 0)  # no IDLE left open after Quit
    assert len(office.local.delivered()) == 1  # delivered once


# --- pop3gui tray as a process: single instance, clean shutdown -----------------------------


class Proc:
    """A ``pop3gui`` subprocess whose output is read from a file while it runs."""

    def __init__(self, args: list[str], env: dict[str, str], out: Path) -> None:
        self.out = out
        self._file = out.open("wb")
        self.popen = subprocess.Popen([sys.executable, "-m", "pop3gui", *args], env=env, cwd=ROOT,
                                      stdin=subprocess.DEVNULL, stdout=self._file, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_for(self, what: str | Callable[[], bool], timeout: float = 30) -> None:
        check = (lambda: what in self.text()) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        while not check():
            if self.popen.poll() is not None and not check():
                pytest.fail(f"pop3gui exited ({self.popen.returncode}) before {what!r}:\n{self.text()}",
                            pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what!r}:\n{self.text()}", pytrace=False)
            time.sleep(0.05)

    def close(self) -> None:
        stop_process(self.popen)
        self._file.close()


def _app_env(office: Office) -> dict[str, str]:
    env = dict(os.environ, POP3GUI_HOME=str(office.home), QT_QPA_PLATFORM="offscreen", QT_API="pyside6",
               PYTHONUNBUFFERED="1")
    env.pop("DISPLAY", None)
    return env


def _logins(office: Office, user: str) -> int:
    log = office.isp.log_path.read_text(errors="replace") if office.isp.log_path.exists() else ""
    return sum(1 for line in log.splitlines() if "Login: user=<" + user + ">" in line)


@pytest.mark.servers
def test_second_launch_shows_the_running_instance_and_no_second_engine_runs(
        office: Office, pop3_user: Pop3User, tmp_path: Path) -> None:
    for i in range(2):
        office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject=f"single {i}"))
    office.use(office.account_for(pop3_user, "alice"),
               schedule=replace(office.config.schedule, enabled=True, interval_min=60))
    env = _app_env(office)
    first = Proc(["tray"], env, tmp_path / "tray.out")
    try:
        first.wait_for("no system tray is available")  # offscreen: the window fallback
        office.local.wait_for_delivered(2, timeout=60)  # the start-up cycle
        first.wait_for(lambda: office.isp.messages(pop3_user.name) == [])
        logins_after_first_cycle = _logins(office, pop3_user.name)
        assert logins_after_first_cycle == 1

        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "pop3gui"], env=env, cwd=ROOT, capture_output=True,
                                text=True, timeout=30)
        elapsed = time.monotonic() - started
        assert second.returncode == 0, second.stdout + second.stderr
        assert "asked it to open its window" in second.stdout
        assert elapsed < 10
        print(f"second launch handed over and exited in {elapsed:.2f} s")
        first.wait_for("shown on request")

        also_tray = subprocess.run([sys.executable, "-m", "pop3gui", "tray"], env=env, cwd=ROOT,
                                   capture_output=True, text=True, timeout=30)
        assert also_tray.returncode == 0 and "already running" in also_tray.stdout

        run = subprocess.run([sys.executable, "-m", "pop3gui", "run", "--once"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 1
        assert f"pid {first.popen.pid}" in run.stderr, run.stderr
        assert _logins(office, pop3_user.name) == logins_after_first_cycle  # no second engine touched the box

        first.popen.send_signal(signal.SIGTERM)
        assert first.popen.wait(timeout=30) == 0
        assert "stopped cleanly" in first.text()
    finally:
        first.close()


@pytest.mark.servers
@pytest.mark.slow
def test_sigterm_during_a_200_message_run_leaves_nothing_half_handled(
        office: Office, pop3_user: Pop3User, tmp_path: Path) -> None:
    total = 200
    for i in range(total):
        office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject=f"stop {i}",
                                                            message_id=f"<stop-{i}@fabrikam.example>"))
    office.use(office.account_for(pop3_user, "alice"),
               schedule=replace(office.config.schedule, enabled=True, interval_min=60))
    proc = Proc(["tray"], _app_env(office), tmp_path / "tray.out")
    try:
        journal_path = office.paths.journal_db

        def some_delivered() -> bool:  # watch the mail server, not the journal: no reader in the runner's way
            return len(office.local.delivered_raw()) >= 20

        proc.wait_for(some_delivered, timeout=90)
        signalled = time.monotonic()
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=60) == 0, proc.text()
        stop_s = time.monotonic() - signalled
        assert "stopped cleanly" in proc.text()
    finally:
        proc.close()

    journal = Journal(journal_path)
    try:
        records = journal.records("alice")
    finally:
        journal.close()
    assert not [r for r in records.values() if r.state == SUBMITTING], "a message was left half-handled"
    # Deleted messages leave the journal with the QUIT that deleted them: what is gone was handled.
    everything = {f"<stop-{i}@fabrikam.example>" for i in range(total)}
    left = {str(email.message_from_bytes(m, policy=email.policy.default)["Message-ID"]).lower()
            for m in office.isp.messages(pop3_user.name)}
    handled = everything - left
    counts = f"handled {len(handled)}, left on the server {len(left)}, records {len(records)}\n{proc.text()[-3000:]}"
    assert 0 < len(left) < total, f"the stop must land mid-run: {counts}"
    print(f"SIGTERM to exit: {stop_s:.2f} s; {counts.splitlines()[0]}")
    office.local.wait_for_delivered(len(handled), timeout=90)
    delivered = [str(m["Message-ID"]).lower() for m in office.local.delivered()]
    assert len(delivered) == len(set(delivered)), "a message was delivered twice"
    assert set(delivered) == handled, f"a message gone from the server was not delivered: {counts}"
    assert {r.message_id.lower() for r in records.values()} <= left, f"the journal keeps a deleted message: {counts}"


# --- a tray host that appears after pop3gui started (login races) -----------------------------


@pytest.fixture
def bare_x_display() -> Iterator[tuple[dict[str, str], Callable[[], None]]]:
    """A private Xvfb display with no system tray yet, and a function that starts one (trayer)."""
    _need(["Xvfb", "trayer"], "xvfb trayer")
    xvfb, number = _start_xvfb()
    trayers: list[subprocess.Popen[bytes]] = []
    try:
        env = dict(os.environ, DISPLAY=f":{number}", PYTHONUNBUFFERED="1", **XCB)

        def start_tray_host() -> None:
            trayers.append(start_trayer(env))

        yield env, start_tray_host
    finally:
        for trayer in trayers:
            stop_process(trayer)
        stop_process(xvfb)


def test_the_tray_runner_moves_into_a_tray_that_appears_after_it_started(
        bare_x_display: tuple[dict[str, str], Callable[[], None]], tmp_path: Path) -> None:
    """At login pop3gui may start before the panel: it waits for a tray, then falls back to its
    window, and still moves into the tray when one turns up later."""
    from pop3gui.gui.app import TRAY_APPEARED, TRAY_POLL_S, TRAY_WAIT_S

    env, start_tray_host = bare_x_display
    env = dict(env, POP3GUI_HOME=str(tmp_path / "home"))
    save_config(replace(Config(), schedule=replace(Config().schedule, enabled=False)),
                tmp_path / "home" / "config.toml")
    proc = Proc(["tray"], env, tmp_path / "tray.out")
    try:
        proc.wait_for("no system tray is available", timeout=TRAY_WAIT_S + 30)
        assert "running in the system tray" not in proc.text()
        start_tray_host()
        proc.wait_for(TRAY_APPEARED, timeout=TRAY_POLL_S + 30)
        assert proc.popen.poll() is None, "the runner must keep going in the tray"
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=60) == 0, proc.text()
        assert "stopped cleanly" in proc.text()
    finally:
        proc.close()


def test_a_tray_that_notifies_for_years_remembers_only_the_latest_notifications(
        tray: tuple[TrayRunner, Clock]) -> None:
    runner, clock = tray
    for minute in range(SHOWN_KEPT + 20):
        clock.now += 61  # past the kind's once-a-minute limit
        runner.controller.bus.emit(Event(EventId.QUARANTINED, Severity.ERROR, f"Kept in quarantine #{minute}"))
    assert len(runner.shown) == SHOWN_KEPT
    assert runner.shown[-1][2].endswith(f"#{SHOWN_KEPT + 19}")
