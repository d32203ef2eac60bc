"""The account dialog's Delivery and Options groups: routing rules edited with their button, what each applies."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pop3gui.core.config.model import AccountConfig, RoutingRuleConfig
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.gui.dialogs.account import AccountDialog
from pop3gui.gui.dialogs.delivery_section import DeliverySection, OptionsSection
from pop3gui.gui.dialogs.routing import RoutingRulesDialog

OFFICE = AccountConfig(name="Office", host="pop3.isp.example", username="office", kind="global",
                       leave_on_server=True, delete_after_days=14)
SALES = RoutingRuleConfig(account="Office", contains="sales@", deliver_to="sales@contoso.com")
SUPPORT = RoutingRuleConfig(account="Office", contains="[Support]", deliver_to="help@contoso.com", field="subject")
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


def rules_dialog(owner: Any) -> RoutingRulesDialog:
    found = [w for w in QApplication.topLevelWidgets() if isinstance(w, RoutingRulesDialog) and w.parent() is owner]
    assert len(found) == 1
    return found[0]


def test_routing_rules_button_edits_the_rules_under_the_name_typed(qtbot: Any) -> None:
    dlg = AccountDialog(OFFICE, rules=[SALES], local_domains=["contoso.com"])
    qtbot.addWidget(dlg)
    assert dlg.rules_summary.text() == "1 routing rule"
    dlg.name_edit.setText("Head Office")

    qtbot.mouseClick(dlg.rules_button, Qt.MouseButton.LeftButton)
    editor = rules_dialog(dlg)
    qtbot.addWidget(editor)
    qtbot.mouseClick(editor.add_button, Qt.MouseButton.LeftButton)
    editor.contains_edit.setText("[Support]")
    editor.deliver_edit.setText("help@contoso.com")
    editor.field_combo.setCurrentIndex(editor.field_combo.findData("subject"))
    assert editor.ok_button.isEnabled()
    editor.accept()

    assert dlg.rules_summary.text() == "2 routing rules"
    assert [(r.account, r.contains) for r in dlg.routing_rules()] == [("Head Office", "sales@"),
                                                                      ("Head Office", "[Support]")]
    dlg.kind_combo.setCurrentIndex(dlg.kind_combo.findData("user"))
    assert dlg.routing_rules() == []  # a user mailbox has no rules


def test_cancelled_rules_editor_changes_nothing(qtbot: Any) -> None:
    section = DeliverySection(OFFICE, local_domains=LocalDomains(["contoso.com"]), rules=[SALES, SUPPORT],
                              rules_name=lambda: "Office")
    qtbot.addWidget(section)
    assert section.rules_summary.text() == "2 routing rules"
    section.edit_rules()
    editor = rules_dialog(section.window())
    qtbot.addWidget(editor)
    editor.table.selectRow(0)
    qtbot.mouseClick(editor.remove_button, Qt.MouseButton.LeftButton)
    editor.reject()
    assert section.rules_summary.text() == "2 routing rules"
    assert section.routing_rules("Office") == [SALES, SUPPORT]


def test_delivery_applies_only_the_fields_of_the_mailbox_type(qtbot: Any) -> None:
    section = DeliverySection(OFFICE, local_domains=LocalDomains(["contoso.com"]))
    qtbot.addWidget(section)
    section.headers_edit.setText("Delivered-To,X-Original-To")
    section.deliver_edit.setText("typed@contoso.com")  # hidden for a global mailbox: not saved
    section.validate()
    assert section.headers_error.text() == ""
    applied = section.apply_to(OFFICE)
    assert applied.kind == "global" and applied.deliver_to == ""
    assert applied.envelope_headers == ("Delivered-To", "X-Original-To")

    section.kind_combo.setCurrentIndex(section.kind_combo.findData("user"))
    section.headers_edit.setText("Not:a header")
    section.validate()
    assert section.headers_error.text() == ""  # not checked while hidden
    applied = section.apply_to(OFFICE)
    assert applied.kind == "user" and applied.deliver_to == "typed@contoso.com"
    assert applied.envelope_headers == OFFICE.envelope_headers  # kept for when it is global again

    section.deliver_edit.setText("someone@fabrikam.com")
    section.validate()
    assert section.deliver_error.text() == ""
    assert "fabrikam.com" in section.deliver_warning.text()  # valid, but outside the policies


def test_options_follow_what_becomes_of_delivered_mail(qtbot: Any) -> None:
    options = OptionsSection(OFFICE)
    qtbot.addWidget(options)
    assert options.delete_days_spin.isEnabled() and options.delete_days_label.text().strip().startswith("Delete")

    options.set_after_delivery("move")
    assert "folder" in options.leave_check.text() and "Move" in options.delete_days_label.text()
    options.set_after_delivery("keep")
    assert not options.leave_check.isEnabled() and not options.delete_days_spin.isEnabled()
    assert options.leave_check.toolTip()
    options.set_after_delivery("delete")
    assert options.leave_check.isEnabled() and options.delete_days_spin.isEnabled()
    assert options.leave_check.toolTip() == ""

    assert options.apply_to(OFFICE).delete_after_days == 14
    options.leave_check.setChecked(False)
    assert not options.delete_days_spin.isEnabled()
    applied = options.apply_to(OFFICE)
    assert not applied.leave_on_server and applied.delete_after_days == 0  # no days without a copy kept
