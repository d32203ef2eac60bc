"""``pop3gui`` without a command: the properties window on a qasync loop."""

from __future__ import annotations

import asyncio

from pop3gui.core.config import Config, load_config
from pop3gui.core.errors import ConfigError
from pop3gui.core.paths import Paths
from pop3gui.gui.qt import make_application, run_event_loop


def run_window(paths: Paths) -> int:
    """Open the properties window; returns when it is closed (after the run in flight ends)."""
    app = make_application()
    from PySide6.QtWidgets import QMessageBox

    from pop3gui.gui.controller import ConnectorController
    from pop3gui.gui.properties import PropertiesWindow

    if paths.config_file.exists():
        try:
            config = load_config(paths.config_file)
        except ConfigError as exc:
            QMessageBox.critical(None, app.translate("app", "pop3gui: configuration error"), exc.explain())
            return 2
    else:
        config = Config()  # first start: the admin sets everything up in the window

    async def main() -> int:
        controller = ConnectorController(paths, config)
        window = PropertiesWindow(controller)
        closed = asyncio.Event()
        window.finished.connect(lambda _result: closed.set())
        window.show()
        await closed.wait()
        await controller.stop()
        controller.close()
        return 0

    return run_event_loop(app, main)
