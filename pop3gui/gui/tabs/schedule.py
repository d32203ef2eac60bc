"""Scheduling: how often to retrieve, in which hours of the week, Retrieve Now, and when the next run is."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pop3gui.core.desktop import autostart
from pop3gui.core.config.model import Config
from pop3gui.core.schedule import moment_text
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.hours_grid import HoursGrid
from pop3gui.gui.tabs.base import ConfigTab, field_error_label, show_error


class ScheduleTab(ConfigTab):
    def __init__(self, controller: ConnectorController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.enabled_box = QCheckBox(self.tr("&Retrieve mail automatically"))
        self.enabled_box.toggled.connect(self._changed)
        self.interval = QSpinBox()
        self.interval.setRange(1, 1440)
        self.interval.setSuffix(self.tr(" minutes"))
        self.interval.setAccessibleName(self.tr("Retrieval interval in minutes"))
        self.interval.valueChanged.connect(self._changed)
        interval_label = QLabel(self.tr("Retrieve &every:"))
        interval_label.setBuddy(self.interval)
        self.retrieve_button = QPushButton(self.tr("Retrieve &Now"))
        self.retrieve_button.clicked.connect(self.retrieve_now)
        self.next_run = QLabel()
        self.next_run.setAccessibleName(self.tr("Next run"))
        self.state = QLabel()

        self.grid = HoursGrid()
        self.grid.changed.connect(self._grid_changed)
        grid_label = QLabel(self.tr("Retrieve in these &hours (local time; click or drag across the cells, "
                                    "click a day or an hour to switch it all):"))
        grid_label.setWordWrap(True)
        grid_label.setBuddy(self.grid)
        self.all_button = QPushButton(self.tr("&All hours"))
        self.all_button.clicked.connect(self.grid.set_all)
        self.working_button = QPushButton(self.tr("&Working hours (Mon–Fri 7–19)"))
        self.working_button.clicked.connect(self.grid.set_working_hours)
        self.clear_button = QPushButton(self.tr("C&lear"))
        self.clear_button.clicked.connect(self.grid.clear)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName(self.tr("Chosen hours"))

        box = QGroupBox(self.tr("Automatic retrieval"))
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow(self.enabled_box)
        form.addRow(interval_label, self.interval)
        form.addRow(grid_label)
        form.addRow(self.grid)
        presets = QHBoxLayout()
        for button in (self.all_button, self.working_button, self.clear_button):
            presets.addWidget(button)
        presets.addStretch()
        form.addRow(presets)
        form.addRow(self.summary)
        form.addRow(self.tr("Next run:"), self.next_run)
        note = QLabel(self.tr("Changes to the schedule take effect when you press Apply or OK. "
                              "Retrieve Now always runs, in any hour."))
        note.setWordWrap(True)
        form.addRow(note)

        session = QGroupBox(self.tr("Desktop session"))
        session_layout = QVBoxLayout(session)
        self.autostart_box = QCheckBox(self.tr("Start with my desktop &session (in the system tray)"))
        self.autostart_box.setToolTip(self.tr("Runs `pop3gui tray` when you log in. This is a setting of your "
                                              "desktop account, applied at once; it is not part of the "
                                              "configuration file."))
        self.autostart_box.setChecked(autostart.autostart_enabled())
        self.autostart_box.toggled.connect(self._autostart_toggled)
        self.autostart_error = field_error_label()
        session_layout.addWidget(self.autostart_box)
        session_layout.addWidget(self.autostart_error)

        status = QGroupBox(self.tr("Status"))
        status_form = QFormLayout(status)
        status_form.addRow(self.tr("Last run:"), self.state)
        buttons = QHBoxLayout()
        buttons.addWidget(self.retrieve_button)
        buttons.addStretch()
        status_form.addRow(buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(box)
        layout.addWidget(session)
        layout.addWidget(status)
        layout.addStretch()

        controller.schedule_changed.connect(self._refresh_status)
        controller.run_started.connect(self._refresh_status)
        controller.run_finished.connect(self._refresh_status)
        self._refresh_status()

    def load(self, config: Config) -> None:
        self.enabled_box.setChecked(config.schedule.enabled)
        self.interval.setValue(config.schedule.interval_min)
        self.grid.set_hours(config.schedule.hours)
        self._enable(config.schedule.enabled)
        self._show_summary()

    def apply(self, config: Config) -> Config:
        return replace(config, schedule=replace(config.schedule, enabled=self.enabled_box.isChecked(),
                                                interval_min=self.interval.value(), hours=self.grid.hours()))

    def _enable(self, on: bool) -> None:
        for widget in (self.interval, self.grid, self.all_button, self.working_button, self.clear_button):
            widget.setEnabled(on)

    def _changed(self) -> None:
        self._enable(self.enabled_box.isChecked())
        self.edited.emit()

    def _grid_changed(self) -> None:
        self._show_summary()
        self.edited.emit()

    def _show_summary(self) -> None:
        self.summary.setText(self.tr("Chosen hours: {summary}").format(summary=self.grid.hours().summary()))

    def _autostart_toggled(self, on: bool) -> None:
        """Write or remove the autostart entry now (per-user desktop state, not the draft config)."""
        try:
            if on:
                autostart.enable_autostart()
            else:
                autostart.disable_autostart()
        except OSError as exc:
            where = getattr(exc, "filename", None) or autostart.autostart_location()
            show_error(self.autostart_error, self.tr(
                "Could not {action} the autostart entry {where}: {error}.\nCause: the folder is not writable "
                "or a file is in the way.\nFix: check the permissions of that folder (it belongs to your "
                "user), then try again.").format(action=self.tr("write") if on else self.tr("remove"),
                                                  where=where, error=exc.strerror or exc))
            self.autostart_box.blockSignals(True)
            self.autostart_box.setChecked(autostart.autostart_enabled())
            self.autostart_box.blockSignals(False)
            return
        show_error(self.autostart_error, "")

    def retrieve_now(self) -> None:
        self.controller.retrieve_now()
        self._refresh_status()

    def _refresh_status(self, *_: object) -> None:
        running = self.controller.running
        self.retrieve_button.setEnabled(not running)
        self.next_run.setText(self.next_run_text())
        if running:
            self.state.setText(self.tr("retrieving mail…"))
        elif self.controller.last_run_at is None:
            self.state.setText(self.tr("no run yet in this session"))
        else:
            result = self.controller.last_result
            outcome = (self.tr("finished") if result is not None and result.exit_code == 0
                       else self.tr("finished with problems (see Events)"))
            self.state.setText(self.tr("last run at {time}: {outcome}").format(
                time=self.controller.last_run_at.strftime("%H:%M"), outcome=outcome))

    def next_run_text(self) -> str:
        """When the saved schedule runs next: a time today, a day and time later, or why not at all."""
        c = self.controller
        at = c.next_run_at
        if c.paused:
            return self.tr("paused")
        if not c.config.schedule.enabled:
            return self.tr("not scheduled (automatic retrieval is off)")
        if at is None:
            return self.tr("not scheduled: no hour chosen")
        text = moment_text(at, c.now())
        if not c.config.schedule.hours.is_open(at - timedelta(minutes=1)):
            text += self.tr(" (when the chosen hours begin)")
        return text
