"""The tray runner: the connector working in the background, with an icon that tells its state.

After Vorta's ``TrayMenu``: the menu is rebuilt from live state each time it
opens; closing the properties window keeps the runner going; Quit finishes the
message in flight, QUITs the servers and exits.  Problems (a failed run, a
message put in quarantine, a recipient refused for a policy reason) raise a
desktop notification, at most one per kind a minute (the rest are counted into
the next one); clicking it opens the Events page on that event.  An account
that must be signed in with OAuth2 (again) raises its own notification, whose
click opens that account's properties, where **Sign in…** is.  The alerts of
``[alerts]`` (event 1201 when one starts, 1202 when it ends) are shown too
when ``[alerts] desktop`` is on; they are said once each by the engine, so
the tray shows each once.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from PySide6.QtCore import QItemSelectionModel, QObject, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QIcon
from PySide6.QtWidgets import QLabel, QMenu, QSystemTrayIcon, QWidget

from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.desktop.notify_limit import Notice, NotifyLimiter
from pop3gui.core.engine.status import AccountStatus, CycleResult, Phase
from pop3gui.core.schedule import moment_text
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.icons import icon
from pop3gui.gui.properties import PropertiesWindow

log = logging.getLogger(__name__)

IDLE, BUSY, ERROR = "idle", "busy", "error"
KIND_FAILED, KIND_QUARANTINED, KIND_POLICY = "run-failed", "quarantined", "policy-refused"
KIND_SIGN_IN = "sign-in-needed"
KIND_ALERT, KIND_RECOVERED = "alert", "alert-recovered"
SIGN_IN_DIAGNOSES = frozenset({Failure.SIGN_IN_NEEDED, Failure.OAUTH_TOKEN_REFUSED})
NOTIFY_MS = 15_000
SHOWN_KEPT = 100  # notifications remembered (the event store keeps the whole history)


def is_policy_refusal(event: Event) -> bool:
    """A recipient refused for a policy reason: its domain is not accepted (relaying denied), a rule,
    or a refusal that may be either (the postmaster probe could not tell)."""
    return (event.id == EventId.RECIPIENT_REFUSED
            and event.diagnosis in (Failure.DOMAIN_NOT_ACCEPTED, Failure.POLICY, Failure.UNCLEAR))


def is_sign_in_needed(event: Event) -> bool:
    """Signing in with OAuth2 failed in a way a new sign-in mends: none stored, it expired or was revoked,
    or the mail server refused even a freshly renewed token."""
    return (event.diagnosis in SIGN_IN_DIAGNOSES
            and (event.id == EventId.SIGN_IN_FAILED
                 or event.id == EventId.POP3_LOGIN_FAILED and event.diagnosis == Failure.OAUTH_TOKEN_REFUSED))


def same_event(a: Event, b: Event) -> bool:
    """The same event, whether or not one of them came back from the store with its seq."""
    return a == b or (a.seq == 0 or b.seq == 0) and replace(a, seq=0) == replace(b, seq=0)


def run_summary(result: CycleResult | None, at: datetime | None) -> str:
    """One line for the menu: what the last run did."""
    if at is None:
        return "No run yet"
    when = at.strftime("%H:%M")
    if result is None:
        return f"Last run {when}: could not run (see Events)"
    failed = [a.account for a in result.accounts if a.failed]
    delivered = sum(a.delivered for a in result.accounts)
    parts = [f"{delivered} delivered"]
    for label, count in (("diverted", sum(a.diverted for a in result.accounts)),
                         ("quarantined", sum(a.quarantined for a in result.accounts)),
                         ("deferred", sum(a.deferred for a in result.accounts))):
        if count:
            parts.append(f"{count} {label}")
    if failed:
        parts.append(f"{len(failed)} account{'s' if len(failed) > 1 else ''} failed")
    return f"Last run {when}: " + ", ".join(parts)


def run_failed(result: CycleResult | None) -> bool:
    return result is None or any(a.failed for a in result.accounts)


def select_event(window: PropertiesWindow, event: Event) -> bool:
    """Show the Events page with ``event`` selected (filters are reset if they hide it)."""
    window.tabs.setCurrentWidget(window.events)
    tab = window.events
    tab.model.flush()
    for attempt in range(2):
        proxy = tab.proxy
        for row in range(proxy.rowCount() - 1, -1, -1):
            if same_event(proxy.event_at(row), event):
                index = proxy.index(row, 0)
                tab.view.selectionModel().select(
                    index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
                tab.view.setCurrentIndex(index)
                tab.view.scrollTo(index)
                return True
        if attempt == 0:
            tab.reset_filters()
    return False


def bring_to_front(window: QWidget) -> None:
    window.show()
    if QGuiApplication.platformName() != "offscreen":  # no stacking order there (Qt warns)
        window.raise_()
    window.activateWindow()


class TrayRunner(QSystemTrayIcon):
    """The connector's tray icon, its menu and its notifications.

    ``notified`` is emitted with (kind, title, text) whenever a notification is shown.
    """

    quit_requested = Signal()
    notified = Signal(str, str, str)
    state_changed = Signal(str)

    def __init__(self, controller: ConnectorController, *, window_factory: Callable[[], PropertiesWindow] | None = None,
                 limiter: NotifyLimiter[Event | None] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._window_factory = window_factory or (lambda: PropertiesWindow(controller))
        self._window: PropertiesWindow | None = None
        self.limiter: NotifyLimiter[Event | None] = limiter or NotifyLimiter()
        self.state = IDLE
        self._progress: tuple[str, int, int] | None = None
        self._run_errors: list[Event] = []
        self._clicked_target: Event | None = None
        self._clicked_kind = ""
        self._run_sign_ins: set[str] = set()  # accounts ("" for the [smtp] login) told to sign in during this run
        # (kind, title, text), newest last: the latest only, so a tray running for years keeps no history here
        self.shown: deque[tuple[str, str, str]] = deque(maxlen=SHOWN_KEPT)

        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.setContextMenu(self.menu)
        self.rebuild_menu()  # some platforms show the menu without aboutToShow the first time

        self._summary_timer = QTimer(self)
        self._summary_timer.setSingleShot(True)
        self._summary_timer.timeout.connect(self._show_due_summaries)

        self.activated.connect(self._activated)
        self.messageClicked.connect(self._message_clicked)
        controller.run_started.connect(self._run_started)
        controller.run_finished.connect(self._run_finished)
        controller.bridge.account_status.connect(self._on_account_status)
        controller.schedule_changed.connect(self._update_look)
        controller.bridge.new_event.connect(self._on_event)
        self._update_look()

    # --- the window -------------------------------------------------------------------

    @property
    def window(self) -> PropertiesWindow:
        if self._window is None:
            self._window = self._window_factory()
        return self._window

    def has_window(self) -> bool:
        return self._window is not None

    def open_properties(self) -> PropertiesWindow:
        window = self.window
        bring_to_front(window)
        return window

    def open_events(self, event: Event | None = None) -> PropertiesWindow:
        window = self.open_properties()
        if event is None:
            window.tabs.setCurrentWidget(window.events)
        else:
            select_event(window, event)
        return window

    def open_sign_in(self, account: str, event: Event | None = None) -> PropertiesWindow:
        """The properties window on *account*'s dialog, to sign it in; the Events page when it is gone."""
        window = self.open_properties()
        window.tabs.setCurrentWidget(window.accounts)
        if not account or window.accounts.show_account(account) is None:
            return self.open_events(event)
        return window

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (QSystemTrayIcon.ActivationReason.Trigger, QSystemTrayIcon.ActivationReason.DoubleClick):
            self.open_properties()

    # --- menu -----------------------------------------------------------------------------

    def rebuild_menu(self) -> None:
        """Fill the menu from the controller's live state (called each time it opens)."""
        c = self.controller
        menu = self.menu
        menu.clear()
        if c.running or self.state == BUSY:
            retrieve = menu.addAction(self.tr("Retrieving…") + self._progress_text())
            retrieve.setEnabled(False)
        else:
            retrieve = menu.addAction(self.tr("Retrieve &Now"))
            retrieve.triggered.connect(self._retrieve_now)
        retrieve.setObjectName("retrieve")
        if c.paused:
            pause = menu.addAction(self.tr("&Resume schedule"))
        else:
            pause = menu.addAction(self.tr("&Pause schedule"))
            pause.setEnabled(c.config.schedule.enabled)
        pause.setObjectName("pause")
        pause.triggered.connect(lambda: c.set_paused(not c.paused))
        menu.addSeparator()
        props = menu.addAction(self.tr("Open &Properties…"))
        props.setObjectName("properties")
        props.triggered.connect(self.open_properties)
        events = menu.addAction(self.tr("Open &Events…"))
        events.setObjectName("events")
        events.triggered.connect(lambda: self.open_events())
        menu.addSeparator()
        summary = menu.addAction(self.summary_text())
        summary.setObjectName("summary")
        summary.setEnabled(False)
        menu.addSeparator()
        quit_action = menu.addAction(self.tr("&Quit"))
        quit_action.setObjectName("quit")
        quit_action.triggered.connect(self.quit_requested.emit)

    def action(self, name: str) -> QAction:
        """The current menu's action called ``name`` (retrieve, pause, properties, events, summary, quit)."""
        for action in self.menu.actions():
            if action.objectName() == name:
                return action
        raise KeyError(name)

    def summary_text(self) -> str:
        c = self.controller
        text = run_summary(c.last_result, c.last_run_at)
        if c.paused:
            text += self.tr(" — schedule paused")
        elif c.next_run_at is not None and not c.running and self.state != BUSY:
            text += self.tr(" — next {time}").format(time=moment_text(c.next_run_at, c.now()))
        return text

    def _retrieve_now(self) -> None:
        self.controller.retrieve_now()

    def _progress_text(self) -> str:
        if self._progress is None:
            return ""
        account, done, total = self._progress
        return self.tr(" {account}: {done} of {total}").format(account=account, done=done, total=total)

    # --- state and look ---------------------------------------------------------------------

    def _run_started(self) -> None:
        self._run_errors = []
        self._run_sign_ins = set()
        self._progress = None
        self._set_state(BUSY)

    def _on_account_status(self, status: AccountStatus) -> None:
        if status.phase in (Phase.DOWNLOADING, Phase.DELIVERING):
            self._progress = (status.account, status.done, status.total)
            self._update_look()

    def _run_finished(self, result: CycleResult | None) -> None:
        self._progress = None
        failed = run_failed(result)
        self._set_state(ERROR if failed else IDLE)
        failed_accounts = [a.account for a in result.accounts if a.failed] if result is not None else []
        if failed and failed_accounts and ("" in self._run_sign_ins or set(failed_accounts) <= self._run_sign_ins):
            return  # every failure was a sign-in, and has been told as that already
        if failed:
            cause = self._run_errors[-1] if self._run_errors else None
            text = cause.text if cause is not None else self.tr("The run ended with problems.")
            if cause is not None and cause.fix:
                text += "\n" + self.tr("Fix: {fix}").format(fix=cause.fix)
            self.notify(KIND_FAILED, cause, self.tr("Mail retrieval failed"), text, error=True)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
        self._update_look()

    def _update_look(self) -> None:
        name = {IDLE: "tray-idle", BUSY: "tray-busy", ERROR: "tray-error"}[self.state]
        the_icon = icon(name)
        if the_icon.cacheKey() != self.icon().cacheKey():
            self.setIcon(the_icon if not the_icon.isNull() else QIcon())
        title = self.tr("POP3 Connector")
        if self.state == BUSY:
            line = self.tr("Retrieving mail…") + self._progress_text()
        else:
            line = self.summary_text()
        self.setToolTip(f"{title}\n{line}")

    # --- notifications --------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if event.id in (EventId.ALERT_RAISED, EventId.ALERT_RECOVERED):
            self._on_alert(event)
            return
        if event.severity >= Severity.ERROR and event.id not in (EventId.QUARANTINED, EventId.RECIPIENT_REFUSED,
                                                                 EventId.MESSAGE_REFUSED):
            self._run_errors.append(event)
            del self._run_errors[:-20]
        if event.id == EventId.QUARANTINED:
            self.notify(KIND_QUARANTINED, event, self.tr("A message was put in quarantine"),
                        event.text + (f"\n{event.fix}" if event.fix else ""))
        elif is_policy_refusal(event):
            self.notify(KIND_POLICY, event, self.tr("A recipient was refused by policy"),
                        event.text + (f"\n{event.fix}" if event.fix else ""))
        elif is_sign_in_needed(event):
            self._run_sign_ins.add(event.account)
            if event.account:
                title = self.tr("Sign-in needed for {account}").format(account=event.account)
                hint = self.tr("Click to open the account and sign in again.")
            else:
                title = self.tr("Sign-in needed for the local mail server's login")
                hint = event.fix
            self.notify(KIND_SIGN_IN, event, title, event.text + (f"\n{hint}" if hint else ""), error=True)

    def _on_alert(self, event: Event) -> None:
        """An alert started or ended: a notification when [alerts] desktop is on."""
        if not self.controller.config.alerts.desktop:
            return
        body = event.text.split(": ", 1)[-1] if event.id == EventId.ALERT_RAISED else event.text
        if event.id == EventId.ALERT_RAISED:
            if event.fix:
                body += "\n" + self.tr("Fix: {fix}").format(fix=event.fix)
            self.notify(KIND_ALERT, event, self.tr("pop3gui alert"), body, error=event.severity >= Severity.ERROR)
        else:
            self.notify(KIND_RECOVERED, event, self.tr("pop3gui alert resolved"),
                        body.split(" ended: ", 1)[-1])

    def notify(self, kind: str, event: Event | None, title: str, text: str, *, error: bool = False) -> bool:
        """Show a notification unless the kind's rate limit holds it back (then it is counted)."""
        notice = self.limiter.offer(kind, event)
        if notice is None:
            self._arm_summary_timer()
            return False
        more = notice.more_text()
        if more:
            text += "\n" + self.tr("(and {more} since the last notification)").format(more=more)
        self._show(notice, title, text, error)
        return True

    def _show(self, notice: Notice[Event | None], title: str, text: str, error: bool) -> None:
        self._clicked_target = notice.item
        kind = str(notice.kind)
        self._clicked_kind = kind
        self.shown.append((kind, title, text))
        icon_kind = QSystemTrayIcon.MessageIcon.Critical if error else QSystemTrayIcon.MessageIcon.Warning
        self.showMessage(title, text, icon_kind, NOTIFY_MS)
        self.notified.emit(kind, title, text)

    def _arm_summary_timer(self) -> None:
        wait = self.limiter.next_due_in()
        if wait is not None and not self._summary_timer.isActive():
            self._summary_timer.start(int(wait * 1000) + 50)

    def _show_due_summaries(self) -> None:
        for notice in self.limiter.due():
            title = {KIND_FAILED: self.tr("Mail retrieval failed again"),
                     KIND_QUARANTINED: self.tr("More messages were put in quarantine"),
                     KIND_POLICY: self.tr("More recipients were refused by policy"),
                     KIND_SIGN_IN: self.tr("Sign-in is still needed"),
                     KIND_ALERT: self.tr("More pop3gui alerts"),
                     KIND_RECOVERED: self.tr("More pop3gui alerts resolved")}.get(str(notice.kind),
                                                                          self.tr("More problems"))
            if notice.kind == KIND_SIGN_IN and notice.item is not None and notice.item.account:
                text = self.tr("{more} since the last notification. Click to sign in {account}.").format(
                    more=notice.more_text().capitalize(), account=notice.item.account)
            else:
                text = self.tr("{more} since the last notification. Click to see the latest in Events.").format(
                    more=notice.more_text().capitalize())
            self._show(notice, title, text, notice.kind == KIND_FAILED)
        self._arm_summary_timer()

    def _message_clicked(self) -> None:
        target = self._clicked_target
        if self._clicked_kind == KIND_SIGN_IN and target is not None and target.account:
            self.open_sign_in(target.account, target)
        else:
            self.open_events(target)


def no_tray_banner(window: QWidget) -> QLabel:
    """The message shown in the window when the desktop has no system tray."""
    label = QLabel(window.tr(
        "This desktop has no system tray, so pop3gui cannot run in the background here. The connector keeps "
        "running while this window is open; closing it stops the connector."))
    label.setObjectName("noTrayBanner")
    label.setWordWrap(True)
    label.setStyleSheet("background: #fff4ce; color: #3d2e00; padding: 6px; border: 1px solid #e0c060;")
    layout = window.layout()
    if layout is not None and hasattr(layout, "insertWidget"):
        layout.insertWidget(0, label)
    return label


def say_no_tray() -> None:
    print("pop3gui: no system tray is available on this desktop; showing the properties window instead "
          "(closing it stops the connector).", file=sys.stderr, flush=True)
