"""Scheduling: how often to retrieve, Retrieve Now, and when the next run is."""

from __future__ import annotations

from dataclasses import replace

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
from pop3gui.gui.controller import ConnectorController
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
        self.state = QLabel()

        box = QGroupBox(self.tr("Automatic retrieval"))
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow(self.enabled_box)
        form.addRow(interval_label, self.interval)
        note = QLabel(self.tr("Changes to the schedule take effect when you press Apply or OK."))
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
        status_form.addRow(self.tr("Next run:"), self.next_run)
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
        self.interval.setEnabled(config.schedule.enabled)

    def apply(self, config: Config) -> Config:
        return replace(config, schedule=replace(config.schedule, enabled=self.enabled_box.isChecked(),
                                                interval_min=self.interval.value()))

    def _changed(self) -> None:
        self.interval.setEnabled(self.enabled_box.isChecked())
        self.edited.emit()

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
        at = self.controller.next_run_at
        if self.controller.paused:
            self.next_run.setText(self.tr("paused"))
        else:
            self.next_run.setText(at.strftime("%H:%M") if at else self.tr("not scheduled (automatic retrieval "
                                                                          "is off)"))
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
