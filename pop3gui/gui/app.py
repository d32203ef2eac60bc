"""``pop3gui`` (the properties window) and ``pop3gui tray`` (the background runner) on a qasync loop.

Both are single-instance per state folder: a second launch asks the running
one to show its window and exits 0 (:mod:`pop3gui.gui.single_instance`).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import Config
from pop3gui.core.errors import ConfigError, StateError
from pop3gui.core.state.paths import Paths
from pop3gui.gui.qt import make_application, run_event_loop

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

SHOWN_ON_REQUEST = "pop3gui: shown on request of a second launch"
TRAY_APPEARED = "pop3gui: a system tray appeared; running in the system tray from now on"

#: At login the tray runner may start before the panel that hosts tray icons:
#: it waits this long for one before it shows its window instead, and then
#: keeps looking every TRAY_POLL_S seconds, moving into the tray when one appears.
TRAY_WAIT_S = 10.0
TRAY_POLL_S = 2.0


def _load(paths: Paths, app: object) -> Config | None:
    from PySide6.QtWidgets import QMessageBox

    if not paths.config_file.exists():
        return Config()  # first start: the admin sets everything up in the window
    try:
        return load_config(paths.config_file)
    except ConfigError as exc:
        print(f"pop3gui: error: {exc.explain()}", file=sys.stderr, flush=True)
        QMessageBox.critical(None, "pop3gui: configuration error", exc.explain())
        return None


def _start(paths: Paths) -> tuple[QApplication, Config] | int:
    """The application and its configuration, or the exit code when there is nothing to run:
    0 when an instance for this state folder already runs (it was asked to show its window),
    2 when the configuration is invalid (said on stderr and in a message box)."""
    app = make_application()
    if _forward_to_running_instance(paths, "show"):
        return 0
    config = _load(paths, app)
    return 2 if config is None else (app, config)


def _forward_to_running_instance(paths: Paths, command: str) -> bool:
    from pop3gui.gui.single_instance import ask_running_instance

    if ask_running_instance(paths, command):
        print(f"pop3gui is already running for {paths.state_dir}; asked it to open its window.", flush=True)
        return True
    return False


class _StopSignals:
    """SIGTERM/SIGINT end the process cleanly even while Qt's event loop sleeps in C.

    Python runs signal handlers only between bytecodes: the wakeup fd wakes a
    QSocketNotifier so the handler gets its turn.
    """

    def __init__(self, on_signal: Callable[[], None]) -> None:
        from PySide6.QtCore import QSocketNotifier

        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno())
        self._notifier = QSocketNotifier(self._read.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)
        self._previous = {sig: signal.signal(sig, lambda *_: on_signal()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _drain(self) -> None:
        try:
            self._read.recv(256)
        except OSError:
            pass

    def close(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._notifier.setEnabled(False)
        self._read.close()
        self._write.close()


def run_window(paths: Paths) -> int:
    """Open the properties window; returns when it is closed (after the run in flight ends)."""
    started = _start(paths)
    if isinstance(started, int):
        return started
    app, config = started

    from pop3gui.gui.controller import ConnectorController
    from pop3gui.gui.properties import PropertiesWindow
    from pop3gui.gui.single_instance import InstanceServer
    from pop3gui.gui.tray import bring_to_front

    async def main() -> int:
        controller = ConnectorController(paths, config)
        window = PropertiesWindow(controller)
        server = InstanceServer(paths)
        server.listen()

        def show(command: str) -> None:
            bring_to_front(window)
            if command == "events":
                window.tabs.setCurrentWidget(window.events)
            print(SHOWN_ON_REQUEST, flush=True)

        server.requested.connect(show)
        closed = asyncio.Event()
        window.finished.connect(lambda _result: closed.set())
        stop_signals = _StopSignals(closed.set)
        window.show()
        try:
            await closed.wait()
        finally:
            stop_signals.close()
            server.close()
            window.hide()
            await controller.stop()
            controller.close()
        return 0

    return run_event_loop(app, main)


def run_tray(paths: Paths) -> int:
    """The background runner in the system tray; returns after Quit (or SIGTERM) once the run in flight ended.

    Without a system tray (after waiting TRAY_WAIT_S for one) it says so and keeps
    the properties window open instead, closing it ends the process, until a
    tray appears: then it moves there.  Holds the state folder's runner lock
    for its lifetime, so ``pop3gui run`` is refused meanwhile.
    """
    started = _start(paths)
    if isinstance(started, int):
        return started
    app, config = started

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QSystemTrayIcon

    from pop3gui.gui.controller import ConnectorController
    from pop3gui.gui.single_instance import InstanceServer
    from pop3gui.gui.tray import TrayRunner, no_tray_banner, say_no_tray

    async def main() -> int:
        controller = ConnectorController(paths, config)
        try:
            controller.hold_runner_lock()  # `pop3gui run` is refused with this pid meanwhile
        except StateError as exc:
            print(f"pop3gui: error: {exc.explain()}", file=sys.stderr, flush=True)
            controller.close()
            return 1
        server = InstanceServer(paths)
        server.listen()
        tray = TrayRunner(controller)
        quit_now = asyncio.Event()
        tray.quit_requested.connect(quit_now.set)

        def show(command: str) -> None:
            if command == "events":
                tray.open_events()
            else:
                tray.open_properties()
            print(SHOWN_ON_REQUEST, flush=True)

        server.requested.connect(show)
        stop_signals = _StopSignals(quit_now.set)
        # Started with the session: retrieve at once if the chosen hours allow it, then on the schedule.
        controller.start_schedule()
        # Platforms that draw nowhere (offscreen, minimal) never get a tray: no point waiting there.
        wait = 0.0 if app.platformName() in ("offscreen", "minimal") else TRAY_WAIT_S
        app.setQuitOnLastWindowClosed(False)  # quitting is quit_now's business (Quit, a signal, the window)
        looking = QTimer()  # for a tray that appears later, when there is none yet
        in_tray = await _wait_for_tray(wait, quit_now)
        if in_tray:
            tray.show()
            print(f"pop3gui: running in the system tray (pid {_pid()})", flush=True)
        elif not quit_now.is_set():
            say_no_tray()
            window = tray.window
            banner = no_tray_banner(window)
            window.finished.connect(lambda _result: None if in_tray else quit_now.set())
            tray.open_properties()

            def adopt_tray() -> None:
                nonlocal in_tray
                if in_tray or not QSystemTrayIcon.isSystemTrayAvailable():
                    return
                in_tray = True  # from now on closing the window only hides it
                looking.stop()
                banner.hide()
                tray.show()
                print(TRAY_APPEARED, flush=True)

            looking.setInterval(int(TRAY_POLL_S * 1000))
            looking.timeout.connect(adopt_tray)
            looking.start()
        try:
            await quit_now.wait()
        finally:
            looking.stop()
            stop_signals.close()
            server.close()
            print("pop3gui: quitting; finishing the message in flight", flush=True)
            if tray.has_window():
                tray.window.hide()
            await controller.stop()
            tray.hide()
            controller.close()
        print("pop3gui: stopped cleanly", flush=True)
        return 0

    return run_event_loop(app, main)


async def _wait_for_tray(seconds: float, stop: asyncio.Event) -> bool:
    """Whether a system tray is there, or turns up within *seconds* (unless *stop* is set first)."""
    from PySide6.QtWidgets import QSystemTrayIcon

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not QSystemTrayIcon.isSystemTrayAvailable():
        if loop.time() >= deadline or stop.is_set():
            return False
        await asyncio.sleep(0.25)
    return True


def _pid() -> int:
    import os

    return os.getpid()
