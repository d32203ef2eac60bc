"""``pop3gui demo``'s window: the real properties window on the sandbox, with a guide.

The command line builds a :class:`~pop3gui.demo.sandbox.Sandbox` and calls
:func:`run_demo_window`, which starts the sandbox on its own qasync loop and
opens the ordinary :class:`~pop3gui.gui.properties.PropertiesWindow` (the
same controller, tabs and buttons as ``pop3gui``) with a banner on top saying
it is a sandbox and walking a newcomer through KB Q325464:

1. Recipient Policies lists erin@contoso.eu and postmaster@contoso.eu before
   any mail flows;
2. Retrieve Now (Scheduling) downloads the sample mail;
3. Events shows the ``550 5.7.1`` refusal with its cause and fix;
4. the one-click fix on Recipient Policies, then Apply;
5. Quarantine: Resubmit delivers erin's message.

Mail Accounts also lists dana@contoso.com, a mailbox that signs in with
OAuth2 instead of a password: the demo signs it in at its own sign-in page
when the sandbox starts (the sandbox presses Allow), so the first Retrieve
Now delivers its mail too; the account editor's Sign in again… opens that
page in the web browser, where the user presses Allow.

Step 4 only changes the connector's config, as on a real installation.  The
sandbox's fake Exchange then has to accept the domain too (a real admin adds
it to the server's accepted domains); the demo does that when the config is
saved and says so in the banner.

:func:`open_demo` does everything but the blocking loop, for tests.
"""

from __future__ import annotations

import asyncio
import html
import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from pop3gui.core.config.model import Config
from pop3gui.demo.sandbox import Sandbox
from pop3gui.demo.story import DANA, ERIN, MISSING_DOMAIN, OAUTH_ACCOUNT, UNDELIVERABLE
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.properties import PropertiesWindow
from pop3gui.gui.qt import make_application, run_event_loop

if TYPE_CHECKING:
    from pop3gui.gui.tray import TrayRunner

GUIDE = (
    "<b>Recipient Policies</b> shows the problem before any mail flows: {erin} and {postmaster} are in "
    "{domain}, a domain no recipient policy covers (KB Q325464).",
    "On <b>Scheduling</b>, press <b>Retrieve Now</b>.",
    "<b>Events</b>: the Exchange refuses {erin} with 550 5.7.1 (select the event for cause and fix); "
    "the message is kept in quarantine, not lost.",
    "On <b>Recipient Policies</b>, click <b>Add {domain} to policy …</b>, then <b>Apply</b>.",
    "<b>Quarantine</b>: select the message and press <b>Resubmit</b>.",
)


class DemoBanner(QFrame):
    """The "this is a sandbox" notice and the five steps, above the tabs."""

    def __init__(self, sandbox: Sandbox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("demoBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # Dark text on a light background whatever the desktop theme, so it stays readable.
        self.setStyleSheet("#demoBanner { background: #fff4ce; border: 1px solid #d9b300; border-radius: 4px; }"
                           "#demoBanner QLabel { color: #1f1f1f; background: transparent; }")
        where = html.escape(str(sandbox.folder))
        self.title = QLabel(self.tr("<b>Demo sandbox</b> — fake ISP and fake Exchange on this computer; "
                                    "mail is stored in<br><code>{folder}</code>").format(folder=where))
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        steps = "".join(f"<li>{self.tr(step).format(erin=ERIN, postmaster=UNDELIVERABLE, domain=MISSING_DOMAIN)}"
                        "</li>" for step in GUIDE)
        self.guide = QLabel(f"<ol style='margin-left: -20px; margin-top: 0px; margin-bottom: 0px;'>{steps}</ol>")
        self.guide.setWordWrap(True)
        self.oauth_note = QLabel(self.tr(
            "<b>Mail Accounts</b> also lists <b>{account}</b> ({user}), which signs in with OAuth2 instead of a "
            "password: the demo signed it in at its own sign-in page when the sandbox started, so Retrieve Now "
            "delivers its mail too. Its <b>Edit…</b> dialog shows the sign-in; <b>Sign in again…</b> opens the "
            "demo sign-in page in your web browser.").format(account=OAUTH_ACCOUNT, user=DANA))
        self.oauth_note.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.guide)
        layout.addWidget(self.oauth_note)
        layout.addWidget(self.status)

    def say(self, text: str) -> None:
        self.status.setText(f"<b>{html.escape(text)}</b>")
        self.status.show()


class DemoWindow(PropertiesWindow):
    """The properties window with the sandbox banner; it opens on Recipient Policies (step 1)."""

    def __init__(self, controller: ConnectorController, sandbox: Sandbox, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.setWindowTitle(self.tr("POP3 Connector Properties — demo sandbox"))
        self.banner = DemoBanner(sandbox)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(0, self.banner)
        self.resize(1000, 760)
        self.tabs.setCurrentWidget(self.policies)


@dataclass
class DemoSession:
    """A started sandbox with its controller and window; :meth:`close` ends all three."""

    sandbox: Sandbox
    controller: ConnectorController
    window: DemoWindow

    def exchange_follows_policies(self, config: Config) -> list[str]:
        """On save: the sandbox Exchange accepts the policies' new domains (a real admin does this by hand)."""
        added = self.sandbox.accept_policy_domains(config)
        if added:
            domains = ", ".join(added)
            self.window.banner.say(self.window.tr(
                "The sandbox Exchange now accepts {domains} too — on a real server, add the domain to its "
                "accepted domains. Now resubmit the message on the Quarantine page.").format(domains=domains))
        return added

    async def close(self) -> None:
        """Finish the run in flight, close the window's stores, stop the sandbox's servers."""
        try:
            await self.controller.stop()
            self.controller.close()
        finally:
            await self.sandbox.stop()


async def open_demo(sandbox: Sandbox) -> DemoSession:
    """Start *sandbox* on the running (qasync) loop, sign its OAuth2 mailbox in, build its window (not shown yet)."""
    await sandbox.start()
    try:
        # The sandbox installed its in-memory keyring: the sign-in is stored there, and the controller's
        # Credentials() read it.
        await sandbox.sign_in()
        controller = ConnectorController(sandbox.paths, sandbox.config)
        window = DemoWindow(controller, sandbox)
    except BaseException:
        await sandbox.stop()
        raise
    session = DemoSession(sandbox, controller, window)
    controller.config_saved.connect(session.exchange_follows_policies)
    return session


def tray_for(session: DemoSession) -> TrayRunner | None:
    """A tray icon (:mod:`pop3gui.gui.tray`) whose window is the demo's; None, having said why, without a tray."""
    from PySide6.QtWidgets import QSystemTrayIcon

    if importlib.util.find_spec("pop3gui.gui.tray") is None:
        print("pop3gui demo: the tray is not available in this version; showing the window instead.", flush=True)
        return None
    if not QSystemTrayIcon.isSystemTrayAvailable():
        print("pop3gui demo: this desktop has no system tray; showing the window instead (closing it ends the "
              "demo).", flush=True)
        return None
    from pop3gui.gui.tray import TrayRunner

    return TrayRunner(session.controller, window_factory=lambda: session.window)


def run_demo_window(sandbox: Sandbox, *, once: bool, tray: bool) -> int:
    """The window hook of ``pop3gui demo`` (see :mod:`pop3gui.demo`): returns when the window is closed.

    *once*: retrieve once right away and then only on Retrieve Now (no
    schedule); otherwise the sample's schedule runs.  *tray*: start in the
    system tray (its menu opens the demo window; Quit ends the demo) when a
    tray is there, else the window opens and it says why.
    """
    app = make_application()
    # Closing the window hides it; Qt would then stop the loop before the sandbox is stopped. The
    # window's finished signal ends the demo instead.
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)

    async def main() -> int:
        session = await open_demo(sandbox)
        try:
            done = asyncio.Event()
            runner = tray_for(session) if tray else None
            if runner is None:
                session.window.finished.connect(lambda _result: done.set())
                session.window.show()
            else:  # closing the window keeps the demo running; the tray's Quit ends it
                runner.quit_requested.connect(done.set)
                runner.show()
                print("pop3gui demo: running in the system tray; its menu opens the window, Quit ends the demo.",
                      flush=True)
            if once:
                session.controller.set_paused(True)
                session.controller.retrieve_now()
                session.window.banner.say(session.window.tr(
                    "--once: one retrieval ran at start and the schedule is off; Retrieve Now runs another."))
            await done.wait()
            if runner is not None:
                session.window.hide()
                runner.hide()
            return 0
        finally:
            await session.close()

    try:
        return run_event_loop(app, main)
    finally:
        app.setQuitOnLastWindowClosed(quit_on_close)


__all__ = ["DemoBanner", "DemoSession", "DemoWindow", "open_demo", "run_demo_window", "tray_for"]
