"""The alert conditions: which ones hold right now, from the health store, the quarantine and the clock.

A pure function of its inputs (:func:`due_alerts`), so each condition is
tested without a server and the monitor only compares what holds now with
what the store says was active.  Each condition has its threshold in
``[alerts]``; 0 or false turns it off, and a condition turned off ends its
alert like any condition that stopped holding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pop3gui.core.config.model import Config
from pop3gui.core.health.store import AccountHealth, Refusal
from pop3gui.core.state.quarantine_ops import removal_at
from pop3gui.core.state.spool import QuarantineRecord

__all__ = ["Condition", "DueAlert", "due_alerts", "alert_key", "recovered_subject", "SMTP_LOGIN"]

SMTP_LOGIN = ""
"""The "account" of an alert about the [smtp] login rather than a mailbox."""


class Condition(StrEnum):
    """What an alert is about; stable names (``pop3gui status --json``, the X-Pop3gui-Alert header)."""

    FAILED_CYCLES = "failed_cycles"  # an account failed N cycles in a row
    SIGN_IN = "sign_in"  # an OAuth2 sign-in is needed
    NO_MAIL = "no_mail"  # nothing downloaded for N hours of the schedule's hours
    QUARANTINE = "quarantine"  # a message has waited in quarantine N hours
    QUARANTINE_EXPIRY = "quarantine_expiry"  # quarantined messages will be removed ([delivery] quarantine_keep_days)
    POLICY_REFUSAL = "policy_refusal"  # the local server refused a recipient for a policy reason


CRITICAL_CONDITIONS = frozenset({Condition.FAILED_CYCLES, Condition.SIGN_IN})
"""Conditions whose alert is an error: mail of that account does not flow."""


@dataclass(frozen=True)
class DueAlert:
    """A condition that holds now, worded for the event log and the alert mail."""

    condition: Condition
    account: str
    subject: str
    text: str
    cause: str
    fix: str
    since: float  # when the condition began, as far as is known
    recipient: str = ""
    diagnosis: str = ""  # a Failure name for the event, when one fits
    group: str = ""  # tells apart alerts of one condition and account that are not about a recipient

    @property
    def key(self) -> str:
        return alert_key(self.condition, self.account, self.recipient or self.group)

    @property
    def severity(self) -> str:
        return "error" if self.condition in CRITICAL_CONDITIONS else "warning"


def alert_key(condition: str, account: str, recipient: str = "") -> str:
    return f"{condition}:{account}" + (f":{recipient}" if recipient else "")


def _who(account: str) -> str:
    return "the local mail server's login" if account == SMTP_LOGIN else f"account {account}"


def _local(ts: float) -> datetime:
    return datetime.fromtimestamp(ts)


def due_alerts(config: Config, accounts: Mapping[str, AccountHealth], quarantine: Iterable[QuarantineRecord],
               refusals: Iterable[Refusal], *, smtp_sign_in_needed: bool, now: datetime,
               expiring: Mapping[str, float] | None = None) -> dict[str, DueAlert]:
    """Every alert whose condition holds at *now* (local time), by key.

    *expiring* maps the quarantine IDs an alert lists for removal to when one
    first listed them (the health store keeps it); messages listed at the same
    moment share one alert, so a message listed later gets an alert of its own.
    """
    quarantine = list(quarantine)
    alerts = config.alerts
    ts = now.timestamp()
    due: list[DueAlert] = []
    enabled = {a.name: a for a in config.accounts if a.enabled}
    for name, acc in enabled.items():
        health = accounts.get(name)
        if health is None:
            continue  # not run yet: nothing is known
        events_hint = f"`pop3gui events --account {name}`"
        if alerts.failed_cycles and health.failed_cycles >= alerts.failed_cycles:
            due.append(DueAlert(
                Condition.FAILED_CYCLES, name,
                f"pop3gui: account {name} has failed {health.failed_cycles} cycles in a row",
                f"Account {name} ({acc.username} on {acc.host}) has failed {health.failed_cycles} cycles in a row: "
                f"{health.failure_text or 'see the event log'}",
                health.failure_cause or "See the account's events for why.",
                health.failure_fix or f"See {events_hint}.",
                health.failing_since or health.last_failure or ts, diagnosis=health.failure_diagnosis))
        if alerts.sign_in and health.sign_in_needed:
            due.append(DueAlert(
                Condition.SIGN_IN, name, f"pop3gui: account {name} needs an OAuth2 sign-in",
                f"Account {name} ({acc.username} on {acc.host}) signs in with OAuth2 and has no sign-in that works: "
                "its mail stays on the server.",
                health.failure_cause or "No sign-in is kept for it, or the provider no longer honours it (expired, "
                "revoked, password changed).",
                f"Sign in again: `pop3gui auth login {name}`, or Sign in… in the account's properties.",
                health.failing_since or health.last_failure or ts, diagnosis="sign_in_needed"))
        if alerts.no_mail_hours:
            start = max(health.first_seen, health.last_mail or 0.0)
            quiet = config.schedule.hours.open_hours_between(_local(start), now)
            if quiet >= alerts.no_mail_hours:
                last = (f"the last mail arrived {_local(health.last_mail):%Y-%m-%d %H:%M}" if health.last_mail
                        else f"none since the connector first ran it, {_local(health.first_seen):%Y-%m-%d %H:%M}")
                due.append(DueAlert(
                    Condition.NO_MAIL, name,
                    f"pop3gui: account {name} has received no mail for {alerts.no_mail_hours} hours",
                    f"Account {name} ({acc.username} on {acc.host}) has received no mail for {quiet:.0f} hours of "
                    f"the scheduled hours; {last}.",
                    "The mailbox may be quiet, mail may go elsewhere (a forward, another program fetching it first), "
                    "or the account's cycles fail." + (f" Its last cycle failed: {health.failure_text}"
                                                       if health.failed_cycles else ""),
                    f"Look at the mailbox with the provider's webmail and at {events_hint}; for a mailbox that is "
                    "often quiet raise [alerts] no_mail_hours (0 turns this alert off).",
                    start))
    if alerts.sign_in and smtp_sign_in_needed:
        user = config.smtp.username
        due.append(DueAlert(
            Condition.SIGN_IN, SMTP_LOGIN, f"pop3gui: the local mail server's login {user} needs an OAuth2 sign-in",
            f"The login {user} to the local mail server signs in with OAuth2 and has no sign-in that works: no mail "
            "is delivered.",
            "No sign-in is kept for it, or the provider no longer honours it.",
            "Sign in again: `pop3gui auth login --smtp`.", ts, diagnosis="sign_in_needed"))
    if alerts.quarantine_hours:
        limit = alerts.quarantine_hours * 3600
        old: dict[str, list[QuarantineRecord]] = {}
        for record in quarantine:
            if ts - record.quarantined_at >= limit:
                old.setdefault(record.account, []).append(record)
        for name, records in sorted(old.items()):
            first = min(records, key=lambda r: r.quarantined_at)
            due.append(DueAlert(
                Condition.QUARANTINE, name,
                f"pop3gui: account {name} has {len(records)} message(s) waiting in quarantine for more than "
                f"{alerts.quarantine_hours} hours",
                f"{len(records)} message(s) of account {name} have waited in quarantine for more than "
                f"{alerts.quarantine_hours} hours; the oldest: {first.subject or '(no subject)'!r} from "
                f"{first.sender or '(no sender)'}: {first.reason}",
                first.cause or "No recipient and not the undeliverable mailbox would take them.",
                (first.fix + " " if first.fix else "") + "Then resubmit, export or delete them on the Quarantine "
                "page of the properties window; the alert ends when none is older than the limit.",
                first.quarantined_at))
    if expiring:
        due.extend(_expiry_alerts(config, quarantine, expiring))
    if alerts.policy_refusal:
        by_recipient: dict[tuple[str, str], list[Refusal]] = {}
        for refusal in refusals:
            by_recipient.setdefault((refusal.account, refusal.recipient), []).append(refusal)
        for (name, recipient), items in sorted(by_recipient.items()):
            oldest = min(items, key=lambda r: r.at)
            due.append(DueAlert(
                Condition.POLICY_REFUSAL, name,
                f"pop3gui: account {name}: the local server refuses {recipient} for a policy reason",
                f"The local mail server refused {recipient} for a policy reason ({len(items)} message(s) of account "
                f"{name}): {oldest.text}",
                oldest.cause or "A rule of the local server, or a domain it does not accept, refuses the recipient.",
                (oldest.fix + " " if oldest.fix else "") + "The alert ends when a later message reaches "
                f"{recipient}, or when the refused message has left the quarantine.",
                oldest.at, recipient))
    return {alert.key: alert for alert in due}


def _expiry_alerts(config: Config, quarantine: list[QuarantineRecord],
                   expiring: Mapping[str, float]) -> list[DueAlert]:
    """One alert per account and moment of listing: the messages, when each goes, and what keeps it."""
    keep = config.delivery.quarantine_keep_days
    batches: dict[tuple[str, float], list[QuarantineRecord]] = {}
    for record in quarantine:
        if record.id in expiring:
            batches.setdefault((record.account, expiring[record.id]), []).append(record)
    due = []
    for (name, listed_at), records in sorted(batches.items()):
        records.sort(key=lambda r: (r.quarantined_at, r.id))
        lines = "; ".join(
            f"{r.id} from {r.sender or '(no sender)'}, subject {r.subject or '(no subject)'!r}, "
            f"removed from {_local(removal_at(r, keep, listed_at)):%Y-%m-%d %H:%M}" for r in records)
        due.append(DueAlert(
            Condition.QUARANTINE_EXPIRY, name,
            f"pop3gui: {len(records)} quarantined message(s) of account {name} will be removed",
            f"{len(records)} quarantined message(s) of account {name} will be removed after {keep} days in "
            f"quarantine: {lines}.",
            f"Quarantined mail is kept {keep} days ([delivery] quarantine_keep_days); each removal is recorded as "
            "event 3016.",
            "Resubmit the messages once their cause is fixed, or export them (the Quarantine page of the "
            "properties window, `pop3gui quarantine export`), or raise [delivery] quarantine_keep_days (0 keeps "
            "quarantined mail until you act). The alert ends when the listed messages have left the quarantine.",
            listed_at, group=f"{listed_at:.0f}"))
    return due


_RECOVERED = {
    Condition.FAILED_CYCLES: "{who} works again",
    Condition.SIGN_IN: "{who} is signed in again",
    Condition.NO_MAIL: "{who} receives mail again",
    Condition.QUARANTINE: "{who} has no message waiting long in quarantine any more",
    Condition.QUARANTINE_EXPIRY: "{who}: the quarantined messages listed for removal have left the quarantine",
    Condition.POLICY_REFUSAL: "{who}: the refusal of {recipient} is settled",
}


def recovered_subject(condition: str, account: str, recipient: str = "") -> str:
    """The subject of the mail that says an alert ended: "pop3gui: recovered: account alice works again"."""
    try:
        pattern = _RECOVERED[Condition(condition)]
    except ValueError:
        pattern = "{who}: the alert ended"
    return "pop3gui: recovered: " + pattern.format(who=_who(account), recipient=recipient)
