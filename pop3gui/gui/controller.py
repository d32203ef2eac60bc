"""The GUI's handle on the engine: saved config, runs on the Qt loop, the schedule.

Widgets never call the core directly for anything that takes time; they ask
the controller, which runs it as an asyncio task on the qasync loop (or in a
worker thread for blocking calls such as the keyring) and reports through
signals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject, QTimer, Signal

from pop3gui.core.config.model import AccountConfig, Config, OAuthProviderConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.errors import Pop3guiError, StateError
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.recorder import EventRecorder
from pop3gui.core.oauth.endpoints import SMTP, mailbox_purpose
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import SignIn, sign_in_key
from pop3gui.core.failures import Failure
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.health.monitor import record_plan
from pop3gui.core.schedule import next_run
from pop3gui.core.state.paths import Paths
from pop3gui.core.engine.findings import Finding
from pop3gui.core.engine.preflight import check_account, probe_targets
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.push import PushWatchers, push_folders
from pop3gui.core.engine.report import Reporter
from pop3gui.core.engine.status import CycleResult
from pop3gui.core.threads import in_lookup_thread
from pop3gui.gui.bridge import EngineBridge

log = logging.getLogger(__name__)

TIMER_STEP_MS = 60_000  # the schedule's timer looks at the wall clock at least this often


class ConnectorController(QObject):
    run_started = Signal()
    run_finished = Signal(object)  # CycleResult, or None when the run could not start
    config_saved = Signal(object)  # Config
    schedule_changed = Signal()

    def __init__(self, paths: Paths, config: Config, *, credentials: Credentials | None = None,
                 now: Callable[[], datetime] = datetime.now, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.now = now  # local wall-clock time, for the hours of the schedule (the Connector's too)
        self.paths = paths
        self.config = config
        self.credentials = credentials or Credentials()
        self._recorder = EventRecorder(paths, config.logging.level)
        self.bus = self._recorder.bus
        self.store = self._recorder.store
        self.bridge = EngineBridge(self)  # events and account status, as signals
        self.bus.subscribe(self.bridge)
        # One set of OAuth2 sign-ins for runs, tests and the account dialogs: access tokens stay in memory
        # between them, and refreshes of one sign-in take turns (with other processes too, by lock file).
        self.sign_ins = SignIns(self.credentials, paths.sign_in_locks)
        self.last_result: CycleResult | None = None
        self.last_run_at: datetime | None = None
        self.next_run_at: datetime | None = None
        self.paused = False
        self._task: asyncio.Task[CycleResult | None] | None = None
        self._held_lock: RunnerLock | None = None
        self._connector: Connector | None = None
        # The schedule's timer looks at the wall clock at least every minute, so a changed clock, DST
        # or the hours of the week opening are noticed; it starts the run when its moment has come.
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.check_schedule)
        self._push: PushWatchers | None = None  # the tray runner's IMAP IDLE watchers
        self._stopping_push: set[asyncio.Future[None]] = set()
        self._stopped = False
        self._pushed: set[str] = set()  # accounts with announced mail, waiting for the run in flight
        self._reschedule()

    # --- config ---------------------------------------------------------------

    def save(self, config: Config) -> None:
        """Write the whole file (validated, atomic) and use it from the next run on."""
        save_config(config, self.paths.config_file)
        self.config = config
        self.config_saved.emit(config)
        self._reschedule()
        self._restart_push()

    # --- schedule -------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._reschedule()
        self._restart_push()

    def start_schedule(self) -> None:
        """Run at once if the hours of the week allow it, else at their next open hour (the runner's start)."""
        self._reschedule(start=True)
        self.check_schedule()

    def _reschedule(self, *, start: bool = False) -> None:
        """Plan the next scheduled run: an interval on (or now, at *start*), moved into the chosen hours."""
        schedule = self.config.schedule
        if schedule.enabled and not self.paused:
            now = self.now()
            self.next_run_at = (schedule.hours.next_open(now) if start
                                else next_run(schedule.hours, now, schedule.interval_min))
        else:
            self.next_run_at = None
        self._arm_timer()
        self._plan_changed()

    def _plan_changed(self) -> None:
        """Tell the window, and as the tray runner ``pop3gui status`` too, when the next run is."""
        if self._held_lock is not None:  # a window beside a headless runner must not overwrite its plan
            if self.paused:
                note = "the schedule is paused"
            elif not self.config.schedule.enabled:
                note = "automatic retrieval is turned off ([schedule] enabled = false)"
            else:
                note = "" if self.next_run_at is not None else "no hour of the week is chosen"
            record_plan(self.paths, self.next_run_at, self.now(), note)
        self.schedule_changed.emit()

    def _arm_timer(self) -> None:
        """Wake at the next run or the next open hour, in steps of at most a minute."""
        self._timer.stop()
        schedule = self.config.schedule
        if self._stopped or not schedule.enabled or self.paused:
            return
        targets = [t for t in (self.next_run_at, schedule.hours.next_open(self.now()) if self._pushed else None)
                   if t is not None]
        if not targets and schedule.hours.never:
            return  # nothing can ever be due until the hours change (which reschedules)
        left_ms = min([TIMER_STEP_MS, *((t - self.now()).total_seconds() * 1000 for t in targets)])
        self._timer.start(max(0, int(left_ms)))

    def check_schedule(self) -> None:
        """What the timer does: start the scheduled run or the kept pushes when their moment has come."""
        schedule = self.config.schedule
        if self._stopped or not schedule.enabled or self.paused:
            return
        now = self.now()
        if not self.running:
            due = self.next_run_at
            if due is not None and now >= due:
                if schedule.hours.is_open(now):
                    self.retrieve_now()
                    return
                # The clock moved past the run into closed hours: wait for the next open one.
                self.next_run_at = schedule.hours.next_open(now)
                self._plan_changed()
            elif self._pushed and schedule.hours.is_open(now):
                self.retrieve_now(only=self._take_pushed())
                return
        self._arm_timer()

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
        self._plan_changed()
        self._restart_push()

    # --- push (IMAP IDLE) -------------------------------------------------------

    def _restart_push(self) -> None:
        """The runner listens for new IMAP mail while it runs on a schedule; settings changes restart it."""
        if self._push is None and (self._held_lock is None or not push_folders(self.config)):
            return
        old, self._push = self._push, None
        if old is not None:
            stopping = asyncio.ensure_future(old.stop())
            self._stopping_push.add(stopping)
            stopping.add_done_callback(self._stopping_push.discard)
        if self._held_lock is None or self.paused or not self.config.schedule.enabled:
            return
        self._push = PushWatchers(self.config, credentials=self.credentials, sign_ins=self.sign_ins,
                                  report=Reporter(self.bus, debug=self.config.logging.level == "debug"),
                                  on_mail=self._push_arrived)
        self._push.start()

    def _push_arrived(self, account: str) -> None:
        """New mail announced for *account*: run it now, right after the run in flight, or in the next open hour."""
        self._pushed.add(account)
        if self.running:
            return
        if self.config.schedule.hours.is_open(self.now()):
            self.retrieve_now(only=self._take_pushed())
        else:
            self._arm_timer()

    def _take_pushed(self) -> set[str]:
        pushed, self._pushed = self._pushed, set()
        return pushed

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def retrieve_now(self, only: set[str] | None = None) -> asyncio.Task[CycleResult | None] | None:
        """Start a cycle now unless one is running (of the accounts in *only*: a push); returns its task.

        Once :meth:`stop` has begun, no new run starts.
        """
        if self.running or self._stopped:
            return self._task
        if only is None:
            self._pushed.clear()  # the whole cycle covers them
        self._task = asyncio.ensure_future(self._run(only))
        return self._task

    async def _run(self, only: set[str] | None = None) -> CycleResult | None:
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
                                  observer=self.bridge, sign_ins=self.sign_ins)
            connector.now = self.now
            self._connector = connector
            if self._stopped:  # stop() came while this run was starting
                connector.request_stop()
            try:
                result = await connector.run_cycle(only)
            finally:
                connector.close()
                self._connector = None
        except Pop3guiError as exc:  # the state folder cannot be opened (journal, spool)
            self._emit_error(exc, EventId.SPOOL_FAILED)
        finally:
            lock.release()
            self.last_result = result
            self.last_run_at = self.now()
            self.run_finished.emit(result)
            if only is None:
                self._reschedule()
            else:
                self._arm_timer()
            if self._pushed:  # mail announced during this run: now if the hours allow, else when they do
                asyncio.get_running_loop().call_soon(self.check_schedule)
        return result

    def _emit_error(self, exc: Pop3guiError, event_id: EventId, diagnosis: Failure | None = None) -> None:
        self.bus.emit(Event(id=event_id, severity=Severity.ERROR, text=str(exc), cause=exc.cause, fix=exc.fix,
                            diagnosis=diagnosis or exc.failure))

    async def stop(self) -> None:
        """Finish the message in flight, QUIT, and wait for the run (and the IDLE watchers) to end."""
        self._stopped = True  # a push announced now, or one waiting for the run in flight, starts no run
        self._pushed.clear()
        self._timer.stop()
        if self._connector is not None:
            self._connector.request_stop()
        push, self._push = self._push, None
        if push is not None:
            await push.stop()
        if self._stopping_push:
            await asyncio.gather(*self._stopping_push, return_exceptions=True)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    # --- one-off actions --------------------------------------------------------

    async def test_account(self, account: AccountConfig, *,
                           providers: tuple[OAuthProviderConfig, ...] | None = None) -> list[Finding]:
        """The Test button: log in (STAT, CAPA, UIDL) and RCPT-probe the account's local target.

        *providers* are the OAuth2 providers as being edited (the saved ones when None): an account
        that signs in with a provider added in the properties window is tested before it is saved.
        """
        providers = self.config.oauth_providers if providers is None else providers
        just_this_account = Config(smtp=self.config.smtp, delivery=self.config.delivery,
                                   policies=self.config.policies, accounts=(account,),
                                   rules=self.config.rules_for(account.name), oauth_providers=providers)
        if account.auth == "oauth2" and all(p.name != account.oauth_provider for p in providers):
            return [Finding(False, f"account '{account.name}'",
                            f"no OAuth2 provider called {account.oauth_provider!r} is set up",
                            "The account signs in with OAuth2 through a provider that is not configured.",
                            "Choose or add the provider in the account's properties.")]
        findings = [await check_account(account, self.credentials, config=just_this_account,
                                        sign_ins=self.sign_ins)]
        findings.extend(await probe_targets(just_this_account, self.credentials, sign_ins=self.sign_ins))
        return findings

    # --- OAuth2 sign-ins ------------------------------------------------------------

    @staticmethod
    def sign_in_key(who: str) -> str:
        """The keyring name of a sign-in: *who* is an account name, or already a key (``account:``/``smtp:``)."""
        return who if who.startswith(("account:", "smtp:")) else sign_in_key(who)

    async def sign_in(self, who: str, provider: OAuthProviderConfig, open_page: Callable[[str], object], *,
                      protocol: str = "") -> SignIn:
        """Sign *who* (an account name or a sign-in key) in with *provider* in the browser.

        *open_page* shows the provider's sign-in page (the desktop's browser, or a test); the sign-in
        is kept in the keyring.  *protocol* ("pop3"/"imap") is the account's, when the dialog knows it
        better than the saved settings.  Cancel the task to stop waiting for the browser.
        """
        key = self.sign_in_key(who)
        if key.startswith("smtp:"):
            purpose = SMTP
        else:
            saved = next((a.protocol for a in self.config.accounts if a.name == who), "pop3")
            purpose = mailbox_purpose(protocol or saved)
        return await self.sign_ins.sign_in(key, provider, purpose, open_page=open_page)

    async def sign_out(self, who: str) -> bool:
        """Forget the stored sign-in of *who*; True when there was one."""
        return await self.sign_ins.sign_out(self.sign_in_key(who))

    async def sign_in_status(self, who: str) -> SignIn | None:
        """The stored sign-in of *who* (who signed in, and when), or None; read on the lookups thread."""
        return await in_lookup_thread(self.sign_ins.store.load, self.sign_in_key(who))

    async def copy_sign_in(self, old: str, new: str) -> bool:
        """A renamed account keeps its sign-in (it is kept under the account's name); True when one was copied."""
        store = self.sign_ins.store
        old_key, new_key = self.sign_in_key(old), self.sign_in_key(new)

        def copy() -> bool:
            record = store.load(old_key)
            if record is None:
                return False
            store.save(new_key, record)
            return True

        return await in_lookup_thread(copy)

    async def resubmit(self, record_id: str) -> str:
        """Run resolution and submission again for a quarantined message."""
        connector = Connector(self.config, self.paths, self.bus, credentials=self.credentials,
                              observer=self.bridge, sign_ins=self.sign_ins)
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
