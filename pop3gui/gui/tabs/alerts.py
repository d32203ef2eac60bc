"""Alerts: when the connector tells the admin that something needs them, where, and what is active now.

The ``[alerts]`` settings (the address, each condition's threshold with its
off switch, desktop notifications) follow the other pages' draft pattern;
the list below them reads the health store the runner keeps
(:mod:`pop3gui.core.health`), refreshed after every run.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.model import AlertsConfig, Config
from pop3gui.core.errors import StateError
from pop3gui.core.health.mail import alert_sender
from pop3gui.core.health.store import AlertRow, HealthStore
from pop3gui.core.mail.addresses import normalize_address
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.tabs.base import ConfigTab, field_error_label, show_error

_DEFAULTS = AlertsConfig()


class _Threshold:
    """A check box that turns a condition on, and its number (0 in the file when off)."""

    def __init__(self, text: str, suffix: str, low: int, high: int, default: int) -> None:
        self.check = QCheckBox(text)
        self.spin = QSpinBox()
        self.spin.setRange(low, high)
        self.spin.setSuffix(suffix)
        self.spin.setMinimumWidth(110)
        self.default = default
        self.check.toggled.connect(self.spin.setEnabled)

    def load(self, value: int) -> None:
        self.check.setChecked(value > 0)
        self.spin.setValue(value if value > 0 else self.default)
        self.spin.setEnabled(value > 0)

    def value(self) -> int:
        return self.spin.value() if self.check.isChecked() else 0

    def row(self) -> QWidget:
        box = QWidget()
        layout = QHBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.check)
        layout.addWidget(self.spin)
        layout.addStretch()
        return box


class AlertsTab(ConfigTab):
    def __init__(self, controller: ConnectorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._config = controller.config

        self.mail_to = QLineEdit()
        self.mail_to.setPlaceholderText(self.tr("empty: no alert mail"))
        self.mail_to_error = field_error_label()
        self.mail_from = QLineEdit()
        self.mail_from_error = field_error_label()
        self.desktop = QCheckBox(self.tr("Show alerts as &desktop notifications (tray runner)"))
        self.no_mail = _Threshold(self.tr("An account has received &no mail for"), self.tr(" hours"), 1, 24 * 31,
                                  _DEFAULTS.no_mail_hours)
        self.failed = _Threshold(self.tr("An account has &failed"), self.tr(" cycles in a row"), 1, 1000,
                                 _DEFAULTS.failed_cycles)
        self.quarantine = _Threshold(self.tr("A message has waited in &quarantine for"), self.tr(" hours"), 1,
                                     24 * 31, _DEFAULTS.quarantine_hours)
        self.sign_in = QCheckBox(self.tr("An account needs an OAuth2 &sign-in"))
        self.policy = QCheckBox(self.tr("The local server refuses a recipient for a polic&y reason"))

        where = QGroupBox(self.tr("Where alerts go"))
        form = QFormLayout(where)
        form.addRow(self._label("Send alerts &to:", self.mail_to), self.mail_to)
        form.addRow("", self.mail_to_error)
        form.addRow(self._label("&From:", self.mail_from), self.mail_from)
        form.addRow("", self.mail_from_error)
        form.addRow("", self.desktop)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        for edit in (self.mail_to, self.mail_from):
            edit.setMinimumWidth(360)

        when = QGroupBox(self.tr("Raise an alert when"))
        when_layout = QVBoxLayout(when)
        for widget in (self.failed.row(), self.sign_in, self.no_mail.row(), self.quarantine.row(), self.policy):
            when_layout.addWidget(widget)
        hint = QLabel(self.tr("One alert when a condition starts and one when it ends, to the event log always. "
                              "\"No mail\" counts only the hours of the Scheduling page. Alert mail goes through "
                              "the local mail server of the Delivery page."))
        hint.setWordWrap(True)
        when_layout.addWidget(hint)

        self.active = QTreeWidget()
        self.active.setObjectName("activeAlerts")
        self.active.setHeaderLabels([self.tr("Since"), self.tr("Severity"), self.tr("Account"), self.tr("Alert"),
                                     self.tr("Mailed")])
        self.active.setRootIsDecorated(False)
        self.active.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.active.header().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.active.header().setStretchLastSection(False)
        self.active_note = QLabel()
        self.active_note.setWordWrap(True)
        self.refresh_button = QPushButton(self.tr("Refres&h"))
        self.refresh_button.clicked.connect(self.refresh)
        active_box = QGroupBox(self.tr("Active alerts"))
        active_layout = QVBoxLayout(active_box)
        active_layout.addWidget(self.active)
        bottom = QHBoxLayout()
        bottom.addWidget(self.active_note, 1)
        bottom.addWidget(self.refresh_button)
        active_layout.addLayout(bottom)

        layout = QVBoxLayout(self)
        layout.addWidget(where)
        layout.addWidget(when)
        layout.addWidget(active_box, 1)

        for edit in (self.mail_to, self.mail_from):
            edit.textEdited.connect(self._changed)
        for check in (self.desktop, self.sign_in, self.policy, self.no_mail.check, self.failed.check,
                      self.quarantine.check):
            check.toggled.connect(self._changed)
        for threshold in (self.no_mail, self.failed, self.quarantine):
            threshold.spin.valueChanged.connect(self._changed)
        controller.run_finished.connect(lambda _result: self.refresh())
        self.refresh()

    def _label(self, text: str, buddy: QWidget) -> QLabel:
        label = QLabel(self.tr(text))
        label.setBuddy(buddy)
        return label

    # --- the draft ------------------------------------------------------------------

    def load(self, config: Config) -> None:
        alerts = config.alerts
        self._config = config
        self.mail_to.setText(alerts.mail_to)
        self.mail_from.setText(alerts.mail_from)
        self.desktop.setChecked(alerts.desktop)
        self.no_mail.load(alerts.no_mail_hours)
        self.failed.load(alerts.failed_cycles)
        self.quarantine.load(alerts.quarantine_hours)
        self.sign_in.setChecked(alerts.sign_in)
        self.policy.setChecked(alerts.policy_refusal)
        self._validate()

    def apply(self, config: Config) -> Config:
        return replace(config, alerts=AlertsConfig(
            mail_to=self.mail_to.text().strip(), mail_from=self.mail_from.text().strip(),
            desktop=self.desktop.isChecked(), no_mail_hours=self.no_mail.value(),
            failed_cycles=self.failed.value(), quarantine_hours=self.quarantine.value(),
            sign_in=self.sign_in.isChecked(), policy_refusal=self.policy.isChecked()))

    def problems(self) -> list[str]:
        return [p for p in (self.mail_to_error.text(), self.mail_from_error.text()) if p]

    def draft_changed(self, config: Config) -> None:
        """The sender used when From is empty follows the recipient policies being edited."""
        self._config = config
        self.mail_from.setPlaceholderText(self.tr("empty: {sender}").format(
            sender=alert_sender(replace(config, alerts=replace(config.alerts, mail_from="")))))

    def _changed(self) -> None:
        self._validate()
        self.edited.emit()

    def _validate(self) -> None:
        for edit, label in ((self.mail_to, self.mail_to_error), (self.mail_from, self.mail_from_error)):
            text = edit.text().strip()
            show_error(label, "" if not text or normalize_address(text) else
                       self.tr("\"{text}\" is not an e-mail address.").format(text=text))

    # --- the active alerts --------------------------------------------------------------

    def refresh(self) -> None:
        """Read the active alerts from the health store (written by whichever process runs the cycles)."""
        self.active.clear()
        path = self.controller.paths.health_db
        if not path.exists():
            self.active_note.setText(self.tr("No alert is active: no cycle has run yet."))
            return
        try:
            with HealthStore(path, create=False) as store:
                rows = store.alerts(active_only=True)
        except StateError as exc:
            self.active_note.setText(exc.explain())
            return
        for row in rows:
            self.active.addTopLevelItem(self._item(row))
        for column in (0, 1, 2, 4):
            self.active.resizeColumnToContents(column)
        self.active_note.setText(self.tr("No alert is active.") if not rows else
                                 self.tr("{n} active. `pop3gui status` shows the same from a terminal.").format(
                                     n=len(rows)))

    def _item(self, row: AlertRow) -> QTreeWidgetItem:
        since = datetime.fromtimestamp(row.started_at)
        item = QTreeWidgetItem([f"{since:%Y-%m-%d %H:%M}", row.severity, row.account or self.tr("(local server)"),
                                row.subject.removeprefix("pop3gui: "),
                                self.tr("yes") if row.mailed and self._config.alerts.mail_to else
                                self.tr("no") if self._config.alerts.mail_to else "-"])
        item.setToolTip(3, f"{row.text}\n\n{self.tr('Cause')}: {row.cause}\n{self.tr('Fix')}: {row.fix}")
        return item
