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

from pop3gui.core.config import Config
from pop3gui.gui.controller import ConnectorController
from pop3gui.gui.tabs.base import ConfigTab


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
