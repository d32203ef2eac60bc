"""The GUI's handle on the engine: saved config, runs on the Qt loop, the schedule.

Widgets never call the core directly for anything that takes time; they ask
the controller, which runs it as an asyncio task on the qasync loop (or in a
worker thread for blocking calls such as the keyring) and reports through
signals.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from PySide6.QtCore import QObject, QTimer, Signal

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.config.save import save_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.errors import Pop3guiError, StateError
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.recorder import EventRecorder
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.failures import Failure
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.state.paths import Paths
from pop3gui.core.engine.preflight import Finding, check_account, probe_targets
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import CycleResult
from pop3gui.gui.bridge import EngineBridge

log = logging.getLogger(__name__)


class ConnectorController(QObject):
    run_started = Signal()
    run_finished = Signal(object)  # CycleResult, or None when the run could not start
    config_saved = Signal(object)  # Config
    schedule_changed = Signal()

    def __init__(self, paths: Paths, config: Config, *, credentials: Credentials | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths = paths
        self.config = config
        self.credentials = credentials or Credentials()
        self._recorder = EventRecorder(paths, config.logging.level)
        self.bus = self._recorder.bus
        self.store = self._recorder.store
        self.bridge = EngineBridge(self)  # events and account status, as signals
        self.bus.subscribe(self.bridge)
        self.last_result: CycleResult | None = None
        self.last_run_at: datetime | None = None
        self.next_run_at: datetime | None = None
        self.paused = False
        self._task: asyncio.Task[CycleResult | None] | None = None
        self._held_lock: RunnerLock | None = None
        self._connector: Connector | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.retrieve_now)
        self._reschedule()

    # --- config ---------------------------------------------------------------

    def save(self, config: Config) -> None:
        """Write the whole file (validated, atomic) and use it from the next run on."""
        save_config(config, self.paths.config_file)
        self.config = config
        self.config_saved.emit(config)
        self._reschedule()

    # --- schedule -------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._reschedule()

    def _reschedule(self) -> None:
        self._timer.stop()
        schedule = self.config.schedule
        if schedule.enabled and not self.paused:
            self._timer.start(schedule.interval_min * 60_000)
            self.next_run_at = datetime.now() + timedelta(minutes=schedule.interval_min)
        else:
            self.next_run_at = None
        self.schedule_changed.emit()

    # --- runs -----------------------------------------------------------------

    def hold_runner_lock(self) -> None:
        """Keep the state folder's runner lock for the controller's lifetime (the tray runner).

        Otherwise each run takes it for its own duration only, so a ``pop3gui
        run`` beside an open window still works between runs.  Raises
        StateError naming the other runner's pid.
        """
        lock = RunnerLock(self.paths.lock_file)
        lock.acquire()
        self._held_lock = lock

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def retrieve_now(self) -> asyncio.Task[CycleResult | None] | None:
        """Start a cycle now unless one is running; returns its task."""
        if self.running:
            return self._task
        self._task = asyncio.ensure_future(self._run())
        return self._task

    async def _run(self) -> CycleResult | None:
        self.run_started.emit()
        result: CycleResult | None = None
        lock = RunnerLock(self.paths.lock_file)
        try:
            if self._held_lock is None:
                lock.acquire()
        except StateError as exc:
            self._emit_error(exc, EventId.RUNNER_BUSY, Failure.RUNNER_BUSY)
            self.run_finished.emit(None)
            self._reschedule()
            return None
        try:
            connector = Connector(self.config, self.paths, self.bus, credentials=self.credentials,
                                  observer=self.bridge)
            self._connector = connector
            try:
                result = await connector.run_cycle()
            finally:
                connector.close()
                self._connector = None
        except Pop3guiError as exc:  # the state folder cannot be opened (journal, spool)
            self._emit_error(exc, EventId.SPOOL_FAILED)
        finally:
            lock.release()
            self.last_result = result
            self.last_run_at = datetime.now()
            self.run_finished.emit(result)
            self._reschedule()
        return result

    def _emit_error(self, exc: Pop3guiError, event_id: EventId, diagnosis: Failure | None = None) -> None:
        self.bus.emit(Event(id=event_id, severity=Severity.ERROR, text=str(exc), cause=exc.cause, fix=exc.fix,
                            diagnosis=diagnosis or exc.failure))

    async def stop(self) -> None:
        """Finish the message in flight, QUIT, and wait for the run to end."""
        if self._connector is not None:
            self._connector.request_stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    # --- one-off actions --------------------------------------------------------

    async def test_account(self, account: AccountConfig) -> list[Finding]:
        """The Test button: log in (STAT, CAPA, UIDL) and RCPT-probe the account's local target."""
        sign_ins = SignIns(self.credentials, self.paths.sign_in_locks)
        findings = [await check_account(account, self.credentials, config=self.config, sign_ins=sign_ins)]
        just_this_account = Config(smtp=self.config.smtp, delivery=self.config.delivery,
                                   policies=self.config.policies, accounts=(account,),
                                   rules=self.config.rules_for(account.name),
                                   oauth_providers=self.config.oauth_providers)
        findings.extend(await probe_targets(just_this_account, self.credentials, sign_ins=sign_ins))
        return findings

    async def resubmit(self, record_id: str) -> str:
        """Run resolution and submission again for a quarantined message."""
        connector = Connector(self.config, self.paths, self.bus, credentials=self.credentials,
                              observer=self.bridge)
        try:
            return await connector.resubmit(record_id)
        finally:
            connector.close()

    def close(self) -> None:
        self._timer.stop()
        if self._held_lock is not None:
            self._held_lock.release()
            self._held_lock = None
        self._recorder.close()
