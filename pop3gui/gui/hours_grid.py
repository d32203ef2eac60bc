"""The 7 × 24 grid of the hours of the week in which automatic retrieval runs (the SBS connector's).

A painted widget rather than a table view: the whole week must fit on the
Scheduling page at once, and dragging across cells paints them the way the
first cell went.  Keyboard: the arrow keys move a focus cell, Shift+arrows
extend a block from it, Space (or Enter) turns the block on or off; Home/End
go to the first and last hour.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFocusEvent, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from pop3gui.core.schedule import DAY_KEYS, DAY_NAMES, WeekHours

DAYS = 7
HOURS = 24
WORKING_HOURS = WeekHours(tuple(frozenset(range(7, 19)) if day < 5 else frozenset() for day in range(DAYS)))
"""Monday to Friday, 7:00 until 19:00."""

Cell = tuple[int, int]  # (day, hour)


class HoursGrid(QWidget):
    """Which hours of which weekday retrieval may run; emits :attr:`changed` on every edit by the user."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._days: list[set[int]] = [set(range(HOURS)) for _ in range(DAYS)]
        self._focus: Cell = (0, 0)
        self._anchor: Cell | None = None  # the other corner of a Shift+arrow block
        self._painting: bool | None = None  # the state a drag paints, while the button is down
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName(self.tr("Hours of the week to retrieve mail in"))
        self._describe()

    # --- value -------------------------------------------------------------------------

    def hours(self) -> WeekHours:
        return WeekHours(tuple(frozenset(day) for day in self._days))

    def set_hours(self, hours: WeekHours) -> None:
        """Show *hours* (loading the config: no :attr:`changed`)."""
        self._days = [set(day) for day in hours.days]
        self._describe()
        self.update()

    def set_all(self) -> None:
        self._edit(WeekHours())

    def set_working_hours(self) -> None:
        self._edit(WORKING_HOURS)

    def clear(self) -> None:
        self._edit(WeekHours((frozenset(),) * DAYS))

    def is_on(self, day: int, hour: int) -> bool:
        return hour in self._days[day]

    @property
    def focus_cell(self) -> Cell:
        return self._focus

    def _edit(self, hours: WeekHours) -> None:
        if hours != self.hours():
            self.set_hours(hours)
            self.changed.emit()

    def _set_cells(self, cells: list[Cell], on: bool) -> bool:
        """Turn *cells* on or off; whether anything changed."""
        changed = False
        for day, hour in cells:
            if (hour in self._days[day]) != on:
                changed = True
                if on:
                    self._days[day].add(hour)
                else:
                    self._days[day].discard(hour)
        return changed

    def _toggle_group(self, cells: list[Cell]) -> None:
        """All on if any is off, else all off (a day's label, an hour's header, a keyboard block)."""
        on = not all(self.is_on(day, hour) for day, hour in cells)
        if self._set_cells(cells, on):
            self._after_edit()

    def _after_edit(self) -> None:
        self._describe()
        self.update()
        self.changed.emit()

    # --- geometry ----------------------------------------------------------------------

    def _label_width(self) -> int:
        metrics = self.fontMetrics()
        return max(metrics.horizontalAdvance(self._day_label(d)) for d in range(DAYS)) + 12

    def _header_height(self) -> int:
        return self.fontMetrics().height() + 6

    def _cell_height(self) -> int:
        return max(22, self.fontMetrics().height() + 8)

    def _cell_width(self) -> float:
        return max(14.0, (self.width() - self._label_width() - 1) / HOURS)

    def _day_label(self, day: int) -> str:
        return self.tr(DAY_KEYS[day].capitalize())

    def sizeHint(self) -> QSize:
        width = self._label_width() + HOURS * max(26, self.fontMetrics().horizontalAdvance("00") + 10) + 1
        return QSize(width, self._header_height() + DAYS * self._cell_height() + 1)

    def minimumSizeHint(self) -> QSize:
        return QSize(self._label_width() + HOURS * 14 + 1, self.sizeHint().height())

    def cell_rect(self, day: int, hour: int) -> QRect:
        """Where a cell is drawn (tests click its centre)."""
        w = self._cell_width()
        left = self._label_width() + round(hour * w)
        right = self._label_width() + round((hour + 1) * w)
        top = self._header_height() + day * self._cell_height()
        return QRect(left, top, right - left, self._cell_height())

    def day_label_rect(self, day: int) -> QRect:
        return QRect(0, self._header_height() + day * self._cell_height(), self._label_width(), self._cell_height())

    def hour_header_rect(self, hour: int) -> QRect:
        cell = self.cell_rect(0, hour)
        return QRect(cell.left(), 0, cell.width(), self._header_height())

    def _hit(self, point: QPoint) -> tuple[str, int, int]:
        """("cell", day, hour), ("day", day, -1), ("hour", -1, hour) or ("none", -1, -1)."""
        x, y = point.x(), point.y()
        label_w, header_h = self._label_width(), self._header_height()
        hour = int((x - label_w) // self._cell_width()) if x >= label_w else -1
        day = int((y - header_h) // self._cell_height()) if y >= header_h else -1
        in_hours, in_days = 0 <= hour < HOURS, 0 <= day < DAYS
        if x >= label_w and y >= header_h:
            return ("cell", day, hour) if in_hours and in_days else ("none", -1, -1)
        if x < label_w and y >= header_h and in_days:
            return ("day", day, -1)
        if y < header_h and x >= label_w and in_hours:
            return ("hour", -1, hour)
        return ("none", -1, -1)

    # --- mouse -------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self.isEnabled():
            super().mousePressEvent(event)
            return
        kind, day, hour = self._hit(event.position().toPoint())
        if kind == "cell":
            self._focus, self._anchor = (day, hour), None
            self._painting = not self.is_on(day, hour)
            self._set_cells([(day, hour)], self._painting)
            self._after_edit()
        elif kind == "day":
            self._focus, self._anchor = (day, self._focus[1]), None
            self._toggle_group([(day, h) for h in range(HOURS)])
        elif kind == "hour":
            self._focus, self._anchor = (self._focus[0], hour), None
            self._toggle_group([(d, hour) for d in range(DAYS)])
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._painting is None:
            return
        kind, day, hour = self._hit(event.position().toPoint())
        if kind == "cell":
            self._focus = (day, hour)
            if self._set_cells([(day, hour)], self._painting):
                self._after_edit()
            else:
                self.update()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._painting = None
        event.accept()

    # --- keyboard ------------------------------------------------------------------------

    def _block(self) -> list[Cell]:
        """The focus cell, or the block between the anchor and the focus cell."""
        anchor = self._anchor or self._focus
        days = range(min(anchor[0], self._focus[0]), max(anchor[0], self._focus[0]) + 1)
        hours = range(min(anchor[1], self._focus[1]), max(anchor[1], self._focus[1]) + 1)
        return [(d, h) for d in days for h in hours]

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        moves = {Qt.Key.Key_Left: (0, -1), Qt.Key.Key_Right: (0, 1), Qt.Key.Key_Up: (-1, 0),
                 Qt.Key.Key_Down: (1, 0)}
        day, hour = self._focus
        if key in moves or key in (Qt.Key.Key_Home, Qt.Key.Key_End):
            if key == Qt.Key.Key_Home:
                target = (day, 0)
            elif key == Qt.Key.Key_End:
                target = (day, HOURS - 1)
            else:
                dd, dh = moves[Qt.Key(key)]
                target = (min(DAYS - 1, max(0, day + dd)), min(HOURS - 1, max(0, hour + dh)))
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self._anchor = self._anchor or self._focus
            else:
                self._anchor = None
            self._focus = target
            self._describe()
            self.update()
            event.accept()
        elif key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Select):
            self._toggle_group(self._block())
            event.accept()
        elif key == Qt.Key.Key_Escape and self._anchor is not None:
            self._anchor = None
            self.update()
            event.accept()
        else:
            super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        self.update()
        super().focusOutEvent(event)

    def _describe(self) -> None:
        """Screen readers hear the week and the focus cell."""
        day, hour = self._focus
        state = self.tr("on") if self.is_on(day, hour) else self.tr("off")
        self.setAccessibleDescription(self.tr("{week}. {day} {start}:00 to {end}:00: {state}.").format(
            week=self.hours().summary(), day=self.tr(DAY_NAMES[day]), start=hour, end=hour + 1, state=state))

    # --- painting --------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        group = QPalette.ColorGroup.Active if self.isEnabled() else QPalette.ColorGroup.Disabled
        on_color = palette.color(group, QPalette.ColorRole.Highlight)
        if not self.isEnabled():
            on_color = QColor(palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Mid))
        off_color = palette.color(group, QPalette.ColorRole.Base)
        text_color = palette.color(group, QPalette.ColorRole.WindowText)
        line_color = palette.color(group, QPalette.ColorRole.Mid)
        header_h, cell_h = self._header_height(), self._cell_height()

        painter.setPen(text_color)
        # Every hour's number when they fit, else every second or third (a narrow window).
        room = self._cell_width()
        needed = self.fontMetrics().horizontalAdvance("00") + 4
        step = 1 if room >= needed else 2 if 2 * room >= needed else 3
        for hour in range(0, HOURS, step):
            painter.drawText(self.hour_header_rect(hour), Qt.AlignmentFlag.AlignCenter, str(hour))
        for day in range(DAYS):
            painter.drawText(self.day_label_rect(day).adjusted(4, 0, -6, 0),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self._day_label(day))

        for day in range(DAYS):
            for hour in range(HOURS):
                painter.fillRect(self.cell_rect(day, hour), on_color if self.is_on(day, hour) else off_color)

        painter.setPen(QPen(line_color, 1))
        left = self._label_width()
        right = self.cell_rect(0, HOURS - 1).right() + 1
        bottom = header_h + DAYS * cell_h
        for day in range(DAYS + 1):
            y = header_h + day * cell_h
            painter.drawLine(left, y, right, y)
        for hour in range(HOURS + 1):
            x = self.cell_rect(0, hour).left() if hour < HOURS else right
            # Every sixth hour a stronger line, so 6:00, 12:00 and 18:00 are found at a glance.
            painter.setPen(QPen(text_color if hour % 6 == 0 else line_color, 1))
            painter.drawLine(x, header_h, x, bottom)

        if self.hasFocus():
            block = self._block()
            first = self.cell_rect(*min(block))
            last = self.cell_rect(*max(block))
            painter.setPen(QPen(palette.color(group, QPalette.ColorRole.Text), 2,
                                Qt.PenStyle.DashLine if len(block) > 1 else Qt.PenStyle.SolidLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(first.united(last).adjusted(1, 1, -1, -1))
        painter.end()
