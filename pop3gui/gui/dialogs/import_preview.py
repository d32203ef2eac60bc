"""Import from fetchmail or getmail: pick the kind and the file, see what would be added, OK adds it.

The preview is what ``pop3gui import --dry-run`` prints: the accounts, the
recipient policy and SMTP server the file names, what does not map (with the
file and line), and which passwords go to the keyring.  OK only hands the
:class:`ImportResult` back; the window puts the policies, the SMTP server and
the size limit into its draft, and the Mail Accounts page adds the accounts as
Add… does (their passwords go to the keyring there).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.config.model import Config
from pop3gui.core.errors import ConfigError
from pop3gui.core.migrate import ImportResult, build_config, read_plans

__all__ = ["ImportPreviewDialog"]

_KINDS = (("fetchmailrc", "fetchmail (.fetchmailrc)"), ("getmailrc", "getmail (getmailrc)"))


class ImportPreviewDialog(QDialog):
    """Preview an import against the window's draft configuration."""

    def __init__(self, draft: Config, parent: QWidget | None = None, *, path: str = "") -> None:
        super().__init__(parent)
        self.draft = draft
        self._result: ImportResult | None = None
        self.setWindowTitle(self.tr("Import Accounts"))
        self.resize(720, 560)
        layout = QVBoxLayout(self)
        intro = QLabel(self.tr("Add the mailboxes of a fetchmail or getmail configuration as accounts. Nothing "
                               "is changed until you press OK and then Apply or OK in the window."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.kind = QComboBox()
        for key, label in _KINDS:
            self.kind.addItem(self.tr(label), key)
        form.addRow(self.tr("&Kind of file:"), self.kind)
        row = QHBoxLayout()
        self.path = QLineEdit(path or str(Path("~/.fetchmailrc").expanduser()))
        self.path.setAccessibleName(self.tr("File to import"))
        self.browse = QPushButton(self.tr("&Browse…"))
        row.addWidget(self.path, 1)
        row.addWidget(self.browse)
        file_label = QLabel(self.tr("&File:"))
        file_label.setBuddy(self.path)
        form.addRow(file_label, row)
        layout.addLayout(form)
        self.preview = QTextBrowser()
        self.preview.setAccessibleName(self.tr("What the import adds"))
        self.preview.setOpenLinks(False)
        layout.addWidget(self.preview, 1)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        layout.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.browse.clicked.connect(self._browse)
        self.kind.currentIndexChanged.connect(self.refresh)
        self.path.editingFinished.connect(self.refresh)
        self.refresh()

    def import_result(self) -> ImportResult | None:
        """What OK adds; None when the file could not be read or adds nothing."""
        return self._result

    def set_source(self, kind: str, path: str) -> None:
        self.kind.setCurrentIndex(max(0, self.kind.findData(kind)))
        self.path.setText(path)
        self.refresh()

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, self.tr("Choose the file to import"),
                                                str(Path(self.path.text()).expanduser().parent))
        if chosen:
            self.path.setText(chosen)
            self.refresh()

    def refresh(self) -> None:
        """Read the file again and show what it would add."""
        kind = str(self.kind.currentData())
        path = Path(self.path.text().strip()).expanduser()
        self._result = None
        try:
            result = build_config(read_plans(kind, [path]), self.draft)
        except ConfigError as exc:
            self.preview.setHtml(f"<p style='color:#b00020'><b>{escape(self.tr('Cannot import this file'))}</b>"
                                 f"</p><p>{escape(exc.explain()).replace(chr(10), '<br>')}</p>")
            self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(False)
            return
        self._result = result if result.added else None
        self.preview.setHtml(self._html(result))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(self._result is not None)

    def _html(self, result: ImportResult) -> str:
        parts = [f"<h3>{escape(self.tr('Accounts to add'))} ({len(result.added)})</h3>"]
        if result.added:
            parts.append("<ul>")
            for acc in result.added:
                target = acc.deliver_to if acc.kind == "user" else self.tr("global mailbox")
                state = "" if acc.enabled else f" <i>({escape(self.tr('disabled'))})</i>"
                parts.append(f"<li><b>{escape(acc.name)}</b>: {escape(acc.protocol.upper())} "
                             f"{escape(acc.username)} @ {escape(acc.host)}:{acc.port} ({escape(acc.security)}) "
                             f"&rarr; {escape(target)}{state}</li>")
            parts.append("</ul>")
        else:
            nothing = self.tr("Nothing to add: every mailbox of the file is already an account.")
            parts.append(f"<p>{escape(nothing)}</p>")
        elsewhere = []
        if result.added_policy is not None:
            elsewhere.append(self.tr("Recipient policy for: %1").replace(
                "%1", ", ".join(result.added_policy.domains)))
        if result.smtp_changed:
            elsewhere.append(self.tr("Local mail server (SMTP): %1").replace(
                "%1", f"{result.config.smtp.host}:{result.config.smtp.port}"))
        if elsewhere:
            hint = self.tr("OK puts these on their pages too; they are saved with the accounts' settings (OK or "
                           "Apply in the main window).")
            parts.append(f"<h3>{escape(self.tr('Also in the file'))}</h3><ul>")
            parts.extend(f"<li>{escape(item)}</li>" for item in elsewhere)
            parts.append(f"</ul><p><i>{escape(hint)}</i></p>")
        if result.unmapped:
            parts.append(f"<h3 style='color:#b00020'>{escape(self.tr('Not mapped'))} ({len(result.unmapped)})</h3>"
                         "<ul>")
            for note in result.unmapped:
                parts.append(f"<li>{escape(Path(note.file).name)}:{note.line}: {escape(note.what)}"
                             f"<br><i>{escape(note.fix)}</i></li>")
            parts.append("</ul>")
        info = [n for n in result.notes if not n.unmapped]
        if info:
            parts.append(f"<h3>{escape(self.tr('Notes'))}</h3><ul>")
            parts.extend(f"<li>{escape(Path(n.file).name)}:{n.line}: {escape(n.what)}</li>" for n in info)
            parts.append("</ul>")
        added = {a.name for a in result.added}
        secrets = [s for s in result.secrets if s.account in added or s.smtp_username]
        if secrets:
            parts.append(f"<h3>{escape(self.tr('Passwords that go to the keyring'))}</h3><ul>")
            parts.extend(f"<li>{escape(s.describe())}</li>" for s in secrets)
            warning = self.tr("The file still holds them in plain text: delete it, or remove them, once the "
                              "connector fetches the mail.")
            parts.append(f"</ul><p>{escape(warning)}</p>")
        return "".join(parts)
