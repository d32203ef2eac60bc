"""The routing rules of one global mailbox: "To/Cc contains X" -> a local address.

The table lists the rules; the fields under it edit the selected one and are
checked as they are typed.  A rule with a problem shows an error icon in the
table, and OK stays disabled until every rule is valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.model import RoutingRuleConfig
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.mail.routing import RULE_FIELDS
from pop3gui.gui.dialogs.fields import address_problem, buddy, field_warning_label, policy_warning, with_messages
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.base import field_error_label, show_error


@dataclass
class _Rule:
    field: str
    contains: str
    deliver_to: str


class RoutingRulesDialog(QDialog):
    """Edit the rules of global mailbox ``account``; ``rules()`` after OK."""

    def __init__(self, account: str, rules: Sequence[RoutingRuleConfig] = (), *,
                 local_domains: Iterable[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._account = account
        self._local_domains = LocalDomains(local_domains, skip_invalid=True)
        self._rules = [_Rule(r.field, r.contains, r.deliver_to) for r in rules]
        self.setWindowTitle(self.tr("Routing Rules for %1").replace("%1", account or self.tr("new account")))
        self._build()
        self._fill_table()
        self.table.selectRow(0) if self._rules else self._show_current()
        self._update_ok()

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        intro = QLabel(self.tr("Mail of this global mailbox whose header contains the text goes to the local "
                               "address, in addition to the recipients found in its envelope headers."))
        intro.setWordWrap(True)
        outer.addWidget(intro)

        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels([self.tr("Field"), self.tr("Contains"), self.tr("Deliver to")])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setAccessibleName(self.tr("Routing rules"))
        self.table.setTabKeyNavigation(False)
        rules_label = buddy(self.tr("R&ules:"), self.table)
        outer.addWidget(rules_label)
        outer.addWidget(self.table, 1)

        buttons = QHBoxLayout()
        self.add_button = QPushButton(icon("add"), self.tr("&Add"))
        self.add_button.setAccessibleName(self.tr("Add rule"))
        self.remove_button = QPushButton(icon("remove"), self.tr("Re&move"))
        self.remove_button.setAccessibleName(self.tr("Remove rule"))
        for button in (self.add_button, self.remove_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        buttons.addStretch(1)
        outer.addLayout(buttons)

        self.editor = QGroupBox(self.tr("Selected rule"))
        form = QFormLayout(self.editor)
        self.field_combo = QComboBox()
        labels = {"to-cc": self.tr("To or Cc"), "subject": self.tr("Subject")}
        for key in RULE_FIELDS:
            self.field_combo.addItem(labels.get(key, key), key)
        form.addRow(buddy(self.tr("&Field:"), self.field_combo), self.field_combo)
        self.contains_edit = QLineEdit()
        self.contains_edit.setPlaceholderText(self.tr("e.g. sales@ or [Support]"))
        self.contains_error = field_error_label()
        form.addRow(buddy(self.tr("&Contains:"), self.contains_edit),
                    with_messages(self.contains_edit, self.contains_error))
        self.deliver_edit = QLineEdit()
        self.deliver_edit.setPlaceholderText(self.tr("someone@your-domain"))
        self.deliver_error = field_error_label()
        self.deliver_warning = field_warning_label()
        form.addRow(buddy(self.tr("&Deliver to:"), self.deliver_edit),
                    with_messages(self.deliver_edit, self.deliver_error, self.deliver_warning))
        outer.addWidget(self.editor)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setDefault(True)
        outer.addWidget(self.buttons)

        self.table.itemSelectionChanged.connect(self._show_current)
        self.add_button.clicked.connect(self.add_rule)
        self.remove_button.clicked.connect(self.remove_rule)
        self.field_combo.currentIndexChanged.connect(self._edited)
        self.contains_edit.textChanged.connect(self._edited)
        self.deliver_edit.textChanged.connect(self._edited)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.resize(560, 420)

    # --- table ------------------------------------------------------------------

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self._rules))
        for row in range(len(self._rules)):
            self._fill_row(row)

    def _fill_row(self, row: int) -> None:
        rule = self._rules[row]
        texts = (self.field_combo.itemText(max(0, self.field_combo.findData(rule.field))), rule.contains,
                 rule.deliver_to)
        for column, text in enumerate(texts):
            item = self.table.item(row, column)
            if item is None:
                item = QTableWidgetItem()
                self.table.setItem(row, column, item)
            item.setText(text)
        problems = self._rule_problems(rule)
        first = self.table.item(row, 0)
        assert first is not None
        first.setIcon(icon("error") if problems else icon("ok"))
        first.setToolTip("\n".join(problems))

    def current_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def _show_current(self) -> None:
        row = self.current_row()
        self.editor.setEnabled(row >= 0)
        self.remove_button.setEnabled(row >= 0)
        rule = self._rules[row] if row >= 0 else _Rule("to-cc", "", "")
        with QSignalBlocker(self.field_combo), QSignalBlocker(self.contains_edit), QSignalBlocker(self.deliver_edit):
            self.field_combo.setCurrentIndex(max(0, self.field_combo.findData(rule.field)))
            self.contains_edit.setText(rule.contains)
            self.deliver_edit.setText(rule.deliver_to)
        self._show_messages(rule if row >= 0 else None)

    def _edited(self) -> None:
        row = self.current_row()
        if row < 0:
            return
        rule = self._rules[row]
        rule.field = self.field_combo.currentData()
        rule.contains = self.contains_edit.text()
        rule.deliver_to = self.deliver_edit.text()
        self._fill_row(row)
        self._show_messages(rule)
        self._update_ok()

    def _show_messages(self, rule: _Rule | None) -> None:
        if rule is None:
            for label in (self.contains_error, self.deliver_error, self.deliver_warning):
                show_error(label, "")
            return
        show_error(self.contains_error, self._contains_problem(rule))
        problem = address_problem(self, rule.deliver_to)
        show_error(self.deliver_error, problem)
        show_error(self.deliver_warning, "" if problem else policy_warning(self, rule.deliver_to,
                                                                           self._local_domains))

    def _contains_problem(self, rule: _Rule) -> str:
        return self.tr("Enter the text to look for.") if not rule.contains.strip() else ""

    def _rule_problems(self, rule: _Rule) -> list[str]:
        return [p for p in (self._contains_problem(rule), address_problem(self, rule.deliver_to)) if p]

    def _update_ok(self) -> None:
        self.ok_button.setEnabled(not self.problems())

    # --- actions ------------------------------------------------------------------

    def add_rule(self) -> None:
        self._rules.append(_Rule("to-cc", "", ""))
        row = len(self._rules) - 1
        with QSignalBlocker(self.table):
            self.table.setRowCount(len(self._rules))
            self._fill_row(row)
            self.table.selectRow(row)
        self._show_current()
        self._update_ok()
        self.contains_edit.setFocus()

    def remove_rule(self) -> None:
        row = self.current_row()
        if row < 0:
            return
        del self._rules[row]
        with QSignalBlocker(self.table):
            self.table.removeRow(row)
            if self._rules:
                self.table.selectRow(min(row, len(self._rules) - 1))
        self._show_current()
        self._update_ok()

    def problems(self) -> list[str]:
        """One line per invalid rule, e.g. 'Rule 2: Enter the text to look for.'."""
        out = []
        for i, rule in enumerate(self._rules):
            for problem in self._rule_problems(rule):
                out.append(self.tr("Rule %1: %2").replace("%1", str(i + 1)).replace("%2", problem))
        return out

    def rules(self) -> list[RoutingRuleConfig]:
        return [RoutingRuleConfig(account=self._account, contains=r.contains.strip(),
                                  deliver_to=r.deliver_to.strip(), field=r.field) for r in self._rules]

    def accept(self) -> None:
        if self.problems():
            return
        super().accept()


__all__ = ["RoutingRulesDialog"]
