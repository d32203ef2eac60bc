"""The health store: each account's recent history, the active alerts and the runner's heartbeat.

SQLite in WAL mode with a busy timeout, in the state folder: the runner
writes it after every cycle while the tray, the window and a ``pop3gui
status`` from cron read it at the same moment.  Every write is one short
transaction.  Times are seconds since the epoch (UTC); what is kept here
survives restarts, so an alert raised before a restart is not raised again
after it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pop3gui.core.errors import StateError
from pop3gui.core.state.paths import touch_private

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS account (
    name TEXT PRIMARY KEY,
    first_seen REAL NOT NULL,            -- the first cycle that ran it: "no mail for N hours" counts from here
    last_cycle REAL,
    last_success REAL,
    last_failure REAL,
    failure_diagnosis TEXT NOT NULL DEFAULT '',
    failure_text TEXT NOT NULL DEFAULT '',
    failure_cause TEXT NOT NULL DEFAULT '',
    failure_fix TEXT NOT NULL DEFAULT '',
    failed_cycles INTEGER NOT NULL DEFAULT 0,   -- in a row; 0 after a cycle that worked
    failing_since REAL,                  -- the first failed cycle of the current row of failures
    last_mail REAL,                      -- a message was downloaded
    sign_in_needed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS alert (
    key TEXT PRIMARY KEY,                -- condition:account[:recipient]
    condition TEXT NOT NULL,
    account TEXT NOT NULL,
    recipient TEXT NOT NULL DEFAULT '',
    severity TEXT NOT NULL,
    subject TEXT NOT NULL,
    text TEXT NOT NULL,
    cause TEXT NOT NULL DEFAULT '',
    fix TEXT NOT NULL DEFAULT '',
    started_at REAL NOT NULL,
    ended_at REAL,                       -- NULL while the condition lasts
    mailed INTEGER NOT NULL DEFAULT 0,   -- the alert mail went out (or none was due)
    recovery_mailed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refusal (
    account TEXT NOT NULL,
    recipient TEXT NOT NULL,
    uid TEXT NOT NULL,
    quarantined INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    cause TEXT NOT NULL DEFAULT '',
    fix TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account, recipient, uid)
);
CREATE TABLE IF NOT EXISTS quarantine_warning (
    id TEXT PRIMARY KEY,                 -- the quarantined message (its quarantine ID)
    account TEXT NOT NULL,
    warned_at REAL NOT NULL              -- when an alert first listed it for removal
);
CREATE TABLE IF NOT EXISTS runner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pid INTEGER NOT NULL DEFAULT 0,
    heartbeat REAL,                      -- when the runner last planned its next cycle
    next_run REAL,                       -- NULL: no cycle is planned (schedule off, no hour chosen)
    note TEXT NOT NULL DEFAULT '',
    last_cycle REAL,
    mail_failing INTEGER NOT NULL DEFAULT 0,  -- alert mail could not be sent; said once until it works
    smtp_sign_in_needed INTEGER NOT NULL DEFAULT 0  -- the [smtp] login's OAuth2 sign-in
);
"""

_WARNING_TABLE = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS quarantine_warning"):].split(";")[0]

_ACCOUNT_COLUMNS = ("name, first_seen, last_cycle, last_success, last_failure, failure_diagnosis, failure_text, "
                    "failure_cause, failure_fix, failed_cycles, failing_since, last_mail, sign_in_needed")
_ALERT_COLUMNS = ("key, condition, account, recipient, severity, subject, text, cause, fix, started_at, ended_at, "
                  "mailed, recovery_mailed")


@dataclass(frozen=True)
class AccountHealth:
    """What the last cycles of one account did."""

    name: str
    first_seen: float
    last_cycle: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    failure_diagnosis: str = ""
    failure_text: str = ""
    failure_cause: str = ""
    failure_fix: str = ""
    failed_cycles: int = 0
    failing_since: float | None = None
    last_mail: float | None = None
    sign_in_needed: bool = False


@dataclass(frozen=True)
class AlertRow:
    """An alert as the store keeps it: active while ``ended_at`` is None."""

    key: str
    condition: str
    account: str
    recipient: str
    severity: str
    subject: str
    text: str
    cause: str
    fix: str
    started_at: float
    ended_at: float | None = None
    mailed: bool = False
    recovery_mailed: bool = False

    @property
    def active(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class Refusal:
    """A recipient the local server refused for a policy reason, until the refusal is settled."""

    account: str
    recipient: str
    uid: str
    quarantined: bool
    at: float
    text: str = ""
    cause: str = ""
    fix: str = ""


@dataclass(frozen=True)
class RunnerState:
    pid: int = 0
    heartbeat: float | None = None
    next_run: float | None = None
    note: str = ""
    last_cycle: float | None = None
    mail_failing: bool = False
    smtp_sign_in_needed: bool = False


def _damaged(path: Path, exc: Exception) -> StateError:
    return StateError(
        f"the health state {path} cannot be read: {exc}",
        cause="The file is damaged, not an SQLite database, or not readable by this user.",
        fix=f"Stop the runner and remove {path} (it only holds alert state and is rebuilt by the next cycles).",
    )


class HealthStore:
    """One connection to the health database; cheap to open, close it when done."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Open (and, with *create*, make) the store; StateError when it cannot be used."""
        self.path = path
        try:
            if create:
                touch_private(path)
            elif not path.exists():
                raise StateError(
                    f"no cycle has run yet: {path} does not exist",
                    cause="The health state is written after each cycle; none has run with this state folder.",
                    fix="Run a cycle (`pop3gui run --once`) or start the runner; check POP3GUI_HOME or --config.")
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
        except OSError as exc:
            raise StateError(
                f"cannot open the health state {path}: {exc.strerror or exc}",
                cause="The state folder does not exist yet (no cycle has run), or is not readable.",
                fix="Run a cycle first (`pop3gui run --once`), or check the state folder's permissions.",
            ) from exc
        except sqlite3.Error as exc:
            raise _damaged(path, exc) from exc
        try:
            self._db.execute("PRAGMA busy_timeout = 10000")
            mode = self._db.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal" and create:
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if create and version < SCHEMA_VERSION:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif create:  # a store of an earlier release of the same schema gains the tables added since
                self._db.execute(_WARNING_TABLE)
            elif version > SCHEMA_VERSION:
                raise StateError(
                    f"the health state {path} was written by a newer pop3gui (schema {version})",
                    cause="A newer version of pop3gui used this state folder.",
                    fix="Use that version, or remove the file (it only holds alert state).")
            elif version < SCHEMA_VERSION:
                raise _damaged(path, ValueError("no health tables in it"))
        except sqlite3.Error as exc:
            self._db.close()
            raise _damaged(path, exc) from exc
        except StateError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HealthStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: one writer at a time, readers never wait (WAL)."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateError(
                f"cannot write the health state {self.path}: {exc}",
                cause="Another process keeps it locked, the disk is full, or the file is damaged.",
                fix=f"Check the free space and the permissions of {self.path.parent}.",
            ) from exc
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise _damaged(self.path, exc) from exc

    # --- accounts -----------------------------------------------------------------

    def accounts(self) -> dict[str, AccountHealth]:
        rows = self._read(f"SELECT {_ACCOUNT_COLUMNS} FROM account ORDER BY name")
        return {str(r[0]): AccountHealth(str(r[0]), float(r[1]), _opt(r[2]), _opt(r[3]), _opt(r[4]), str(r[5]),
                                         str(r[6]), str(r[7]), str(r[8]), int(r[9]), _opt(r[10]), _opt(r[11]), bool(r[12]))
                for r in rows}

    def save_account(self, db: sqlite3.Connection, health: AccountHealth) -> None:
        db.execute(f"INSERT OR REPLACE INTO account ({_ACCOUNT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (health.name, health.first_seen, health.last_cycle, health.last_success, health.last_failure,
                    health.failure_diagnosis, health.failure_text, health.failure_cause, health.failure_fix,
                    health.failed_cycles, health.failing_since, health.last_mail, int(health.sign_in_needed)))

    def forget_accounts(self, db: sqlite3.Connection, keep: set[str]) -> None:
        """Drop the history of accounts no longer in the configuration."""
        for (name,) in db.execute("SELECT name FROM account").fetchall():
            if name not in keep:
                db.execute("DELETE FROM account WHERE name = ?", (name,))

    # --- alerts -------------------------------------------------------------------

    def alerts(self, *, active_only: bool = False) -> list[AlertRow]:
        where = " WHERE ended_at IS NULL" if active_only else ""
        return [_alert(r) for r in self._read(f"SELECT {_ALERT_COLUMNS} FROM alert{where} ORDER BY started_at, key")]

    def insert_alert(self, db: sqlite3.Connection, row: AlertRow) -> None:
        db.execute(f"INSERT OR REPLACE INTO alert ({_ALERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (row.key, row.condition, row.account, row.recipient, row.severity, row.subject, row.text,
                    row.cause, row.fix, row.started_at, row.ended_at, int(row.mailed), int(row.recovery_mailed)))

    def end_alert(self, db: sqlite3.Connection, key: str, at: float, *, mail_due: bool) -> None:
        db.execute("UPDATE alert SET ended_at = ?, recovery_mailed = ? WHERE key = ? AND ended_at IS NULL",
                   (at, int(not mail_due), key))

    def mark_mailed(self, key: str, *, recovery: bool) -> None:
        """The alert's mail (or its recovery's) went out; a recovered alert with both mails sent is done."""
        with self.transaction() as db:
            if recovery:
                db.execute("DELETE FROM alert WHERE key = ? AND ended_at IS NOT NULL", (key,))
            else:
                db.execute("UPDATE alert SET mailed = 1 WHERE key = ?", (key,))

    def drop_finished(self, db: sqlite3.Connection) -> None:
        """Recovered alerts whose mails are all sent (or were never due) are history: the event log keeps it."""
        db.execute("DELETE FROM alert WHERE ended_at IS NOT NULL AND recovery_mailed = 1")

    # --- policy refusals ----------------------------------------------------------

    def refusals(self) -> list[Refusal]:
        rows = self._read("SELECT account, recipient, uid, quarantined, at, text, cause, fix FROM refusal "
                          "ORDER BY at")
        return [Refusal(str(r[0]), str(r[1]), str(r[2]), bool(r[3]), float(r[4]), str(r[5]), str(r[6]),
                        str(r[7])) for r in rows]

    def add_refusal(self, db: sqlite3.Connection, refusal: Refusal) -> None:
        db.execute("INSERT OR REPLACE INTO refusal VALUES (?,?,?,?,?,?,?,?)",
                   (refusal.account, refusal.recipient, refusal.uid, int(refusal.quarantined), refusal.at,
                    refusal.text, refusal.cause, refusal.fix))

    def drop_refusal(self, db: sqlite3.Connection, refusal: Refusal) -> None:
        db.execute("DELETE FROM refusal WHERE account = ? AND recipient = ? AND uid = ?",
                   (refusal.account, refusal.recipient, refusal.uid))

    # --- quarantined messages listed for removal ---------------------------------

    def quarantine_warnings(self) -> dict[str, float]:
        """When an alert first listed each quarantined message for removal, by quarantine ID."""
        try:
            rows = self._db.execute("SELECT id, warned_at FROM quarantine_warning").fetchall()
        except sqlite3.OperationalError:  # a store no runner of this release has written yet: none listed
            return {}
        return {str(r[0]): float(r[1]) for r in rows}

    def note_quarantine_warnings(self, db: sqlite3.Connection, listed: dict[str, str], at: float) -> None:
        """Record that the messages *listed* (ID -> account) are named by an alert now, unless they were before."""
        db.executemany("INSERT OR IGNORE INTO quarantine_warning (id, account, warned_at) VALUES (?,?,?)",
                       [(qid, account, at) for qid, account in listed.items()])

    def forget_quarantine_warnings(self, db: sqlite3.Connection, keep: set[str]) -> None:
        """Drop the warnings of messages that left the quarantine (or are no longer due): a message that comes
        due again is listed by an alert again before it can be removed."""
        for (qid,) in db.execute("SELECT id FROM quarantine_warning").fetchall():
            if qid not in keep:
                db.execute("DELETE FROM quarantine_warning WHERE id = ?", (qid,))

    # --- the runner ---------------------------------------------------------------

    def runner(self) -> RunnerState:
        rows = self._read("SELECT pid, heartbeat, next_run, note, last_cycle, mail_failing, smtp_sign_in_needed "
                          "FROM runner WHERE id = 1")
        if not rows:
            return RunnerState()
        r = rows[0]
        return RunnerState(int(r[0]), _opt(r[1]), _opt(r[2]), str(r[3]), _opt(r[4]), bool(r[5]), bool(r[6]))

    def _runner_row(self, db: sqlite3.Connection) -> None:
        db.execute("INSERT OR IGNORE INTO runner (id) VALUES (1)")

    def set_next_run(self, next_run: float | None, now: float, note: str = "") -> None:
        """The runner's plan and heartbeat: ``pop3gui status`` says "next run 14:15" from it."""
        with self.transaction() as db:
            self._runner_row(db)
            db.execute("UPDATE runner SET pid = ?, heartbeat = ?, next_run = ?, note = ? WHERE id = 1",
                       (os.getpid(), now, next_run, note))

    def set_last_cycle(self, db: sqlite3.Connection, at: float, *, smtp_sign_in_needed: bool) -> None:
        self._runner_row(db)
        db.execute("UPDATE runner SET last_cycle = ?, smtp_sign_in_needed = ? WHERE id = 1",
                   (at, int(smtp_sign_in_needed)))

    def set_mail_failing(self, failing: bool) -> bool:
        """Record whether alert mail fails; True when that is news (so it is said once per outage)."""
        with self.transaction() as db:
            self._runner_row(db)
            before = bool(db.execute("SELECT mail_failing FROM runner WHERE id = 1").fetchone()[0])
            db.execute("UPDATE runner SET mail_failing = ? WHERE id = 1", (int(failing),))
        return before != failing


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _alert(r: tuple[Any, ...]) -> AlertRow:
    return AlertRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), str(r[7]),
                    str(r[8]), float(r[9]), _opt(r[10]), bool(r[11]), bool(r[12]))
