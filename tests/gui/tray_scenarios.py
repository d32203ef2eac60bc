"""Tray scenarios under a real X server, run in a subprocess by test_tray.py.

The pytest process renders offscreen (the Qt platform cannot change inside a
process), so the xcb part runs here and prints one JSON object on stdout:

    python tests/gui/tray_scenarios.py probe
    python tests/gui/tray_scenarios.py live OK_HOME FAIL_HOME [SCREENSHOT.png]
    python tests/gui/tray_scenarios.py push HOME CONTROL_DIR

OK_HOME and FAIL_HOME are POP3GUI_HOME folders with a config.toml: one whose
run works, one whose run fails (the SMTP port is closed).

``push`` runs the real tray runner (``pop3gui tray``: :func:`run_tray`) on HOME
and prints its progress as JSON lines: ``{"listening": [...]}`` once its IMAP
IDLE watchers listen, and at the end everything it saw.  The test delivers
mail meanwhile; creating CONTROL_DIR/quit makes it choose Quit from the tray's
menu.  Its exit code is run_tray's.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_API", "pyside6")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PySide6.QtCore import QCoreApplication, QEventLoop  # noqa: E402
from PySide6.QtWidgets import QApplication, QSystemTrayIcon  # noqa: E402

from pop3gui.core.config.load import load_config  # noqa: E402
from pop3gui.core.state.paths import Paths  # noqa: E402
from pop3gui.gui.qt import make_application  # noqa: E402


def pump(ms: int = 20) -> None:
    QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, ms)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        pump()
        time.sleep(0.01)
    return True


async def await_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def home_paths(home: str) -> Paths:
    base = Path(home)
    return Paths(base / "config.toml", base / "state", base / "logs")


def probe() -> dict[str, Any]:
    make_application()
    available = wait_until(QSystemTrayIcon.isSystemTrayAvailable, 15)
    return {"available": available, "platform": QApplication.platformName()}


def menu_texts(tray: Any) -> dict[str, Any]:
    tray.rebuild_menu()
    return {a.objectName(): {"text": a.text(), "enabled": a.isEnabled()}
            for a in tray.menu.actions() if a.objectName()}


async def live(ok_home: str, fail_home: str, screenshot: str | None) -> dict[str, Any]:
    from pop3gui.gui.controller import ConnectorController
    from pop3gui.gui.tray import TrayRunner

    out: dict[str, Any] = {"available": QSystemTrayIcon.isSystemTrayAvailable()}
    ok_paths = home_paths(ok_home)
    controller = ConnectorController(ok_paths, load_config(ok_paths.config_file))
    tray = TrayRunner(controller)
    states: list[str] = []
    tray.state_changed.connect(states.append)
    tray.show()
    out["visible"] = await await_until(lambda: tray.isVisible() and not tray.geometry().isEmpty(), 10)
    geometry = tray.geometry()
    out["geometry"] = [geometry.x(), geometry.y(), geometry.width(), geometry.height()]
    out["menu_initial"] = menu_texts(tray)

    tray.action("pause").trigger()
    out["paused_after_pause"] = controller.paused
    out["menu_paused"] = menu_texts(tray)
    tray.action("pause").trigger()
    out["paused_after_resume"] = controller.paused

    # Retrieve Now from the menu: a real run against Dovecot and Postfix
    tray.action("retrieve").trigger()
    await await_until(lambda: controller.running, 5)
    out["menu_while_running"] = menu_texts(tray)
    out["tooltip_while_running"] = tray.toolTip()
    await await_until(lambda: not controller.running, 60)
    result = controller.last_result
    out["ok_run_exit_code"] = None if result is None else result.exit_code
    out["ok_run_delivered"] = None if result is None else sum(a.delivered for a in result.accounts)
    out["state_after_ok_run"] = tray.state
    out["menu_after_ok_run"] = menu_texts(tray)
    out["notifications_after_ok_run"] = list(tray.shown)

    if screenshot:
        tray.rebuild_menu()
        tray.menu.popup(geometry.bottomLeft())
        await await_until(lambda: tray.menu.isVisible(), 5)
        await asyncio.sleep(0.5)
        screen = QApplication.primaryScreen()
        out["screenshot_saved"] = screen.grabWindow(0).save(screenshot)
        tray.menu.hide()

    # A failing run (the SMTP port is closed): a notification, the error icon, a click opens the event
    fail_paths = home_paths(fail_home)
    controller.config = load_config(fail_paths.config_file)
    shown_before = len(tray.shown)
    tray.action("retrieve").trigger()
    out["notified"] = await await_until(lambda: len(tray.shown) > shown_before, 60)
    await await_until(lambda: not controller.running, 60)
    out["notifications"] = [list(n) for n in list(tray.shown)[shown_before:]]
    out["state_after_failed_run"] = tray.state
    out["tooltip_after_failed_run"] = tray.toolTip()
    out["states"] = states
    tray.messageClicked.emit()
    window = tray.window
    await await_until(lambda: window.isVisible(), 5)
    out["window_visible_after_click"] = window.isVisible()
    out["window_tab_after_click"] = window.tabs.tabText(window.tabs.currentIndex()).replace("&", "")
    selected = window.events.selected_event()
    out["selected_event_id"] = None if selected is None else int(selected.id)

    window.hide()
    await controller.stop()
    tray.hide()
    controller.close()
    return out


def push(home: str, control: str) -> int:
    """The real tray runner with IMAP push; Quit when CONTROL_DIR/quit appears (see the module docstring)."""
    import pop3gui.gui.tray as tray_module
    from pop3gui.gui.app import run_tray

    out: dict[str, Any] = {"runs": [], "states": []}
    seen: dict[str, Any] = {}  # live objects, looked at once run_tray has returned
    quit_file = Path(control) / "quit"

    async def drive(tray: Any) -> None:
        controller = tray.controller
        seen["loop"] = asyncio.get_running_loop()
        seen["controller"] = controller
        controller.run_finished.connect(lambda result: out["runs"].append(
            None if result is None else [[a.account, a.delivered, a.failed] for a in result.accounts]))
        tray.state_changed.connect(out["states"].append)
        out["in_tray"] = await await_until(lambda: tray.isVisible() and not tray.geometry().isEmpty(), 30)
        out["listening"] = await await_until(
            lambda: controller._push is not None and bool(controller._push.listening), 30)
        if controller._push is not None:
            seen["push"] = controller._push
            seen["watchers"] = list(controller._push._tasks)
            print(json.dumps({"listening": sorted(map(list, controller._push.listening))}), flush=True)
        out["quit_asked"] = await await_until(quit_file.exists, 120)
        # The test asks for Quit once the pushed message left the ISP's server; the push run that deleted it
        # may still be finishing (QUIT, housekeeping): Quit comes after it, as the user's would.
        out["push_run_over"] = await await_until(lambda: len(out["runs"]) >= 2 and not controller.running, 30)
        push = seen.get("push")
        out["listening_before_quit"] = [] if push is None else sorted(map(list, push.listening))
        out["running_before_quit"] = controller.running
        tray.action("quit").trigger()

    class WatchedTray(tray_module.TrayRunner):
        """The tray runner that run_tray makes, driven by this scenario."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen["driver"] = asyncio.ensure_future(drive(self))

    tray_module.TrayRunner = WatchedTray  # type: ignore[misc]
    code = run_tray(home_paths(home))
    out["exit_code"] = code
    controller, push, loop = seen.get("controller"), seen.get("push"), seen.get("loop")
    out["push_after_quit"] = None if controller is None else repr(controller._push)
    out["listening_after_quit"] = None if push is None else sorted(map(list, push.listening))
    out["watchers"] = len(seen.get("watchers", []))
    out["watchers_done"] = all(task.done() for task in seen.get("watchers", []))
    out["running_after_quit"] = None if controller is None else controller.running
    out["driver_done"] = "driver" in seen and seen["driver"].done()
    out["tasks_left"] = [] if loop is None else sorted(t.get_name() for t in asyncio.all_tasks(loop) if not t.done())
    print(json.dumps(out), flush=True)
    return code


def main(argv: list[str]) -> int:
    if argv[0] == "probe":
        print(json.dumps(probe()), flush=True)
        return 0
    if argv[0] == "live":
        import qasync

        app = make_application()
        if not wait_until(QSystemTrayIcon.isSystemTrayAvailable, 15):
            print(json.dumps({"available": False}), flush=True)
            return 0
        loop = qasync.QEventLoop(app)
        asyncio.set_event_loop(loop)
        with loop:
            result = loop.run_until_complete(live(argv[1], argv[2], argv[3] if len(argv) > 3 else None))
        print(json.dumps(result), flush=True)
        return 0
    if argv[0] == "push":
        return push(argv[1], argv[2])
    raise SystemExit(f"unknown scenario {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
