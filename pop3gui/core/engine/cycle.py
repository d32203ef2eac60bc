"""The download/submit loop: one cycle over every enabled account, side by side.

Every account is isolated (one failing mailbox does not stop the others) and
every step emits an :class:`~pop3gui.core.events.model.Event`.  A cycle works
each mailbox through :class:`~pop3gui.core.engine.mailbox.MailboxSession` (POP3) or
:class:`~pop3gui.core.engine.imap_mailbox.ImapMailboxSession` (IMAP);
each downloaded message meets its fate in
:class:`~pop3gui.core.engine.delivery.Deliverer`.  The GUI and the command
line both drive a :class:`Connector`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.config.policies import policy_warnings
from pop3gui.core.engine.connections import LocalServer, open_local_server
from pop3gui.core.engine.delivery import AbortAccount, Deliverer
from pop3gui.core.engine.housekeeping import Housekeeper
from pop3gui.core.engine.login import AccountLogin
from pop3gui.core.engine.imap_mailbox import ImapMailboxSession
from pop3gui.core.engine.mailbox import MailboxSession
from pop3gui.core.engine.message import InFlight
from pop3gui.core.engine.push import PushWatchers
from pop3gui.core.engine.report import Reporter
from pop3gui.core.engine.status import AccountResult, CycleResult, Phase, StatusObserver
from pop3gui.core.errors import ConfigError, CredentialError, OAuthError, SmtpError, StateError, TlsSetupError
from pop3gui.core.events.model import EventBus, EventId, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.health.monitor import AccountOutcome, HealthMonitor
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.schedule import next_run
from pop3gui.core.oauth.store import smtp_sign_in_key
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.journal import Journal
from pop3gui.core.state.paths import Paths, ensure_private_dir
from pop3gui.core.state.spool import Quarantine, Spool


class Connector:
    """Runs cycles over the configured accounts and resubmits quarantined messages."""

    def __init__(self, config: Config, paths: Paths, bus: EventBus, *,
                 credentials: Credentials | None = None, journal: Journal | None = None,
                 observer: StatusObserver | None = None, sign_ins: SignIns | None = None) -> None:
        self.config = config
        self.paths = paths
        self.credentials = credentials or Credentials()
        self.sign_ins = sign_ins or SignIns(self.credentials, paths.sign_in_locks)
        self.journal = journal or Journal(paths.journal_db)
        self.spool = Spool(paths.spool_dir)
        self.quarantine = Quarantine(paths.quarantine_dir)
        self.report = Reporter(bus, debug=config.logging.level == "debug", observer=observer)
        self.deliverer = Deliverer(config, self.journal, self.quarantine, self.report)
        self._stop = asyncio.Event()
        self._woken = asyncio.Event()  # set by a stop or a push, to end run_forever's wait early
        self._pushed: set[str] = set()
        self._warned_policies = False
        self._mailbox_locks: dict[tuple[str, int, str], asyncio.Lock] = {}
        self._parallel = asyncio.Semaphore(config.performance.max_parallel_accounts)
        self.now: Callable[[], datetime] = datetime.now  # local wall-clock time, for the hours of the schedule
        # Health and alerts ([alerts]): it hears the run's events and is told each cycle's outcome.
        self.health = HealthMonitor(config, paths, bus, open_session=self._alert_session, now=lambda: self.now())
        self._stop_listening = bus.subscribe(self.health.observe)
        # [events] keep_days and max_mb, the journal's old deliveries, [delivery] quarantine_keep_days.
        self.housekeeper = Housekeeper(paths, self.report)

    # --- control ----------------------------------------------------------------

    def use_config(self, config: Config) -> None:
        """Work with *config* from the next cycle or resubmission on (the accounts' limits stay)."""
        self.config = config
        self.deliverer.config = config
        self.deliverer.refusals.config = config
        self.health.config = config

    def request_stop(self) -> None:
        """Finish the message in flight, QUIT the servers, and return from the cycle."""
        if not self._stop.is_set():
            self._stop.set()
            self._woken.set()
            self.report.event(EventId.RUNNER_STOPPING, Severity.INFO,
                              "Stopping: finishing the message in flight, then closing the sessions.")

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run_forever(self) -> None:
        """Cycle on the schedule until :meth:`request_stop`; IMAP accounts with IDLE also run when mail arrives.

        Scheduled cycles run every ``interval_min`` inside the chosen hours of
        the week (:class:`~pop3gui.core.schedule.WeekHours`, local time); a
        cycle due outside them waits for the next chosen hour.  A push runs
        only the account it came for, inside the chosen hours too; the
        scheduled cycle keeps its own rhythm.  Pushes that arrive while a run
        is going are kept and run right after it.  With the schedule turned
        off nothing runs: the runner says so and waits to be stopped.
        """
        if not self.config.schedule.enabled:
            self.report.event(
                EventId.RUNNER_SCHEDULE, Severity.WARNING,
                "Automatic retrieval is turned off ([schedule] enabled = false): this runner retrieves nothing.",
                cause="The schedule is turned off in the configuration.",
                fix="Set [schedule] enabled = true and restart the runner, or retrieve by hand with "
                "`pop3gui run --once`.")
            self.health.planned(None, "automatic retrieval is turned off ([schedule] enabled = false)")
            await self._stop.wait()
            return
        push = PushWatchers(self.config, credentials=self.credentials, sign_ins=self.sign_ins, report=self.report,
                            on_mail=self.push_arrived)
        push.start()
        try:
            await self._cycle_on_schedule()
        finally:
            await push.stop()

    async def _cycle_on_schedule(self) -> None:
        """The loop of :meth:`run_forever`: scheduled cycles, pushed accounts, and waits between them.

        The schedule is read again on every turn (:meth:`use_config` may have
        changed it), and the next cycle is reckoned from the last one, so a
        clock set back or a new interval takes effect at once instead of
        after the old wait.
        """
        schedule = self.config.schedule
        last_cycle: datetime | None = None  # when the last scheduled cycle ended (wall clock)
        next_cycle = self._next_scheduled(self.now())
        self.health.planned(next_cycle, "" if next_cycle is not None else "no hour of the week is chosen")
        while not self.stopping:
            # Cleared before looking, not before waiting: a wake() that comes while a cycle runs is kept,
            # and the wait below returns at once to look again.
            self._woken.clear()
            now = self.now()
            clock_set_back = last_cycle is not None and now < last_cycle
            if self.config.schedule != schedule or clock_set_back:
                schedule = self.config.schedule
                since = now if last_cycle is None or clock_set_back else last_cycle
                next_cycle = self._next_scheduled(since, after_cycle=last_cycle is not None)
                if clock_set_back:
                    last_cycle = now
                self.health.planned(next_cycle, "" if next_cycle is not None else "no hour of the week is chosen")
            if next_cycle is not None and now >= next_cycle:
                self._pushed.clear()  # the whole cycle covers them
                await self.run_cycle()
                last_cycle = self.now()
                next_cycle = self._next_scheduled(last_cycle, after_cycle=True)
                self.health.planned(next_cycle, "" if next_cycle is not None else "no hour of the week is chosen")
            elif self._pushed and schedule.hours.is_open(now):
                accounts, self._pushed = set(self._pushed), set()
                await self.run_cycle(only=accounts)
            if self.stopping or (self._pushed and schedule.hours.is_open(self.now())):
                continue
            # Wall-clock waits in steps of at most a minute, so a changed clock or DST is noticed.
            left = 60.0 if next_cycle is None else (next_cycle - self.now()).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), min(60.0, max(0.0, left)))

    def _next_scheduled(self, now: datetime, *, after_cycle: bool = False) -> datetime | None:
        """The next scheduled cycle (now at the start, else an interval on), said once when it waits for hours."""
        schedule = self.config.schedule
        due = next_run(schedule.hours, now, schedule.interval_min) if after_cycle else schedule.hours.next_open(now)
        plain = now + timedelta(minutes=schedule.interval_min) if after_cycle else now
        if due is None:
            self.report.event(EventId.RUNNER_SCHEDULE, Severity.WARNING,
                              "No hour of the week is chosen in [schedule] hours: no cycle will run.",
                              cause="Every day's hours are empty.",
                              fix='Choose the hours to retrieve in, e.g. hours = { mon = "7-19" }; a day left '
                              'out runs all day.')
        elif due > plain:
            self.report.event(EventId.RUNNER_SCHEDULE, Severity.INFO,
                              f"Outside the chosen hours ({schedule.hours.summary()}): the next cycle runs "
                              f"{due:%a %H:%M}.")
        return due

    def wake(self) -> None:
        """Look at the clock and the schedule now instead of at the end of the current wait (at most a minute)."""
        self._woken.set()

    def push_arrived(self, account: str) -> None:
        """New mail was announced for *account* (IMAP IDLE): run it as soon as the current run is done."""
        self._pushed.add(account)
        self._woken.set()

    def close(self) -> None:
        self._stop_listening()
        self.journal.close()

    async def _alert_session(self) -> SmtpSubmitter:
        """A session to the local server for alert mail, with the [smtp] login and TLS the cycles use."""
        local = await open_local_server(self.config.smtp, self.credentials, self.sign_ins, self.config)
        return local.session()

    # --- the cycle --------------------------------------------------------------

    async def run_cycle(self, only: set[str] | None = None) -> CycleResult:
        """One run over every enabled account, or over the accounts named in *only* (a push)."""
        result = CycleResult()
        self.deliverer.new_cycle()
        accounts = [a for a in self.config.accounts if a.enabled and (only is None or a.name in only)]
        self.report.event(EventId.CYCLE_STARTED, Severity.INFO, f"Retrieving mail from {len(accounts)} account(s).")
        if not self._warned_policies:
            self._warned_policies = True
            for warning in policy_warnings(self.config):
                self.report.event(EventId.POLICY_WARNING, Severity.WARNING, warning.text, cause=warning.text,
                                  fix=warning.fix, diagnosis=Failure.POLICY_MISSING)
        smtp = self.config.smtp
        if smtp.security != "none" and not smtp.verify_tls:
            self.report.event(
                EventId.TLS_NOT_VERIFIED, Severity.WARNING,
                f"The certificate of the local mail server {smtp.host} is not checked (verify_tls = false).",
                cause="Certificate checking is turned off for the local mail server.",
                fix="Turn it back on; for a private certificate set smtp.ca_file to its CA instead.",
                diagnosis=Failure.TLS_NOT_VERIFIED)
        try:
            local = await open_local_server(smtp, self.credentials, self.sign_ins, self.config)
        except (CredentialError, TlsSetupError, OAuthError) as exc:
            eid = (EventId.CREDENTIAL_MISSING if isinstance(exc, CredentialError) else
                   EventId.SIGN_IN_FAILED if isinstance(exc, OAuthError) else EventId.SMTP_CONNECTION_FAILED)
            self.report.event(eid, Severity.ERROR, str(exc), cause=exc.cause, fix=exc.fix, diagnosis=exc.failure)
            for account in accounts:
                res = AccountResult(account.name)
                res.fail(str(exc), diagnosis=exc.failure, cause=exc.cause, fix=exc.fix)
                result.accounts.append(res)
                self.report.status(account.name, Phase.FAILED, res)
            return await self._finish_cycle(result)
        result.accounts = [r for r in await asyncio.gather(*(self._run_limited(a, local) for a in accounts))
                           if r is not None]
        if smtp.auth == "oauth2" and any(r.diagnosis is Failure.OAUTH_TOKEN_REFUSED for r in result.accounts):
            self.sign_ins.forget_token(smtp_sign_in_key(smtp.username))  # renewed at the next cycle's start
        return await self._finish_cycle(result)

    async def _run_limited(self, account: AccountConfig, local: LocalServer) -> AccountResult | None:
        """Accounts run side by side up to the configured limit, but one mailbox never twice at once."""
        mailbox = (account.host.lower(), account.port, account.username.lower())
        lock = self._mailbox_locks.setdefault(mailbox, asyncio.Lock())
        async with self._parallel, lock:
            if self.stopping:
                return None
            return await self.run_account(account, local)

    async def _finish_cycle(self, result: CycleResult) -> CycleResult:
        delivered = sum(a.delivered for a in result.accounts)
        problems = sum(a.diverted + a.quarantined + a.deferred for a in result.accounts)
        failed = [a.account for a in result.accounts if a.failed]
        text = f"Cycle finished: {delivered} message(s) delivered"
        if problems:
            text += f", {problems} need attention"
        if failed:
            text += f"; failed account(s): {', '.join(failed)}"
        self.report.event(EventId.CYCLE_FINISHED, Severity.INFO if result.exit_code == 0 else Severity.WARNING,
                          text + ".")
        # Failed cycles count too: the quarantine's age and a quiet mailbox are noticed whatever happened.
        await self.health.after_cycle([
            AccountOutcome(a.account, a.failed, a.downloaded > 0 or a.delivered > 0,
                           str(a.diagnosis) if a.diagnosis else "", a.errors[0] if a.errors else "", a.cause, a.fix)
            for a in result.accounts])
        self.report.cycle_finished(result)
        await self.housekeeper.step(self.config)  # one bounded step; its SQLite work runs in a worker thread
        return result

    async def run_account(self, account: AccountConfig, local: LocalServer) -> AccountResult:
        """One account's cycle; never raises for a mail or server problem."""
        res = AccountResult(account.name)
        self.report.status(account.name, Phase.CONNECTING)
        self.report.event(EventId.ACCOUNT_STARTED, Severity.INFO,
                          f"Connecting to {account.host}:{account.port} as {account.username}.", account=account.name)
        # The keyring lookup or the token refresh runs while the connection is set up.
        login = AccountLogin(account, self.config, self.credentials, self.sign_ins)
        kind = ImapMailboxSession if account.protocol == "imap" else MailboxSession
        session = kind(account, config=self.config, journal=self.journal, spool=self.spool,
                       deliverer=self.deliverer, report=self.report, local=local, stopping=lambda: self.stopping)
        try:
            self._clear_spool(account.name)
            await session.run(login, res)
        except CredentialError as exc:
            self.report.failure(res, EventId.CREDENTIAL_MISSING, exc)
        except OAuthError as exc:
            self.report.failure(res, EventId.SIGN_IN_FAILED, exc)
        except StateError as exc:
            self.report.failure(res, EventId.SPOOL_FAILED, exc)
        except ConfigError as exc:  # a stored secret that cannot be sent (a line break in it): this account only
            self.report.failure(res, EventId.CREDENTIAL_MISSING, exc)
        except AbortAccount:
            pass  # recorded on res where it was raised
        finally:
            login.close()
            with contextlib.suppress(OSError, StateError):
                self.spool.clear(account.name)  # downloaded but never submitted: still on the server
        moving = account.protocol == "imap" and account.after_delivery == "move"
        removed = f"moved to {account.move_to}" if moving else "deleted on the server"
        self.report.event(EventId.ACCOUNT_FINISHED, Severity.INFO if res.clean else Severity.WARNING,
                          f"{res.delivered} delivered, {res.diverted} diverted to the undeliverable mailbox, "
                          f"{res.quarantined} quarantined, {res.deferred} left for retry, {res.too_big} too big, "
                          f"{res.deleted} {removed}.", account=account.name)
        self.report.status(account.name, Phase.FAILED if res.failed else Phase.DONE, res)
        return res

    def _clear_spool(self, account: str) -> None:
        """Drop an interrupted run's leftovers; a failure is a disk problem, not a crash."""
        try:
            self.spool.clear(account)
        except StateError:
            raise
        except OSError as exc:
            raise StateError(
                f"cannot clear the spool folder of account {account!r}: {exc.strerror or exc}",
                cause="A leftover in the spool folder cannot be removed: the state folder is not writable, "
                "or something else is in the way.",
                fix=f"Fix the permissions of {exc.filename or self.spool.root} or remove it; the messages stay "
                "on the POP3 server and are retried next cycle.",
            ) from exc

    # --- quarantine ---------------------------------------------------------------

    def _resubmission_copy(self, record_id: str) -> Path:
        """A private copy of the quarantined message to send from; the quarantine keeps the original.

        It lives apart from the accounts' spool folders, which a cycle that
        starts meanwhile clears, under a name no other resubmission uses.
        """
        try:
            folder = ensure_private_dir(self.paths.resubmit_dir)
            handle, name = tempfile.mkstemp(prefix=f"{record_id}-", suffix=".eml", dir=folder)
            os.close(handle)
            copy = Path(name)
            try:
                shutil.copyfile(self.quarantine.message_path(record_id), copy)
            except BaseException:
                copy.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StateError(
                f"cannot copy quarantined message {record_id} for resubmission: {exc.strerror or exc}",
                cause="Its .eml file is gone or unreadable, or the state folder is not writable or full.",
                fix=f"Check {exc.filename or self.paths.state_dir} (permissions, free space); the message stays "
                "in quarantine.",
            ) from exc
        return copy

    async def resubmit(self, record_id: str) -> str:
        """Resolve and submit a quarantined message again (after the admin fixed the cause).

        Returns what happened in a sentence.  The quarantine entry is removed
        once the message was delivered or diverted with a notice; if it is
        refused for good again, the new quarantine entry replaces the old one.
        """
        record = self.quarantine.get(record_id)
        try:
            account = self.config.account(record.account)
        except KeyError:
            raise ConfigError(
                f"the account {record.account!r} this message came from no longer exists",
                cause="Recipients are resolved with the settings of the account that downloaded the message.",
                fix="Export the message and deliver it by hand, or create the account again.",
            ) from None
        spool = self._resubmission_copy(record.id)
        msg = InFlight(0, record.uid, spool.stat().st_size, spool)
        res = AccountResult(account.name)
        smtp = (await open_local_server(self.config.smtp, self.credentials, self.sign_ins, self.config)).session()
        try:
            await self.deliverer.deliver(account, msg, smtp, res, resubmission=True)
        except SmtpError as exc:
            with contextlib.suppress(AbortAccount):  # the session is lost: said by the event, nothing to stop
                self.deliverer.smtp_failed(account, msg, exc, res)
            return f"Not resubmitted: {exc} ({exc.fix})"
        finally:
            await smtp.close()
            spool.unlink(missing_ok=True)
        if res.deferred:
            return "The local server deferred the message; it stays in quarantine. Try again later."
        self.journal.make_durable()
        self.quarantine.remove(record.id)
        if res.quarantined:
            return "Refused again; the message is back in quarantine with the new reason (see Events)."
        if res.diverted:
            return "Some recipients were refused again; the message went to the undeliverable mailbox with a notice."
        return "Delivered."
