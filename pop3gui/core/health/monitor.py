"""The health monitor: after every cycle, record what it did, raise and end alerts, mail them.

The connector gives it each cycle's outcome (:meth:`HealthMonitor.after_cycle`)
and the events of the run (it listens on the bus: policy refusals, sign-ins,
deliveries).  It compares the conditions that hold now
(:func:`~pop3gui.core.health.conditions.due_alerts`) with the alerts the store
says are active: a new one is raised (event 1201, and a mail), a gone one is
ended (1202, and a mail); anything else says nothing, across restarts too.
A mail that cannot be sent stays due and is tried again after the next cycle,
with one event (1203) per outage.  Nothing here stops a cycle: a state or
mail problem becomes an event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pop3gui.core.config.model import Config
from pop3gui.core.errors import Pop3guiError, StateError
from pop3gui.core.events.model import Event, EventBus, EventId, Outcome, Severity
from pop3gui.core.failures import Failure
from pop3gui.core.health.conditions import SMTP_LOGIN, due_alerts, recovered_subject
from pop3gui.core.health.mail import alert_message, alert_sender
from pop3gui.core.health.store import AccountHealth, AlertRow, HealthStore, Refusal
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.quarantine_ops import expiry_listed
from pop3gui.core.state.spool import Quarantine

log = logging.getLogger(__name__)

SIGN_IN_DIAGNOSES = frozenset({Failure.SIGN_IN_NEEDED, Failure.OAUTH_CONSENT_MISSING})
"""Diagnoses a new sign-in mends (``pop3gui auth login``)."""

POLICY_DIAGNOSES = frozenset({Failure.POLICY, Failure.DOMAIN_NOT_ACCEPTED})
"""Refusals for a policy reason: a rule of the local server, or a domain it does not accept (relaying denied)."""


@dataclass(frozen=True)
class AccountOutcome:
    """What one account's cycle did, as the monitor needs it."""

    account: str
    failed: bool
    mail_arrived: bool
    diagnosis: str = ""
    text: str = ""
    cause: str = ""
    fix: str = ""


class HealthMonitor:
    """Keeps the health store and raises the alerts of ``[alerts]``; one per connector."""

    def __init__(self, config: Config, paths: Paths, bus: EventBus, *,
                 open_session: Callable[[], Awaitable[SmtpSubmitter]], now: Callable[[], datetime]) -> None:
        """*open_session* opens a session to the local server (the connector's [smtp]); *now* is local time."""
        self.config = config
        self.paths = paths
        self.bus = bus
        self.open_session = open_session
        self.now = now
        self._refused: list[Refusal] = []
        self._quarantined: set[tuple[str, str]] = set()  # (account, uid) of messages put in quarantine
        self._delivered_to: set[str] = set()
        self._sign_in_needed: set[str] = set()  # accounts; SMTP_LOGIN for the [smtp] login

    # --- what the run says ------------------------------------------------------

    def observe(self, event: Event) -> None:
        """A bus sink: keep what the conditions need from the run's events."""
        if event.id == EventId.RECIPIENT_REFUSED and event.diagnosis in POLICY_DIAGNOSES and event.recipient:
            self._refused.append(Refusal(event.account, event.recipient.lower(), event.uid or event.message_id,
                                         False, event.time.timestamp(), event.text, event.cause, event.fix))
        elif event.id == EventId.QUARANTINED:
            self._quarantined.add((event.account, event.uid or event.message_id))
        elif event.id == EventId.MESSAGE_DELIVERED and event.outcome == Outcome.DELIVERED:
            if event.recipient:
                self._delivered_to.add(event.recipient.lower())
            elif event.text.startswith("Delivered to "):  # several recipients: the text names them all
                self._delivered_to.update(a.strip().lower() for a in event.text[13:].rstrip(".").split(","))
        elif event.id == EventId.SIGN_IN_FAILED and event.diagnosis in SIGN_IN_DIAGNOSES:
            self._sign_in_needed.add(event.account or SMTP_LOGIN)

    # --- after each cycle -------------------------------------------------------

    async def after_cycle(self, outcomes: list[AccountOutcome]) -> None:
        """Record the cycle, raise and end alerts, send the mails that are due; never raises."""
        try:
            with HealthStore(self.paths.health_db) as store:
                raised, ended = self._evaluate(store, outcomes)
                for row, diagnosis in raised:
                    self._emit(EventId.ALERT_RAISED, Severity.ERROR if row.severity == "error" else Severity.WARNING,
                               f"Alert {row.condition}: {row.text}", row, cause=row.cause, fix=row.fix,
                               diagnosis=diagnosis)
                for row in ended:
                    self._emit(EventId.ALERT_RECOVERED, Severity.INFO,
                               f"Alert {row.condition} ended: "
                               f"{recovered_subject(row.condition, row.account, row.recipient)[len('pop3gui: recovered: '):]}.",
                               row)
                await self._send_due(store)
        except StateError as exc:
            self.bus.emit(Event(EventId.SPOOL_FAILED, Severity.ERROR, f"Alerts not updated: {exc}", cause=exc.cause,
                                fix=exc.fix, diagnosis=exc.failure))

    def _evaluate(self, store: HealthStore,
                  outcomes: list[AccountOutcome]) -> tuple[list[tuple[AlertRow, str]], list[AlertRow]]:
        now = self.now()
        ts = now.timestamp()
        refused, self._refused = self._refused, []
        quarantined, self._quarantined = self._quarantined, set()
        delivered, self._delivered_to = self._delivered_to, set()
        sign_ins, self._sign_in_needed = self._sign_in_needed, set()
        records = list(Quarantine(self.paths.quarantine_dir).records())
        keep_days = self.config.delivery.quarantine_keep_days
        listed = {r.id: r.account for r in records if expiry_listed(r, keep_days, ts)}
        in_quarantine = {(r.account, r.uid) for r in records} | {(r.account, r.message_id) for r in records}
        mail_due = bool(self.config.alerts.mail_to)
        with store.transaction() as db:
            accounts = store.accounts()
            for outcome in outcomes:
                accounts[outcome.account] = self._updated(accounts.get(outcome.account), outcome, ts,
                                                          smtp_sign_in=SMTP_LOGIN in sign_ins,
                                                          sign_in=outcome.account in sign_ins)
                store.save_account(db, accounts[outcome.account])
            names = {a.name for a in self.config.accounts}
            store.forget_accounts(db, names)
            accounts = {k: v for k, v in accounts.items() if k in names}
            for refusal in refused:
                store.add_refusal(db, replace(refusal, quarantined=(refusal.account, refusal.uid) in quarantined))
            refusals = []
            mapped = {a.name: a.deliver_to.lower() for a in self.config.accounts if a.kind == "user"}
            for refusal in store.refusals():
                # Settled: the server took that recipient since, the refused message left the quarantine,
                # or the user mailbox now delivers to another address (the admin changed the mapping).
                settled = (refusal.recipient in delivered
                           or refusal.quarantined and (refusal.account, refusal.uid) not in in_quarantine
                           or refusal.account not in names
                           or mapped.get(refusal.account, refusal.recipient) != refusal.recipient)
                if settled:
                    store.drop_refusal(db, refusal)
                else:
                    refusals.append(refusal)
            smtp_sign_in = SMTP_LOGIN in sign_ins
            if not outcomes:  # nothing ran: what was known of the [smtp] login still holds
                smtp_sign_in = smtp_sign_in or store.runner().smtp_sign_in_needed
            store.set_last_cycle(db, ts, smtp_sign_in_needed=smtp_sign_in)
            # Quarantined mail close to its keep days is listed by an alert now, before anything may remove it.
            store.forget_quarantine_warnings(db, set(listed))
            store.note_quarantine_warnings(db, listed, ts)
            expiring = {qid: at for qid, at in store.quarantine_warnings().items() if qid in listed}
            due = due_alerts(self.config, accounts, records, refusals, smtp_sign_in_needed=smtp_sign_in, now=now,
                             expiring=expiring)
            active = {row.key: row for row in store.alerts(active_only=True)}
            raised = []
            for key, alert in due.items():
                if key in active:
                    continue
                row = AlertRow(key, str(alert.condition), alert.account, alert.recipient, alert.severity,
                               alert.subject, alert.text, alert.cause, alert.fix, alert.since, None,
                               mailed=not mail_due)
                store.insert_alert(db, row)
                raised.append((row, alert.diagnosis))
            ended = []
            for key, row in active.items():
                if key not in due:
                    store.end_alert(db, key, ts, mail_due=mail_due)
                    ended.append(replace(row, ended_at=ts))
            store.drop_finished(db)
        return raised, ended

    @staticmethod
    def _updated(old: AccountHealth | None, outcome: AccountOutcome, ts: float, *, sign_in: bool,
                 smtp_sign_in: bool) -> AccountHealth:
        health = old or AccountHealth(outcome.account, first_seen=ts)
        health = replace(health, last_cycle=ts, last_mail=ts if outcome.mail_arrived else health.last_mail)
        if not outcome.failed:
            return replace(health, last_success=ts, failed_cycles=0, failing_since=None, sign_in_needed=False)
        # A sign-in the [smtp] login needs fails every account with its diagnosis: that is not theirs to mend.
        own_sign_in = sign_in or (outcome.diagnosis in SIGN_IN_DIAGNOSES and not smtp_sign_in)
        return replace(health, last_failure=ts, failure_diagnosis=outcome.diagnosis, failure_text=outcome.text,
                       failure_cause=outcome.cause, failure_fix=outcome.fix, failed_cycles=health.failed_cycles + 1,
                       failing_since=health.failing_since or ts,
                       sign_in_needed=own_sign_in or health.sign_in_needed)

    # --- events and mail ----------------------------------------------------------

    def _emit(self, eid: EventId, severity: Severity, text: str, row: AlertRow, *, cause: str = "",
              fix: str = "", diagnosis: str = "") -> None:
        failure = next((f for f in Failure if f.value == diagnosis), None)
        self.bus.emit(Event(eid, severity, text, account=row.account, recipient=row.recipient, cause=cause,
                            fix=fix, diagnosis=failure))

    async def _send_due(self, store: HealthStore) -> None:
        """Mail every alert start and end not mailed yet; on failure they stay due for the next cycle."""
        if not self.config.alerts.mail_to:
            return
        due = [row for row in store.alerts() if (row.active and not row.mailed)
               or (not row.active and not row.recovery_mailed)]
        if not due:
            return
        session: SmtpSubmitter | None = None
        try:
            session = await self.open_session()
            for row in due:
                recovery = not row.active
                message = alert_message(row, self.config, recovery=recovery, now=self.now())
                submission = await session.submit(alert_sender(self.config), [self.config.alerts.mail_to],
                                                  message.as_bytes())
                if self.config.alerts.mail_to not in submission.accepted:
                    reply = (submission.refused or submission.deferred or (None,))[0]
                    said = f"{reply.code} {reply.message}" if reply is not None else \
                        f"{submission.data_code} {submission.data_message}"
                    self._mail_failed(store, f"the local mail server did not take the alert mail to "
                                      f"{self.config.alerts.mail_to}: {said}",
                                      cause="The local server refuses the address, or the sender "
                                      f"{alert_sender(self.config)}.",
                                      fix="Check [alerts] mail_to and mail_from and the server's rules; the alert "
                                      "is mailed after the next cycle.", transcript=submission.transcript)
                    return
                store.mark_mailed(row.key, recovery=recovery)
                self.bus.emit(Event(EventId.ALERT_MAILED, Severity.INFO,
                                    f"Alert mail sent to {self.config.alerts.mail_to}: {message['Subject']}",
                                    account=row.account, recipient=self.config.alerts.mail_to))
        except Pop3guiError as exc:
            self._mail_failed(store, f"the alert mail to {self.config.alerts.mail_to} could not be sent: {exc}",
                              cause=exc.cause, fix="The alert stays due and is mailed after the next cycle once "
                              f"the local server takes it. {exc.fix}".strip(),
                              transcript=getattr(exc, "transcript", "") or "")
            return
        finally:
            if session is not None:
                await session.close()
        if store.set_mail_failing(False):
            log.info("alert mail works again")

    def _mail_failed(self, store: HealthStore, text: str, *, cause: str, fix: str, transcript: str) -> None:
        if store.set_mail_failing(True):  # said once per outage; each cycle tries again quietly
            self.bus.emit(Event(EventId.ALERT_MAIL_FAILED, Severity.WARNING, text[0].upper() + text[1:] + ".",
                                cause=cause, fix=fix, transcript=transcript, recipient=self.config.alerts.mail_to))

    # --- the runner's plan ----------------------------------------------------------

    def planned(self, next_run: datetime | None, note: str = "") -> None:
        """The runner computed its next cycle: keep it (and the heartbeat) for ``pop3gui status``."""
        record_plan(self.paths, next_run, self.now(), note)


def record_plan(paths: Paths, next_run: datetime | None, now: datetime, note: str = "") -> None:
    """Keep a runner's next cycle and heartbeat for ``pop3gui status`` (the tray runner's and the headless one's).

    A store that cannot be written is logged, not raised: the plan is for
    the admin's information and must never stop a runner.
    """
    try:
        with HealthStore(paths.health_db) as store:
            store.set_next_run(None if next_run is None else next_run.timestamp(), now.timestamp(), note)
    except StateError as exc:
        log.warning("cannot record the next run: %s", exc)
