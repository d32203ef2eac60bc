"""Recipient Policies: the local domains, and live warnings for what they miss.

This page is the KB article's fix made visible: every account, routing rule
or undeliverable address whose domain no policy covers is listed with the
explanation and a one-click "Add domain X to policy Y".
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.model import Config, RecipientPolicy
from pop3gui.core.config.policies import PolicyWarning, policy_warnings
from pop3gui.core.mail.addresses import normalize_domain
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.base import ConfigTab, field_error_label, show_error

KB_EXPLANATION = (
    "The local mail server accepts mail only for the domains of its recipient policies "
    "(accepted domains). Mail for any other domain is refused with \"550 5.7.1 Unable to relay\" "
    "— the failure that made the Small Business Server POP3 Connector lose mail silently."
)


class PoliciesTab(ConfigTab):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._policies: list[RecipientPolicy] = []

        self.policy_list = QListWidget()
        self.policy_list.setAccessibleName(self.tr("Recipient policies"))
        self.policy_list.currentRowChanged.connect(self._show_policy)
        self.add_policy_button = QPushButton(self.tr("&New Policy"))
        self.add_policy_button.clicked.connect(self._new_policy)
        self.remove_policy_button = QPushButton(self.tr("Remo&ve Policy"))
        self.remove_policy_button.clicked.connect(self._remove_policy)

        self.name_edit = QLineEdit()
        name_label = QLabel(self.tr("Policy &name:"))
        name_label.setBuddy(self.name_edit)
        self.name_edit.textEdited.connect(self._rename_policy)

        self.domain_list = QListWidget()
        self.domain_list.setAccessibleName(self.tr("Domains of the selected policy"))
        domains_label = QLabel(self.tr("Do&mains (the primary one in bold):"))
        domains_label.setBuddy(self.domain_list)
        self.domain_edit = QLineEdit()
        self.domain_edit.setPlaceholderText(self.tr("example.com"))
        self.domain_edit.textChanged.connect(self._validate_domain)
        self.domain_edit.returnPressed.connect(self._add_domain)
        add_label = QLabel(self.tr("&Add domain:"))
        add_label.setBuddy(self.domain_edit)
        self.domain_error = field_error_label()
        self.add_domain_button = QPushButton(self.tr("A&dd"))
        self.add_domain_button.clicked.connect(self._add_domain)
        self.remove_domain_button = QPushButton(self.tr("&Remove Domain"))
        self.remove_domain_button.clicked.connect(self._remove_domain)
        self.primary_button = QPushButton(self.tr("Set as &Primary"))
        self.primary_button.clicked.connect(self._set_primary)

        left = QVBoxLayout()
        left.addWidget(QLabel(self.tr("Policies:")))
        left.addWidget(self.policy_list)
        row = QHBoxLayout()
        row.addWidget(self.add_policy_button)
        row.addWidget(self.remove_policy_button)
        left.addLayout(row)

        right = QVBoxLayout()
        right.addWidget(name_label)
        right.addWidget(self.name_edit)
        right.addWidget(domains_label)
        right.addWidget(self.domain_list)
        row = QHBoxLayout()
        row.addWidget(self.remove_domain_button)
        row.addWidget(self.primary_button)
        row.addStretch()
        right.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(add_label)
        row.addWidget(self.domain_edit, 1)
        row.addWidget(self.add_domain_button)
        right.addLayout(row)
        right.addWidget(self.domain_error)

        top = QHBoxLayout()
        top.addLayout(left, 1)
        top.addLayout(right, 2)

        self.warnings_box = QGroupBox(self.tr("Addresses no policy covers"))
        self.warnings_layout = QVBoxLayout(self.warnings_box)
        self.all_clear = QLabel(self.tr("Every account, routing rule and the undeliverable mailbox is in a "
                                        "local domain."))
        self.all_clear.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addLayout(top, 1)
        layout.addWidget(self.warnings_box)
        self.fix_buttons: list[QPushButton] = []
        self._draft: Config = Config()

    # --- ConfigTab ----------------------------------------------------------------

    def load(self, config: Config) -> None:
        self._policies = list(config.policies)
        self._refresh_list(0 if self._policies else -1)

    def apply(self, config: Config) -> Config:
        return replace(config, policies=tuple(self._policies))

    def problems(self) -> list[str]:
        out = []
        for p in self._policies:
            if not p.domains:
                out.append(self.tr("Policy \"{name}\" has no domain.").format(name=p.name))
            if not p.name.strip():
                out.append(self.tr("A policy has no name."))
        return out

    def draft_changed(self, config: Config) -> None:
        self._draft = config
        self._show_warnings(policy_warnings(config))

    # --- warnings and their fixes ----------------------------------------------

    def _show_warnings(self, warnings: list[PolicyWarning]) -> None:
        while self.warnings_layout.count():
            item = self.warnings_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None and widget is not self.all_clear:
                widget.deleteLater()
        self.fix_buttons = []
        if not warnings:
            self.warnings_layout.addWidget(self.all_clear)
            self.all_clear.show()
            self.warnings_box.setTitle(self.tr("Addresses no policy covers"))
            return
        self.all_clear.hide()
        self.warnings_box.setTitle(self.tr("Addresses no policy covers ({count})").format(count=len(warnings)))
        explanation = QLabel(self.tr(KB_EXPLANATION))
        explanation.setWordWrap(True)
        self.warnings_layout.addWidget(explanation)
        by_domain: dict[str, list[PolicyWarning]] = {}
        for warning in warnings:
            by_domain.setdefault(warning.domain.lower(), []).append(warning)
        for group in by_domain.values():
            domain = group[0].domain
            row = QWidget()
            line = QHBoxLayout(row)
            line.setContentsMargins(0, 0, 0, 0)
            badge = QLabel()
            badge.setPixmap(icon("warning").pixmap(16, 16))
            where = "; ".join(self.tr("{where} is {address}").format(where=w.where, address=w.address)
                              for w in group)
            text = QLabel(self.tr("{where}: no recipient policy covers {domain}.").format(where=where,
                                                                                        domain=domain))
            text.setWordWrap(True)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            target = self._fix_target()
            label = (self.tr("Add {domain} to policy \"{policy}\"").format(domain=domain, policy=target.name)
                     if target else self.tr("Create a policy with {domain}").format(domain=domain))
            fix = QPushButton(label)
            fix.clicked.connect(lambda _=False, d=domain: self.add_domain_to_policy(d))
            self.fix_buttons.append(fix)
            line.addWidget(badge)
            line.addWidget(text, 1)
            line.addWidget(fix)
            self.warnings_layout.addWidget(row)

    def _fix_target(self) -> RecipientPolicy | None:
        row = self.policy_list.currentRow()
        if 0 <= row < len(self._policies):
            return self._policies[row]
        return self._policies[0] if self._policies else None

    def add_domain_to_policy(self, domain: str, policy_index: int | None = None) -> None:
        """The one-click fix: put ``domain`` into the selected (or first) policy, or a new one."""
        if not self._policies:
            self._policies.append(RecipientPolicy(self.tr("Default Policy"), (domain,), domain))
            index = 0
        else:
            index = policy_index if policy_index is not None else max(self.policy_list.currentRow(), 0)
            policy = self._policies[index]
            if normalize_domain(domain) not in {normalize_domain(d) for d in policy.domains}:
                self._policies[index] = replace(policy, domains=policy.domains + (domain,),
                                                primary=policy.primary or domain)
        self._refresh_list(index)
        self.edited.emit()

    # --- editing ----------------------------------------------------------------

    def _refresh_list(self, select: int) -> None:
        self.policy_list.blockSignals(True)
        self.policy_list.clear()
        for policy in self._policies:
            self.policy_list.addItem(policy.name)
        self.policy_list.blockSignals(False)
        if 0 <= select < len(self._policies):
            self.policy_list.setCurrentRow(select)
        self._show_policy(self.policy_list.currentRow())

    def _show_policy(self, row: int) -> None:
        has = 0 <= row < len(self._policies)
        for widget in (self.name_edit, self.domain_list, self.domain_edit, self.add_domain_button,
                       self.remove_domain_button, self.primary_button, self.remove_policy_button):
            widget.setEnabled(has)
        self.domain_list.clear()
        if not has:
            self.name_edit.clear()
            return
        policy = self._policies[row]
        if self.name_edit.text() != policy.name:
            self.name_edit.setText(policy.name)
        bold = QFont()
        bold.setBold(True)
        for domain in policy.domains:
            item = QListWidgetItem(domain)
            if domain == policy.primary:
                item.setFont(bold)
                item.setToolTip(self.tr("Primary domain"))
            self.domain_list.addItem(item)

    def _current(self) -> int:
        return self.policy_list.currentRow()

    def _new_policy(self) -> None:
        self._policies.append(RecipientPolicy(self.tr("New Policy {n}").format(n=len(self._policies) + 1), ()))
        self._refresh_list(len(self._policies) - 1)
        self.name_edit.setFocus()
        self.edited.emit()

    def _remove_policy(self) -> None:
        row = self._current()
        if 0 <= row < len(self._policies):
            del self._policies[row]
            self._refresh_list(min(row, len(self._policies) - 1))
            self.edited.emit()

    def _rename_policy(self, name: str) -> None:
        row = self._current()
        if 0 <= row < len(self._policies):
            self._policies[row] = replace(self._policies[row], name=name)
            item = self.policy_list.item(row)
            if item is not None:
                item.setText(name)
            self.edited.emit()

    def _validate_domain(self, text: str) -> bool:
        text = text.strip()
        if not text:
            show_error(self.domain_error, "")
            self.add_domain_button.setEnabled(False)
            return False
        ok = normalize_domain(text) is not None
        show_error(self.domain_error, "" if ok else self.tr("\"{text}\" is not a domain name (for example "
                                                               "contoso.com).").format(text=text))
        self.add_domain_button.setEnabled(ok)
        return ok

    def _add_domain(self) -> None:
        if self._validate_domain(self.domain_edit.text()):
            self.add_domain_to_policy(self.domain_edit.text().strip(), self._current())
            self.domain_edit.clear()

    def _remove_domain(self) -> None:
        row, item = self._current(), self.domain_list.currentItem()
        if item is None or not 0 <= row < len(self._policies):
            return
        policy = self._policies[row]
        domains = tuple(d for d in policy.domains if d != item.text())
        primary = policy.primary if policy.primary in domains else (domains[0] if domains else "")
        self._policies[row] = replace(policy, domains=domains, primary=primary)
        self._show_policy(row)
        self.edited.emit()

    def _set_primary(self) -> None:
        row, item = self._current(), self.domain_list.currentItem()
        if item is not None and 0 <= row < len(self._policies):
            self._policies[row] = replace(self._policies[row], primary=item.text())
            self._show_policy(row)
            self.edited.emit()
