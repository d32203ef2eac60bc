"""Form rows shared by the dialogs: a field with its messages, and the address checks.

An error under a field blocks OK; an amber warning only advises (an address
outside the local domains is valid, but the local server will likely refuse it).
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from pop3gui.core.mail.addresses import domain_of, normalize_address
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.gui.account_model import policy_warning_text

__all__ = ["address_problem", "buddy", "field_warning_label", "policy_warning", "with_messages"]


def field_warning_label() -> QLabel:
    """An amber, word-wrapped label for advice that does not block OK."""
    label = QLabel()
    label.setObjectName("fieldWarning")
    label.setStyleSheet("color: #8a5a00;")
    label.setWordWrap(True)
    label.hide()
    return label


def with_messages(field: QWidget, *labels: QWidget) -> QWidget:
    """The field with its message label(s) underneath, as one form row."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    layout.addWidget(field)
    for label in labels:
        layout.addWidget(label)
    return box


def buddy(text: str, field: QWidget) -> QLabel:
    """A form label whose mnemonic (&X) focuses *field*."""
    label = QLabel(text)
    label.setBuddy(field)
    return label


def address_problem(obj: QWidget, text: str, *, required: bool = True) -> str:
    """Why ``text`` is not a usable e-mail address ('' when it is)."""
    if not text.strip():
        return obj.tr("Enter the local address that receives this mailbox's mail.") if required else ""
    if normalize_address(text.strip()) is None:
        return obj.tr("This is not an e-mail address (expected name@domain).")
    return ""


def policy_warning(obj: QWidget, address: str, local_domains: LocalDomains) -> str:
    """The 'no recipient policy covers' warning for a valid address outside the local domains.

    Without any policy there is nothing to compare with, so no warning.
    """
    address = address.strip()
    if not local_domains or normalize_address(address) is None:
        return ""
    domain = domain_of(address)
    if domain in local_domains:
        return ""
    return policy_warning_text(obj, domain)
