"""The one place where Qt, asyncio and qasync are wired together.

The engine is an asyncio program; qasync runs it on Qt's event loop so the
window and the download loop share one thread without blocking each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

os.environ.setdefault("QT_API", "pyside6")

from PySide6.QtGui import QIcon  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402
import qasync  # noqa: E402

log = logging.getLogger(__name__)


def make_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("pop3gui")
    app.setApplicationDisplayName("POP3 Connector")
    app.setOrganizationName("pop3gui")
    app.setDesktopFileName("pop3gui")
    app.setWindowIcon(app_icon())
    return app


def app_icon() -> QIcon:
    """The application icon: the shipped SVG, with the pre-rendered PNG sizes for crisp small icons."""
    from importlib import resources

    icon = QIcon()
    base = resources.files("pop3gui.resources")
    for name in ("pop3gui.svg", *(f"pop3gui-{n}.png" for n in (16, 32, 48, 64, 128, 256))):
        with resources.as_file(base / name) as file:
            if file.exists():
                icon.addFile(str(file))
    return icon


def report_unexpected(text: str) -> None:
    """Show a bug (not a user mistake) instead of dying silently on the GUI thread."""
    log.error("%s", text)
    if QApplication.instance() is not None:
        QMessageBox.critical(None, "pop3gui: unexpected error",
                             f"Something went wrong inside pop3gui:\n\n{text[-2000:]}\n\n"
                             "Your mail is safe: nothing is deleted on the POP3 server before it was "
                             "delivered. Please report this message to the pop3gui developers.")


def run_event_loop(app: QApplication, main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run ``main`` on a qasync loop over ``app``; its result is the exit code."""
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    def on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        report_unexpected(f"{context.get('message', '')}\n{exc!r}" if exc else str(context.get("message")))

    loop.set_exception_handler(on_loop_error)
    previous_hook = sys.excepthook

    def on_exception(kind: type[BaseException], exc: BaseException, tb: object) -> None:
        report_unexpected(f"{kind.__name__}: {exc}")

    sys.excepthook = on_exception
    try:
        with loop:
            code: int = loop.run_until_complete(main())
            return code
    finally:
        sys.excepthook = previous_hook
