"""What ``pop3gui status`` says: each account's health, the active alerts, the runner's plan.

Read-only: it reads the health store, the quarantine folder, the runner
lock (without taking it from a runner) and, for OAuth2 accounts, whether a
sign-in is kept in the keyring (the provider is not asked).  The verdict
(:func:`verdict`) is the Nagios plugin's: OK, WARNING, CRITICAL, UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Any

from pop3gui.core.config.model import Config
from pop3gui.core.errors import Pop3guiError
from pop3gui.core.health.conditions import CRITICAL_CONDITIONS, Condition
from pop3gui.core.health.store import AccountHealth, AlertRow, HealthStore, RunnerState
from pop3gui.core.state.lock import try_lock_file
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.spool import Quarantine

JSON_VERSION = 1


class State(IntEnum):
    """The Nagios plugin states, as exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def runner_running(lock_file: Path) -> bool:
    """Whether a runner holds the state folder's lock, found without disturbing it.

    The file is opened for appending (a runner's pid in it stays) and a lock
    is tried: refused means a runner holds it; granted means none does, and it
    is let go at once.
    """
    if not lock_file.exists():
        return False
    try:
        with lock_file.open("a+", encoding="ascii") as handle:
            return not try_lock_file(handle)
    except OSError:
        return False


@dataclass(frozen=True)
class AccountState:
    name: str
    enabled: bool
    protocol: str
    auth: str
    health: AccountHealth | None
    quarantined: int
    sign_in: str | None  # OAuth2 accounts: "kept", "missing" or "unknown"; None for a password login


@dataclass(frozen=True)
class Snapshot:
    """Everything ``pop3gui status`` shows, read at one moment."""

    config: Config
    accounts: list[AccountState]
    alerts: list[AlertRow]
    runner: RunnerState
    runner_running: bool
    quarantined: int
    now: datetime
    problems: list[str] = field(default_factory=list)

    def account(self, name: str) -> AccountState:
        return next(a for a in self.accounts if a.name == name)


def read_snapshot(config: Config, paths: Paths, *, sign_in_kept: Callable[[str], bool | None],
                  now: datetime | None = None) -> Snapshot:
    """Read the state; StateError when the health store is missing or cannot be read.

    *sign_in_kept(account)* says whether a sign-in is kept for an OAuth2
    account (None: cannot tell, e.g. a locked keyring).
    """
    with HealthStore(paths.health_db, create=False) as store:
        health = store.accounts()
        alerts = store.alerts(active_only=True)
        runner = store.runner()
    records = list(Quarantine(paths.quarantine_dir).records())
    accounts = []
    for acc in config.accounts:
        kept: str | None = None
        if acc.auth == "oauth2":
            answer = sign_in_kept(acc.name)
            kept = "unknown" if answer is None else "kept" if answer else "missing"
        accounts.append(AccountState(acc.name, acc.enabled, acc.protocol, acc.auth, health.get(acc.name),
                                     sum(r.account == acc.name for r in records), kept))
    return Snapshot(config, accounts, alerts, runner, runner_running(paths.lock_file), len(records),
                    now or datetime.now())


def verdict(snap: Snapshot) -> tuple[State, list[str]]:
    """The state and what makes it so, worst first.

    CRITICAL while an account is in an alert state: it failed at least
    ``[alerts] failed_cycles`` cycles in a row, or needs a sign-in (or an
    error alert is active).  WARNING for a failed cycle below that, a message
    in quarantine, or any other active alert.  OK otherwise.
    """
    threshold = snap.config.alerts.failed_cycles
    critical: list[str] = []
    warning: list[str] = []
    for acc in snap.accounts:
        h = acc.health
        if h is None or not acc.enabled:
            continue
        why = f" ({h.failure_diagnosis})" if h.failure_diagnosis else ""
        if h.sign_in_needed:
            critical.append(f"account {acc.name} needs an OAuth2 sign-in")
        elif threshold and h.failed_cycles >= threshold:
            critical.append(f"account {acc.name} has failed {h.failed_cycles} cycles in a row{why}")
        elif h.failed_cycles:
            warning.append(f"account {acc.name} failed its last {h.failed_cycles} cycle(s){why}")
    if snap.runner.smtp_sign_in_needed:
        critical.append("the local mail server's login needs an OAuth2 sign-in")
    said = " ".join(critical + warning)
    for alert in snap.alerts:
        text = alert.subject.removeprefix("pop3gui: ")
        if alert.account and f"account {alert.account} " in said and alert.condition in CRITICAL_CONDITIONS:
            continue  # already said by the account's line
        (critical if alert.condition in CRITICAL_CONDITIONS else warning).append(text)
    if snap.quarantined and not any(a.condition == Condition.QUARANTINE for a in snap.alerts):
        warning.append(f"{snap.quarantined} message(s) in quarantine")
    if critical:
        return State.CRITICAL, critical + warning
    if warning:
        return State.WARNING, warning
    return State.OK, []


def _when(ts: float | None, now: datetime) -> str:
    if ts is None:
        return "never"
    moment = datetime.fromtimestamp(ts)
    return f"{moment:%H:%M}" if moment.date() == now.date() else f"{moment:%Y-%m-%d %H:%M}"


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def nagios_line(snap: Snapshot) -> tuple[State, str]:
    """``POP3GUI OK - 3 accounts, last run 14:00 | failed=0 quarantined=0 ...`` and its state."""
    state, reasons = verdict(snap)
    enabled = [a for a in snap.accounts if a.enabled]
    failing = sum(1 for a in enabled if a.health is not None and a.health.failed_cycles)
    summary = f"{len(enabled)} account{'s' if len(enabled) != 1 else ''}, last run {_when(snap.runner.last_cycle, snap.now)}"
    if snap.runner.next_run is not None and snap.runner_running:
        summary += f", next run {_when(snap.runner.next_run, snap.now)}"
    text = "; ".join(reasons + [summary]) if reasons else summary
    age = "" if snap.runner.last_cycle is None else f" last_run_age={max(0, int(snap.now.timestamp() - snap.runner.last_cycle))}s"
    perf = f"failed={failing} quarantined={snap.quarantined} alerts={len(snap.alerts)}{age}"
    return state, f"POP3GUI {state.name} - {text} | {perf}"


def unknown_line(reason: str) -> str:
    return f"POP3GUI UNKNOWN - {reason}"


def snapshot_json(snap: Snapshot) -> dict[str, Any]:
    """The document of ``pop3gui status --json``; its keys are a contract (docs/monitoring.md)."""
    state, reasons = verdict(snap)
    accounts = []
    for acc in snap.accounts:
        h = acc.health
        failure = None
        if h is not None and h.last_failure is not None:
            failure = {"time": _iso(h.last_failure), "diagnosis": h.failure_diagnosis or None, "text": h.failure_text,
                       "cause": h.failure_cause, "fix": h.failure_fix}
        accounts.append({
            "name": acc.name, "enabled": acc.enabled, "protocol": acc.protocol, "auth": acc.auth,
            "first_seen": _iso(h.first_seen) if h else None,
            "last_cycle": _iso(h.last_cycle) if h else None,
            "last_success": _iso(h.last_success) if h else None,
            "last_failure": failure,
            "failed_cycles": h.failed_cycles if h else 0,
            "last_mail": _iso(h.last_mail) if h else None,
            "quarantined": acc.quarantined,
            "sign_in": acc.sign_in,
            "sign_in_needed": bool(h and h.sign_in_needed),
        })
    return {
        "version": JSON_VERSION,
        "state": state.name.lower(),
        "reasons": reasons,
        "time": snap.now.astimezone().isoformat(timespec="seconds"),
        "runner": {"running": snap.runner_running, "pid": snap.runner.pid or None,
                   "heartbeat": _iso(snap.runner.heartbeat), "next_run": _iso(snap.runner.next_run),
                   "note": snap.runner.note, "last_cycle": _iso(snap.runner.last_cycle),
                   "smtp_sign_in_needed": snap.runner.smtp_sign_in_needed,
                   "alert_mail_failing": snap.runner.mail_failing},
        "accounts": accounts,
        "quarantined": snap.quarantined,
        "alerts": [{"condition": a.condition, "account": a.account, "recipient": a.recipient,
                    "severity": a.severity, "subject": a.subject, "text": a.text, "cause": a.cause, "fix": a.fix,
                    "started_at": _iso(a.started_at), "mailed": a.mailed} for a in snap.alerts],
    }


def unknown_json(reason: str, fix: str = "") -> dict[str, Any]:
    return {"version": JSON_VERSION, "state": "unknown", "reasons": [reason], "fix": fix, "time": None,
            "runner": None, "accounts": [], "quarantined": None, "alerts": []}


def snapshot_text(snap: Snapshot, config_file: Path) -> str:
    """For a person at a terminal."""
    state, reasons = verdict(snap)
    now = snap.now
    lines = [f"pop3gui status ({config_file}): {state.name}"]
    if snap.runner_running:
        plan = (f"next run {_when(snap.runner.next_run, now)}" if snap.runner.next_run is not None
                else snap.runner.note or "no run planned")
        lines.append(f"Runner: running (pid {snap.runner.pid or '?'}), {plan}; last cycle "
                     f"{_when(snap.runner.last_cycle, now)}.")
    else:
        lines.append(f"Runner: no runner is running; last cycle {_when(snap.runner.last_cycle, now)}.")
    lines.append("Accounts:")
    width = max((len(a.name) for a in snap.accounts), default=0)
    for acc in snap.accounts:
        h = acc.health
        head = f"  {acc.name:<{width}}  "
        if not acc.enabled:
            lines.append(head + "disabled")
            continue
        if h is None:
            lines.append(head + "not run yet")
        elif h.failed_cycles:
            why = f" ({h.failure_diagnosis})" if h.failure_diagnosis else ""
            lines.append(head + f"FAILING: {h.failed_cycles} cycle(s) in a row since {_when(h.failing_since, now)}"
                         f"{why}; last success {_when(h.last_success, now)}")
            if h.failure_text:
                lines.append(" " * (width + 4) + h.failure_text)
            if h.failure_fix:
                lines.append(" " * (width + 4) + "fix: " + h.failure_fix)
        else:
            lines.append(head + f"ok: last success {_when(h.last_success, now)}, last mail {_when(h.last_mail, now)}"
                         + (f"; last failure {_when(h.last_failure, now)} ({h.failure_diagnosis})"
                            if h.last_failure else ""))
        extra = []
        if acc.quarantined:
            extra.append(f"{acc.quarantined} message(s) in quarantine")
        if acc.sign_in is not None:
            extra.append({"kept": "OAuth2 sign-in kept", "missing": "no OAuth2 sign-in kept",
                          "unknown": "OAuth2 sign-in: cannot read the keyring"}[acc.sign_in]
                         + ("; the last cycle needed a new sign-in" if h is not None and h.sign_in_needed else ""))
        if extra:
            lines.append(" " * (width + 4) + "; ".join(extra))
    lines.append(f"Quarantine: {snap.quarantined} message(s).")
    if snap.alerts:
        lines.append(f"Alerts ({len(snap.alerts)} active):")
        for alert in snap.alerts:
            lines.append(f"  [{alert.severity}] since {_when(alert.started_at, now)}: "
                         f"{alert.subject.removeprefix('pop3gui: ')}")
            if alert.fix:
                lines.append(f"      fix: {alert.fix}")
    else:
        lines.append("Alerts: none active.")
    if snap.runner.mail_failing:
        lines.append("Alert mail: the last attempt failed; it is retried after each cycle (see `pop3gui events`).")
    return "\n".join(lines)


def safe_error(exc: Pop3guiError) -> str:
    """One line for a Nagios plugin's output: no line breaks, no perfdata separator."""
    return str(exc).replace("\n", " ").replace("|", "/")
