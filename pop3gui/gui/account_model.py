"""The table of mail accounts (POP3 and IMAP) on the Mail Accounts page, with each one's live state.

The model holds the accounts being edited (a list of frozen
:class:`~pop3gui.core.config.model.AccountConfig`) and, by account name, what the
connector last did with each: a run in progress ("12 / 40 messages, 1.2 MB")
or the last result (time, count, ok / warning / failed).  It learns that from
the engine's account status on ``controller.bridge.account_status`` (and keeps
the first error event of a run to explain it); it never asks the engine itself.
An OAuth2 account whose run failed because it must be signed in (again) says
"needs sign-in" until it is signed in from its dialog.  The server column
says "(IMAP)" after an IMAP account's server; its tooltip names the folders.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QBrush, QPalette
from PySide6.QtWidgets import QApplication

from pop3gui.core.config.model import AccountConfig
from pop3gui.core.engine import status as engine_status
from pop3gui.core.engine.status import AccountResult, Phase
from pop3gui.core.events.model import Event, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.mail.addresses import domain_of
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.gui.icons import icon

AccountRole = Qt.ItemDataRole.UserRole + 1
"""``data(index, AccountRole)`` is the row's :class:`AccountConfig` (any column)."""

StatusRole = Qt.ItemDataRole.UserRole + 2
"""``data(index, StatusRole)`` is the row's :class:`AccountStatus` or None."""

_Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    NAME = 0
    SERVER = 1
    USERNAME = 2
    KIND = 3
    DELIVERS_TO = 4
    LAST_RESULT = 5


class State(enum.Enum):
    RUNNING = "running"
    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True)
class AccountStatus:
    """What the connector is doing or last did with one account."""

    state: State
    time: datetime | None = None  # when the last run of the account ended
    done: int = 0  # messages handled so far (running) or delivered (finished)
    total: int = 0
    bytes: int = 0
    error: str = ""  # the first ERROR event of the run, with cause and fix
    needs_sign_in: bool = False  # failed for want of a (valid) OAuth2 sign-in


SIGN_IN_FAILURES = frozenset({Failure.SIGN_IN_NEEDED})
"""Diagnoses of a failed account that only a new sign-in mends."""


def format_bytes(count: int) -> str:
    """1234567 -> '1.2 MB' (binary multiples, as mail clients show sizes)."""
    if count < 1024:
        return f"{count} bytes"
    value = float(count)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


class AccountTableModel(QAbstractTableModel):
    """Accounts (rows) with Name, Server, User name, Mailbox type, Delivers to, Last result."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._accounts: list[AccountConfig] = []
        self._status: dict[str, AccountStatus] = {}
        self._local_domains = LocalDomains(())

    # --- the accounts -----------------------------------------------------------

    def accounts(self) -> list[AccountConfig]:
        return list(self._accounts)

    def set_accounts(self, accounts: Iterable[AccountConfig]) -> None:
        """Replace every row; the status of accounts still present is kept."""
        self.beginResetModel()
        self._accounts = list(accounts)
        names = {a.name for a in self._accounts}
        self._status = {k: v for k, v in self._status.items() if k in names}
        self.endResetModel()

    def set_local_domains(self, domains: Iterable[str]) -> None:
        """The recipient policies' domains: a user target outside them gets a warning icon."""
        self._local_domains = LocalDomains(domains, skip_invalid=True)
        self._changed(Column.DELIVERS_TO, Column.DELIVERS_TO)

    def row_of(self, name: str) -> int:
        """The row of the account called ``name``, or -1."""
        for row, acc in enumerate(self._accounts):
            if acc.name == name:
                return row
        return -1

    def account_at(self, row: int) -> AccountConfig:
        return self._accounts[row]

    def append_account(self, account: AccountConfig) -> int:
        row = len(self._accounts)
        self.beginInsertRows(QModelIndex(), row, row)
        self._accounts.append(account)
        self.endInsertRows()
        return row

    def replace_account(self, old_name: str, account: AccountConfig) -> int:
        """Put ``account`` where ``old_name`` was (a rename carries the status along)."""
        row = self.row_of(old_name)
        if row < 0:
            raise KeyError(old_name)
        self._accounts[row] = account
        if old_name != account.name and old_name in self._status:
            self._status[account.name] = self._status.pop(old_name)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))
        return row

    def remove_account(self, name: str) -> AccountConfig:
        row = self.row_of(name)
        if row < 0:
            raise KeyError(name)
        self.beginRemoveRows(QModelIndex(), row, row)
        account = self._accounts.pop(row)
        self._status.pop(name, None)
        self.endRemoveRows()
        return account

    def status(self, name: str) -> AccountStatus | None:
        return self._status.get(name)

    # --- live state from the controller -------------------------------------------

    def connect_controller(self, controller: Any) -> None:
        """Follow a :class:`~pop3gui.gui.controller.ConnectorController`'s runs."""
        controller.bridge.account_status.connect(self.on_account_status)
        controller.bridge.new_event.connect(self.on_event)
        controller.run_finished.connect(self.on_run_finished)

    def on_account_status(self, status: engine_status.AccountStatus) -> None:
        """The engine's account status, as the row shows it."""
        name = status.account
        current = self._status.get(name)
        phase = status.phase
        if phase is Phase.CONNECTING:
            self._set_status(name, AccountStatus(State.RUNNING))
            return
        if phase in (Phase.DOWNLOADING, Phase.DELIVERING):
            error = current.error if current is not None and current.state is State.RUNNING else ""
            self._set_status(name, AccountStatus(State.RUNNING, done=status.done, total=status.total,
                                                 bytes=status.size, error=error))
            return
        res = status.result
        if res is None:
            return
        first_error = current.error if current is not None and current.state is State.RUNNING else ""
        if phase is Phase.FAILED:
            state, error = State.FAILED, first_error or _explain_failure(res)
        elif res.clean:
            state, error = State.OK, first_error
        else:
            state, error = State.WARNING, first_error or _problems(res)
        account = self.account_named(name)
        needs_sign_in = (phase is Phase.FAILED and res.diagnosis in SIGN_IN_FAILURES
                         and account is not None and account.auth == "oauth2")
        self._set_status(name, AccountStatus(state, time=_local(status.time), done=res.delivered, error=error,
                                             needs_sign_in=needs_sign_in))

    def signed_in(self, name: str) -> None:
        """The account was signed in again: its last result no longer asks for it."""
        current = self._status.get(name)
        if current is not None and current.needs_sign_in:
            self._set_status(name, replace(current, needs_sign_in=False, error=current.error + "\n" + self.tr(
                "Signed in again since; the next run retrieves the mail.")))

    def account_named(self, name: str) -> AccountConfig | None:
        row = self.row_of(name)
        return self._accounts[row] if row >= 0 else None

    def on_run_finished(self, _result: object) -> None:
        """A run that ended without finishing an account (an unexpected error) must not leave it "running"."""
        for name, status in list(self._status.items()):
            if status.state is State.RUNNING:
                error = status.error or "The run ended before this account finished; see the Events page."
                self._set_status(name, AccountStatus(State.FAILED, time=datetime.now(), done=status.done,
                                                     error=error))

    def on_event(self, event: Event) -> None:
        """Keep the first error of a running account's cycle, to explain its result."""
        current = self._status.get(event.account) if event.account else None
        if (current is not None and current.state is State.RUNNING and not current.error
                and event.severity >= Severity.ERROR):
            self._set_status(event.account, replace(current, error=_explain(event.text, event.cause, event.fix)))

    def _set_status(self, name: str, status: AccountStatus) -> None:
        self._status[name] = status
        row = self.row_of(name)
        if row >= 0:
            index = self.index(row, Column.LAST_RESULT)
            self.dataChanged.emit(index, index)

    def _changed(self, first: Column, last: Column) -> None:
        if self._accounts:
            self.dataChanged.emit(self.index(0, first), self.index(len(self._accounts) - 1, last))

    # --- QAbstractTableModel -----------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._accounts)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or role != Qt.ItemDataRole.DisplayRole:
            return None
        if not 0 <= section < len(Column):
            return None
        return (self.tr("Name"), self.tr("Server"), self.tr("User name"), self.tr("Mailbox type"),
                self.tr("Delivers to"), self.tr("Last result"))[section]

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._accounts):
            return None
        acc = self._accounts[index.row()]
        column = Column(index.column())
        if role == AccountRole:
            return acc
        if role == StatusRole:
            return self._status.get(acc.name)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(acc, column)
        if role == Qt.ItemDataRole.DecorationRole:
            return self._decoration(acc, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(acc, column)
        if role == Qt.ItemDataRole.ForegroundRole and not acc.enabled:
            app = QApplication.instance()
            palette = app.palette() if isinstance(app, QApplication) else QPalette()
            return QBrush(palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        return None

    def _display(self, acc: AccountConfig, column: Column) -> str:
        if column is Column.NAME:
            return acc.name if acc.enabled else self.tr("%1 (disabled)").replace("%1", acc.name)
        if column is Column.SERVER:
            return f"{acc.host}:{acc.port} (IMAP)" if acc.protocol == "imap" else f"{acc.host}:{acc.port}"
        if column is Column.USERNAME:
            return acc.username
        if column is Column.KIND:
            return self.tr("Global") if acc.kind == "global" else self.tr("User")
        if column is Column.DELIVERS_TO:
            return self.tr("To/Cc + envelope headers") if acc.kind == "global" else acc.deliver_to
        return self._result_text(self._status.get(acc.name))

    def _result_text(self, status: AccountStatus | None) -> str:
        if status is None:
            return self.tr("Not run yet")
        if status.state is State.RUNNING:
            if not status.total:
                return self.tr("Connecting…") if not status.bytes else format_bytes(status.bytes)
            return (self.tr("%1 / %2 messages, %3").replace("%1", str(status.done))
                    .replace("%2", str(status.total)).replace("%3", format_bytes(status.bytes)))
        when = _format_time(status.time)
        if status.needs_sign_in:
            return self.tr("%1, needs sign-in").replace("%1", when)
        if status.state is State.FAILED:
            return self.tr("%1, failed").replace("%1", when)
        text = self.tr("%1, %2 delivered").replace("%1", when).replace("%2", str(status.done))
        if status.state is State.WARNING:
            text += self.tr(", with warnings")
        return text

    def _decoration(self, acc: AccountConfig, column: Column) -> Any:
        if column is Column.KIND:
            return icon("global" if acc.kind == "global" else "user")
        if column is Column.DELIVERS_TO and self._policy_warning(acc):
            return icon("warning")
        if column is Column.LAST_RESULT:
            status = self._status.get(acc.name)
            if status is not None:
                return icon({State.RUNNING: "info", State.OK: "ok", State.WARNING: "warning",
                             State.FAILED: "error"}[status.state])
        return None

    def _tooltip(self, acc: AccountConfig, column: Column) -> str | None:
        if column is Column.DELIVERS_TO:
            if acc.kind == "global":
                return self.tr("Recipients come from the envelope headers (%1), else from To and Cc, "
                               "plus the routing rules.").replace("%1", ", ".join(acc.envelope_headers) or "-")
            domain = self._policy_warning(acc)
            if domain:
                return policy_warning_text(self, domain)
            return None
        if column is Column.LAST_RESULT:
            status = self._status.get(acc.name)
            if status is not None and status.needs_sign_in:
                hint = self.tr("Needs sign-in: open the account (Edit…) and press Sign in….")
                return hint + "\n\n" + status.error
            if status is not None and status.error:
                return status.error
        if column is Column.SERVER:
            return self._server_tooltip(acc)
        return None

    def _server_tooltip(self, acc: AccountConfig) -> str:
        security = {"tls": self.tr("TLS"), "starttls": self.tr("STARTTLS"), "none": self.tr("no encryption")}
        text = security.get(acc.security, acc.security)
        if acc.protocol != "imap":
            return self.tr("POP3, %1").replace("%1", text)
        after = {"delete": self.tr("deleted from the server"),
                 "move": self.tr("moved to %1").replace("%1", acc.move_to),
                 "keep": self.tr("kept on the server")}.get(acc.after_delivery, acc.after_delivery)
        lines = [self.tr("IMAP, %1").replace("%1", text),
                 self.tr("Folders: %1").replace("%1", ", ".join(acc.folders)),
                 self.tr("Delivered mail is %1.").replace("%1", after)]
        if acc.idle:
            lines.append(self.tr("New mail is delivered at once (IDLE)."))
        return "\n".join(lines)

    def _policy_warning(self, acc: AccountConfig) -> str:
        """The deliver_to domain when no recipient policy covers it (user mailboxes only)."""
        if acc.kind != "user" or not acc.deliver_to or not self._local_domains:
            return ""
        domain = domain_of(acc.deliver_to)
        return "" if domain in self._local_domains else domain


def policy_warning_text(obj: QObject, domain: str) -> str:
    return obj.tr("No recipient policy covers %1: the local server will likely refuse it").replace("%1", domain)


def _explain(text: str, cause: str, fix: str) -> str:
    lines = [text]
    if cause:
        lines.append(f"Cause: {cause}")
    if fix:
        lines.append(f"Fix: {fix}")
    return "\n".join(lines)


def _explain_failure(res: AccountResult) -> str:
    return _explain(res.errors[0] if res.errors else "The account's cycle failed.", res.cause, res.fix)


def _problems(res: AccountResult) -> str:
    parts = [f"{count} {what}" for count, what in ((res.diverted, "diverted to the undeliverable mailbox"),
                                                   (res.quarantined, "quarantined"),
                                                   (res.deferred, "left for retry")) if count]
    return ", ".join(parts) + "."


def _local(moment: datetime) -> datetime:
    return moment.astimezone() if moment.tzinfo else moment


def _format_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    moment = _local(moment)
    now = datetime.now(moment.tzinfo)
    return moment.strftime("%H:%M") if moment.date() == now.date() else moment.strftime("%Y-%m-%d %H:%M")

