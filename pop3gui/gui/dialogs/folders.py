"""The folders an IMAP account fetches from: a list of names with checkboxes.

Before the server was asked, the list holds the account's folders, ticked,
and the admin types others in (**Add**, or Insert; F2 renames one; **Remove**
or Delete drops it).  Once a Test has listed the server's folders
(:meth:`FolderList.show_server_folders`), the list holds every folder of the
server, INBOX first and the others by name, the account's ones ticked; a
ticked folder the server does not have stays at the end with a warning
icon.  The account fetches from the ticked folders.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QIcon, QKeyEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QAbstractItemView,
    QGridLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from pop3gui.core.config.load import check_folder
from pop3gui.gui.icons import icon

__all__ = ["FolderList", "in_order", "same_folder"]

_ON_SERVER = Qt.ItemDataRole.UserRole + 1  # True: the server listed this folder (its name is not edited here)


def in_order(folders: Iterable[str]) -> tuple[str, ...]:
    """INBOX first, then the others by name (servers list them in any order; a subfolder follows its parent)."""
    return tuple(sorted(folders, key=lambda name: (name.upper() != "INBOX", name.casefold(), name)))


def same_folder(a: str, b: str) -> bool:
    """Whether two folder names are one folder: names are exact, except INBOX in any case (RFC 3501)."""
    return a == b or (a.upper() == "INBOX" and b.upper() == "INBOX")


class _FolderView(QListWidget):
    """The list itself: Insert and Delete (while no name is being typed) are the Add and Remove buttons."""

    insert_pressed = Signal()
    delete_pressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Insert and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.insert_pressed.emit()
        elif event.key() == Qt.Key.Key_Delete and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.delete_pressed.emit()
        else:
            super().keyPressEvent(event)


class FolderList(QWidget):
    """The folder names with checkboxes, and the buttons that add and remove names.

    ``changed`` is emitted whenever the ticked folders (or the names) change.
    ``list_button`` (List Server Folders) is connected by the owner, who knows
    how to ask the server.
    """

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._server: tuple[str, ...] = ()
        self._filling = False

        layout = QGridLayout(self)  # the list, and the buttons in a column beside it
        layout.setContentsMargins(0, 0, 0, 0)
        self.list = _FolderView()
        self.list.setAccessibleName(self.tr("Folders to fetch mail from"))
        self.list.setToolTip(self.tr("Mail is fetched from the ticked folders. Space ticks, F2 renames, Insert adds "
                                     "a folder, Delete removes one."))
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked
                                  | QAbstractItemView.EditTrigger.EditKeyPressed)
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(1)
        self.list.setFixedHeight(self._height_of_rows(5))
        layout.addWidget(self.list, 0, 0, 4, 1, Qt.AlignmentFlag.AlignTop)  # first: Tab reaches it before the buttons

        self.add_button = QPushButton(icon("add"), self.tr("Add"))
        self.add_button.setAccessibleName(self.tr("Add folder"))
        self.add_button.setToolTip(self.tr("Type the name of a folder to fetch from (Insert)."))
        self.remove_button = QPushButton(icon("remove"), self.tr("Remove"))
        self.remove_button.setAccessibleName(self.tr("Remove folder"))
        self.list_button = QPushButton(icon("test"), self.tr("List Server Folders"))
        self.list_button.setToolTip(self.tr("Log in to the IMAP server, as the Test does, and list its folders "
                                            "here; nothing is changed on the server."))
        for row, button in enumerate((self.add_button, self.remove_button, self.list_button)):
            button.setAutoDefault(False)
            layout.addWidget(button, row, 1)
        layout.setRowStretch(3, 1)
        layout.setColumnStretch(0, 1)

        self.add_button.clicked.connect(self.add_folder)
        self.remove_button.clicked.connect(self.remove_selected)
        self.list.itemChanged.connect(self._item_changed)
        self.list.currentItemChanged.connect(self._update_buttons)
        self.list.itemDelegate().closeEditor.connect(self._editor_closed)
        self.list.insert_pressed.connect(self.add_folder)
        self.list.delete_pressed.connect(self.remove_selected)
        self._update_buttons()

    def _height_of_rows(self, rows: int) -> int:
        """The list's height that shows *rows* whole rows with checkboxes (measured on a row, or a sample one)."""
        sample = None
        if not self.list.count():
            sample = QListWidgetItem("INBOX")
            sample.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            sample.setCheckState(Qt.CheckState.Checked)
            self.list.addItem(sample)
        row = self.list.sizeHintForRow(0)
        if sample is not None:
            self.list.takeItem(0)
        spacing = self.list.spacing()
        return rows * (row + 2 * spacing) + 2 * self.list.frameWidth()  # spacing is around each row

    def showEvent(self, event: QShowEvent) -> None:
        """Measure the rows again once the style and font are the ones shown."""
        super().showEvent(event)
        self.list.setFixedHeight(self._height_of_rows(5))

    # --- what is shown ------------------------------------------------------------------

    def set_folders(self, folders: Iterable[str]) -> None:
        """The account's folders, ticked (the server's are not known yet)."""
        self._server = ()
        self._fill([(name, True, False) for name in folders])

    def show_server_folders(self, server: Iterable[str]) -> None:
        """The server's folders (INBOX first, then by name), the ones ticked now still ticked; unknown ticked ones
        at the end."""
        self._server = in_order(server)
        ticked = self.folders()
        rows = [(name, any(same_folder(name, t) for t in ticked), True) for name in self._server]
        rows += [(name, True, False) for name in ticked if not any(same_folder(name, s) for s in self._server)]
        self._fill(rows)

    def server_folders(self) -> tuple[str, ...]:
        """The folders the server listed at the last Test (none before one)."""
        return self._server

    def _fill(self, rows: Iterable[tuple[str, bool, bool]]) -> None:
        self._filling = True
        try:
            self.list.clear()
            for name, ticked, on_server in rows:
                self._append(name, ticked, on_server)
        finally:
            self._filling = False
        if self.list.count():  # the keyboard starts at the top; nothing looks selected yet
            self.list.setCurrentRow(0, QItemSelectionModel.SelectionFlag.NoUpdate)
        self._update_buttons()
        self.changed.emit()

    def _append(self, name: str, ticked: bool, on_server: bool) -> QListWidgetItem:
        item = QListWidgetItem(name)
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsUserCheckable
        if not on_server:
            flags |= Qt.ItemFlag.ItemIsEditable
        item.setFlags(flags)
        item.setData(_ON_SERVER, on_server)
        item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self.list.addItem(item)
        self._mark(item)
        return item

    def _mark(self, item: QListWidgetItem) -> None:
        """A folder typed in while the server's list is known, and not on it, gets a warning."""
        unknown = bool(self._server) and not item.data(_ON_SERVER) and bool(item.text())
        item.setIcon(icon("warning") if unknown else QIcon())
        item.setToolTip(self.tr("The server did not list this folder: check its name.") if unknown else "")

    # --- editing ------------------------------------------------------------------------

    def add_folder(self) -> QListWidgetItem:
        """A new, ticked name, being typed in (an empty name goes away when typing ends)."""
        self._filling = True
        try:
            item = self._append("", True, False)
        finally:
            self._filling = False
        self.list.setCurrentItem(item)
        self.list.setFocus()
        self.list.editItem(item)
        return item

    def remove_selected(self) -> None:
        """Drop the selected name (a folder the server listed is unticked instead: it stays on the server)."""
        item = self.list.currentItem()
        if item is None:
            return
        if item.data(_ON_SERVER):
            item.setCheckState(Qt.CheckState.Unchecked)
            return
        self.list.takeItem(self.list.row(item))
        self._update_buttons()
        self.changed.emit()

    def _editor_closed(self, _editor: QWidget, _hint: QAbstractItemDelegate.EndEditHint) -> None:
        for row in reversed(range(self.list.count())):
            item = self.list.item(row)
            if not item.text().strip() and not item.data(_ON_SERVER):
                self.list.takeItem(row)
        self._update_buttons()
        self.changed.emit()

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        self._filling = True
        try:
            self._mark(item)
        finally:
            self._filling = False
        self.changed.emit()

    def _update_buttons(self, *_args: object) -> None:
        item = self.list.currentItem()
        self.remove_button.setEnabled(item is not None)
        self.remove_button.setToolTip(
            self.tr("The server's folders stay on the server: Remove unticks it.") if item is not None
            and item.data(_ON_SERVER) else self.tr("Remove the selected folder from the list (Delete)."))

    # --- results ------------------------------------------------------------------------

    def folders(self) -> tuple[str, ...]:
        """The ticked folders, in the list's order."""
        return tuple(item.text() for item in self._items() if item.checkState() == Qt.CheckState.Checked
                     and item.text().strip())

    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(row) for row in range(self.list.count())]

    def problem(self) -> str:
        """Why the ticked folders cannot be saved ('' when they can)."""
        folders = self.folders()
        if not folders:
            return self.tr("Tick at least one folder to fetch mail from.")
        for name in folders:
            if check_folder(name):
                return self.tr("Not a usable folder name: %1 (a name holds no line break and is at most 512 "
                               "bytes long).").replace("%1", name)
        for i, name in enumerate(folders):
            if any(same_folder(name, other) or name.casefold() == other.casefold() for other in folders[:i]):
                return self.tr("%1 is in the list twice.").replace("%1", name)
        return ""
