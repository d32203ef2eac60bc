"""What the Test of an account found, under the accounts table of the Mail Accounts page.

A summary line ("everything works", or how many problems) and one entry per
finding, each with its cause and fix.  The two widgets take their places in
the page's own layout; :class:`FindingsView` fills them.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QAbstractItemView, QLabel, QListWidget, QListWidgetItem

from pop3gui.core.engine.findings import Finding
from pop3gui.gui.icons import icon

__all__ = ["FindingsView"]


class FindingsView(QObject):
    """The Test's summary line (``status_label``) and its findings (``findings_list``), hidden until a Test."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.hide()
        self.findings_list = QListWidget()
        self.findings_list.setWordWrap(True)
        self.findings_list.setAccessibleName(self.tr("Test results"))
        self.findings_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.findings_list.hide()

    def begin(self, account: str) -> None:
        """The Test of *account* started: say so, and clear the last findings."""
        self.status_label.setText(self.tr("Testing %1…").replace("%1", account))
        self.status_label.show()
        self.findings_list.clear()
        self.findings_list.hide()

    def show_findings(self, account: str, findings: Sequence[Finding]) -> None:
        """The Test of *account* ended with *findings* (none: it did not finish)."""
        problems = sum(1 for f in findings if not f.ok)
        if not findings:
            summary = self.tr("The test of %1 did not finish.").replace("%1", account)
        elif problems:
            summary = (self.tr("Test of %1: %2 problem(s) found.").replace("%1", account)
                       .replace("%2", str(problems)))
        else:
            summary = self.tr("Test of %1: everything works.").replace("%1", account)
        self.status_label.setText(summary)
        self.status_label.show()
        self.findings_list.clear()
        for finding in findings:
            lines = [f"{finding.subject}: {finding.text}" if finding.subject else finding.text]
            if finding.cause:
                lines.append(self.tr("Cause: %1").replace("%1", finding.cause))
            if finding.fix:
                lines.append(self.tr("Fix: %1").replace("%1", finding.fix))
            item = QListWidgetItem(icon("ok" if finding.ok else "error"), "\n".join(lines))
            item.setData(Qt.ItemDataRole.UserRole, finding)
            self.findings_list.addItem(item)
        self.findings_list.setVisible(bool(findings))

    def lines(self) -> list[str]:
        """The text shown, one entry per finding."""
        return [self.findings_list.item(i).text() for i in range(self.findings_list.count())]
