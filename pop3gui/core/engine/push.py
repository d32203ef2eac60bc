"""New-mail push for IMAP accounts: one IDLE connection per folder, waking a run within seconds.

A watcher only listens; the download itself is an ordinary run of that
account (:meth:`~pop3gui.core.engine.cycle.Connector.run_cycle` with
``only``), so every promise of a scheduled run holds.  An IDLE is ended and
issued again before 29 minutes (RFC 2177); a server without IDLE is said once
and left to the schedule; a lost connection is said once per outage and
tried again with a growing pause.  The schedule still runs every account
meanwhile, so a watcher that cannot connect costs latency, never mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.connections import imap_client
from pop3gui.core.engine.login import AccountLogin
from pop3gui.core.engine.report import Reporter
from pop3gui.core.errors import ConfigError, CredentialError, MailboxError, OAuthError, TlsSetupError
from pop3gui.core.events.model import EventId, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.imap.client import IDLE_RENEW_S
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.state.credentials import Credentials

log = logging.getLogger(__name__)

#: Pauses before connecting again after a failure: grows to the last and stays there.
RETRY_PAUSES_S = (5.0, 30.0, 120.0, 600.0)


#: Folders of one account that get a watcher of their own; the others are fetched on the schedule.  Servers
#: limit the connections of one user (Dovecot 10 per address, Gmail 15), and the runs need one too.
MAX_WATCHED_FOLDERS = 3


def push_folders(config: Config) -> list[tuple[AccountConfig, str]]:
    """(account, folder) of every folder a watcher listens on: an account's first few folders."""
    return [(a, f) for a in config.accounts if a.enabled and a.protocol == "imap" and a.idle
            for f in a.folders[:MAX_WATCHED_FOLDERS]]


class PushWatchers:
    """The IDLE watchers of a configuration; *on_mail* gets an account's name when new mail arrives."""

    def __init__(self, config: Config, *, credentials: Credentials, sign_ins: SignIns, report: Reporter,
                 on_mail: Callable[[str], None], renew_s: float = IDLE_RENEW_S,
                 retry_pauses_s: tuple[float, ...] = RETRY_PAUSES_S) -> None:
        self.config = config
        self.credentials = credentials
        self.sign_ins = sign_ins
        self.report = report
        self.on_mail = on_mail
        self.renew_s = renew_s
        self.retry_pauses_s = retry_pauses_s
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listening: set[tuple[str, str]] = set()  # (account, folder) now idling: for tests and the status

    def start(self) -> None:
        """Start one watcher per push folder (none when the configuration has none)."""
        self._stop.clear()
        for account, folder in push_folders(self.config):
            self._tasks.append(asyncio.create_task(self._watch(account, folder),
                                                   name=f"idle {account.name}/{folder}"))

    async def stop(self) -> None:
        """End every IDLE (DONE, LOGOUT) and wait for the watchers to finish."""
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            await asyncio.wait(tasks, timeout=10)  # all at once: a server that does not answer DONE costs 10 s
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch(self, account: AccountConfig, folder: str) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                supported = await self._session(account, folder)
                if not supported:
                    return
                failures = 0
            except (MailboxError, CredentialError, OAuthError, TlsSetupError, ConfigError) as exc:
                if (account.name, folder) in self.listening:  # it was listening: a new outage begins
                    failures = 0
                if failures == 0:
                    self.report.event(
                        EventId.IMAP_IDLE_FAILED, Severity.WARNING,
                        f"Waiting for new mail in {folder} stopped: {exc}", account=account.name,
                        cause=exc.cause, fix="Nothing to do if it passes: new mail is still fetched on the "
                        "schedule, and listening resumes by itself. " + exc.fix, diagnosis=exc.failure)
                pause = self.retry_pauses_s[min(failures, len(self.retry_pauses_s) - 1)]
                failures += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), pause)
            except Exception:  # a bug must not end push for good silently
                log.exception("IDLE watcher of %s/%s failed", account.name, folder)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.retry_pauses_s[-1])
            finally:
                self.listening.discard((account.name, folder))

    async def _session(self, account: AccountConfig, folder: str) -> bool:
        """One connection: log in, open the folder read-only, IDLE until stopped; False without IDLE."""
        login = AccountLogin(account, self.config, self.credentials, self.sign_ins)
        client = imap_client(account)
        try:
            await client.connect()
            await login.log_in(client)
            if not client.has_idle:
                self.report.event(
                    EventId.IMAP_NO_IDLE, Severity.WARNING,
                    f"{account.host} cannot tell us about new mail (no IDLE); {folder} is fetched on the schedule.",
                    account=account.name, cause="The IMAP server does not offer IDLE (RFC 2177).",
                    fix="Nothing to do; shorten the schedule's interval for faster delivery, or set idle = false "
                    "to silence this.", diagnosis=Failure.NO_IDLE)
                return False
            await client.select(folder, readonly=True)
            self.listening.add((account.name, folder))
            self.report.event(EventId.IMAP_IDLE_STARTED, Severity.DEBUG, f"Waiting for new mail in {folder} (IDLE).",
                              account=account.name)
            loop = asyncio.get_running_loop()
            while not self._stop.is_set():
                began = loop.time()
                arrived = await client.idle(stop=self._stop, wait=self.renew_s)
                if not arrived and loop.time() - began < 1.0 and not self._stop.is_set():
                    await asyncio.sleep(1.0)  # a server that ends every IDLE at once must not make us spin
                if arrived:
                    self.report.event(EventId.IMAP_NEW_MAIL, Severity.INFO, f"New mail in {folder}; fetching it now.",
                                      account=account.name)
                    self.on_mail(account.name)
            await client.logout()
            return True
        finally:
            login.close()
            await client.close()
