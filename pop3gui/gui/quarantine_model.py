"""A table over the quarantine folder: one row per kept message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from pop3gui.core.state.spool import Quarantine, QuarantineRecord

RecordRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


class QuarantineModel(QAbstractTableModel):
    HEADERS = ("Date", "Account", "From", "Subject", "Reason")

    def __init__(self, quarantine: Quarantine, parent: Any = None) -> None:
        super().__init__(parent)
        self.quarantine = quarantine
        self._records: list[QuarantineRecord] = []
        self.refresh()

    def refresh(self) -> None:
        self.beginResetModel()
        self._records = sorted(self.quarantine.records(), key=lambda r: r.quarantined_at, reverse=True)
        self.endResetModel()

    def record(self, row: int) -> QuarantineRecord:
        return self._records[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.HEADERS):
            return self.tr(self.HEADERS[section])
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._records):
            return None
        record = self._records[index.row()]
        if role == RecordRole:
            return record
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{record.reason}\n\nCause: {record.cause}\nFix: {record.fix}"
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        column = index.column()
        if column == 0:
            return datetime.fromtimestamp(record.quarantined_at).strftime("%Y-%m-%d %H:%M")
        return (record.account, record.sender, record.subject, record.reason)[column - 1]
