"""Where an account's mail goes (the Delivery group) and when it leaves the server (the Options group).

A user mailbox delivers everything to one local address (**Deliver to**);
an address outside the recipient policies' domains is valid but gets an
amber warning, as the local server will likely refuse it.  A global
(catch-all) mailbox finds each message's recipients in the envelope headers
the ISP writes, and its **Routing Rules…** send what those do not cover.
The Options say whether delivered mail stays on the server and for how
long; for an IMAP account that moves delivered mail, the same fields say
when it is moved, and with Keep on the server they do not apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from pop3gui.core.config.model import AccountConfig, RoutingRuleConfig
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.gui.dialogs.fields import address_problem, buddy, field_warning_label, policy_warning, with_messages
from pop3gui.gui.icons import icon
from pop3gui.gui.tabs.base import field_error_label, show_error

if TYPE_CHECKING:
    from pop3gui.gui.dialogs.routing import RoutingRulesDialog

__all__ = ["DeliverySection", "OptionsSection"]

_HEADER_CHARS = frozenset(chr(c) for c in range(33, 127)) - {":"}


def _blank() -> AccountConfig:
    return AccountConfig(name="", host="", username="")


class DeliverySection(QGroupBox):
    """The "Delivery" group of the account dialog: mailbox type, Deliver to, envelope headers, routing rules.

    ``local_domains`` are the recipient policies' domains (for the warning
    under Deliver to); ``rules`` this account's routing rules, edited with
    **Routing Rules…** under the name ``rules_name()`` returns.  ``changed``
    is emitted whenever what the dialog checks changed (a field was typed
    in, or the mailbox type chosen: other rows then show).
    """

    changed = Signal()

    def __init__(self, account: AccountConfig | None, *, local_domains: LocalDomains,
                 rules: Sequence[RoutingRuleConfig] = (), rules_name: Callable[[], str] = lambda: "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Delivery"))
        self._local_domains = local_domains
        self._rules = list(rules)
        self._rules_name = rules_name
        self._build()
        self._fill(account)
        self._connect()

    def _build(self) -> None:
        form = QFormLayout(self)
        self.kind_combo = QComboBox()
        self.kind_combo.addItem(icon("user"), self.tr("User mailbox (one recipient)"), "user")
        self.kind_combo.addItem(icon("global"), self.tr("Global mailbox (catch-all)"), "global")
        form.addRow(buddy(self.tr("&Mailbox type:"), self.kind_combo), self.kind_combo)
        self.deliver_edit = QLineEdit()
        self.deliver_edit.setPlaceholderText(self.tr("someone@your-domain"))
        self.deliver_error = field_error_label()
        self.deliver_warning = field_warning_label()
        self.deliver_label = buddy(self.tr("&Deliver to:"), self.deliver_edit)
        self.deliver_row = with_messages(self.deliver_edit, self.deliver_error, self.deliver_warning)
        form.addRow(self.deliver_label, self.deliver_row)
        self.headers_edit = QLineEdit()
        self.headers_edit.setToolTip(self.tr("The headers in which the ISP writes the envelope recipient, "
                                             "separated by commas; when none is present, To and Cc are used."))
        self.headers_error = field_error_label()
        self.headers_label = buddy(self.tr("&Envelope headers:"), self.headers_edit)
        self.rules_button = QPushButton(icon("edit"), self.tr("&Routing Rules…"))
        self.rules_button.setAutoDefault(False)
        self.rules_summary = QLabel()
        rules_line = QWidget()
        line = QHBoxLayout(rules_line)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(self.rules_button)
        line.addWidget(self.rules_summary, 1)
        self.headers_row = with_messages(self.headers_edit, self.headers_error, rules_line)
        form.addRow(self.headers_label, self.headers_row)

    def _fill(self, account: AccountConfig | None) -> None:
        acc = account or _blank()
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(acc.kind)))
        self.deliver_edit.setText(acc.deliver_to)
        self.headers_edit.setText(", ".join(acc.envelope_headers))
        self._update_kind()
        self._update_rules_summary()

    def _connect(self) -> None:
        self.deliver_edit.textChanged.connect(self.changed)
        self.headers_edit.textChanged.connect(self.changed)
        self.kind_combo.currentIndexChanged.connect(self._update_kind)
        self.kind_combo.currentIndexChanged.connect(self.changed)
        self.rules_button.clicked.connect(self.edit_rules)

    # --- behaviour ----------------------------------------------------------------

    def is_global(self) -> bool:
        return bool(self.kind_combo.currentData() == "global")

    def _update_kind(self) -> None:
        """A user mailbox has an address to deliver to; a global one, envelope headers and routing rules."""
        is_global = self.is_global()
        self.deliver_label.setVisible(not is_global)
        self.deliver_row.setVisible(not is_global)
        self.headers_label.setVisible(is_global)
        self.headers_row.setVisible(is_global)
        self.rules_button.setVisible(is_global)

    def envelope_headers(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.headers_edit.text().split(",") if part.strip())

    def edit_rules(self) -> None:
        """Open the routing rules dialog (Routing Rules…); the rules change when it is accepted."""
        from pop3gui.gui.dialogs.routing import RoutingRulesDialog

        dialog = RoutingRulesDialog(self._rules_name(), self._rules, local_domains=self._local_domains,
                                    parent=self.window())
        dialog.accepted.connect(lambda: self._rules_edited(dialog))
        dialog.open()

    def _rules_edited(self, dialog: RoutingRulesDialog) -> None:
        self._rules = dialog.rules()
        self._update_rules_summary()

    def _update_rules_summary(self) -> None:
        count = len(self._rules)
        self.rules_summary.setText(self.tr("No routing rules") if count == 0 else
                                   self.tr("1 routing rule") if count == 1 else
                                   self.tr("%1 routing rules").replace("%1", str(count)))

    # --- checks and results -------------------------------------------------------------

    def validate(self) -> None:
        """Check the rows of the mailbox type shown (the hidden ones carry no message)."""
        if self.is_global():
            show_error(self.deliver_error, "")
            show_error(self.deliver_warning, "")
            show_error(self.headers_error, self._headers_problem())
        else:
            show_error(self.headers_error, "")
            problem = address_problem(self, self.deliver_edit.text())
            show_error(self.deliver_error, problem)
            show_error(self.deliver_warning,
                       "" if problem else policy_warning(self, self.deliver_edit.text(), self._local_domains))

    def _headers_problem(self) -> str:
        text = self.headers_edit.text()
        parts = [p.strip() for p in text.split(",")]
        if text.strip() and not all(parts):
            return self.tr("Separate header names with single commas.")
        bad = [p for p in parts if p and not set(p) <= _HEADER_CHARS]
        return self.tr("Not a header name: %1").replace("%1", bad[0]) if bad else ""

    def error_labels(self) -> list[QLabel]:
        return [self.deliver_error, self.headers_error]

    def apply_to(self, account: AccountConfig) -> AccountConfig:
        """*account* with where its mail goes, as entered (a user mailbox keeps its envelope headers)."""
        is_global = self.is_global()
        return replace(account, kind="global" if is_global else "user",
                       deliver_to="" if is_global else self.deliver_edit.text().strip(),
                       envelope_headers=self.envelope_headers() if is_global else account.envelope_headers)

    def routing_rules(self, account: str) -> list[RoutingRuleConfig]:
        """The rules as edited, under the name *account* (a user mailbox has none)."""
        return [replace(r, account=account) for r in self._rules] if self.is_global() else []


class OptionsSection(QGroupBox):
    """The "Options" group of the account dialog: leave a copy on the server, for how long, enabled.

    The account dialog says what becomes of delivered mail
    (:meth:`set_after_delivery`): for a POP3 account it is always deleted.
    """

    def __init__(self, account: AccountConfig | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Options"))
        self._after = "delete"
        self._build()
        self._fill(account)
        self.leave_check.toggled.connect(self._update_leave)

    def _build(self) -> None:
        form = QFormLayout(self)
        self.leave_check = QCheckBox(self.tr("&Leave a copy of the messages on the server"))
        form.addRow(self.leave_check)
        self.delete_days_spin = QSpinBox()
        self.delete_days_spin.setRange(0, 36500)
        self.delete_days_spin.setSpecialValueText(self.tr("never"))
        self.delete_days_spin.setSuffix(self.tr(" days"))
        self.delete_days_label = buddy(self.tr("   Delete from the server &after:"), self.delete_days_spin)
        form.addRow(self.delete_days_label, self.delete_days_spin)
        self.enabled_check = QCheckBox(self.tr("Ena&bled (retrieve mail from this account)"))
        form.addRow(self.enabled_check)

    def _fill(self, account: AccountConfig | None) -> None:
        acc = account or _blank()
        self.leave_check.setChecked(acc.leave_on_server)
        self.delete_days_spin.setValue(acc.delete_after_days)
        self.enabled_check.setChecked(acc.enabled)
        self._update_leave()

    def set_after_delivery(self, after: str) -> None:
        """What becomes of delivered mail: delete, move (IMAP) or keep (IMAP: then nothing leaves the server)."""
        self._after = after
        self._update_leave()

    def _update_leave(self) -> None:
        """The options say *when* handled mail leaves the server; for IMAP, after delivery says how (or never)."""
        if self._after == "move":
            self.leave_check.setText(self.tr("&Leave delivered messages in their folder for a while"))
            self.delete_days_label.setText(self.tr("   Move them to the folder &after:"))
        else:
            self.leave_check.setText(self.tr("&Leave a copy of the messages on the server"))
            self.delete_days_label.setText(self.tr("   Delete from the server &after:"))
        kept = self._after == "keep"
        self.leave_check.setEnabled(not kept)
        self.leave_check.setToolTip(self.tr("After delivery is Keep on the server: delivered mail is never "
                                            "deleted or moved.") if kept else "")
        self.delete_days_spin.setEnabled(self.leave_check.isChecked() and not kept)
        self.delete_days_label.setEnabled(self.leave_check.isChecked() and not kept)

    def apply_to(self, account: AccountConfig) -> AccountConfig:
        """*account* with the options as entered (no days without a copy left on the server)."""
        leave = self.leave_check.isChecked()
        return replace(account, leave_on_server=leave, delete_after_days=self.delete_days_spin.value() if leave else 0,
                       enabled=self.enabled_check.isChecked())
