"""The journal: what became of each POP3 message, written before any DELE.

SQLite in WAL mode.  An outcome is committed the moment it is known
(:meth:`Journal.finish`), so it survives the connector being killed at any
later point; it reaches the disk itself (fsync) at :meth:`Journal.make_durable`,
once for all outcomes so far, which the worker calls before it sends any DELE.
So a power cut can only cost a duplicate (an outcome not yet on disk means the
message is still on the POP3 server and is submitted again), never a message.
One fsync per session instead of one per message is most of the connector's
per-message cost otherwise (docs/benchmarks.md).

A message whose row still says ``submitting`` was interrupted between download
and outcome; it is submitted again (a duplicate is possible, loss is not).

Deliveries are remembered per message key and recipient across all accounts,
so one message fetched from two mailboxes reaches each recipient once. The key
is the message's content fingerprint (``KEY_PREFIX``, see
:mod:`pop3gui.core.mail.fingerprint`); journals written before it keyed deliveries
by Message-ID per account, and those rows are only consulted for the very
message that wrote them (:meth:`Journal.delivered_under_old_key`), so they can
never hold back a distinct message that shares the Message-ID.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pop3gui.core.errors import StateError
from pop3gui.core.state.paths import touch_private
from pop3gui.core.state.sqlite_space import convert_to_incremental, pause_after, reclaim, trim_wal, upkeep_connection

DUPLICATE_WINDOW_DAYS = 14
KEEP_DELIVERIES_DAYS = 2 * DUPLICATE_WINDOW_DAYS  # delivery rows of messages gone from every server live this long
_DAY = 86400.0
KEY_PREFIX = "v2:"  # message keys written since deliveries are keyed by content
UID_KEY_PREFIX = KEY_PREFIX + "uidl:"  # keys of messages nothing but their UIDL identifies
SCHEMA_VERSION = 3

# Message states
SUBMITTING = "submitting"  # downloaded, submission in progress or interrupted
HANDLED = "handled"  # outcome recorded; may be deleted on the server
DEFERRED = "deferred"  # the local server said "later": retried next cycle, not an interruption
OVERSIZE = "oversize"  # bigger than the limit; stays on the server, event emitted once
DELETING = "deleting"  # DELE sent; the QUIT that commits it may not have been answered
FLAGGED = "flagged"  # IMAP: \Deleted set (and copied, when moving); only the expunge remains

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    account TEXT NOT NULL,
    uid TEXT NOT NULL,
    message_key TEXT NOT NULL,
    size INTEGER NOT NULL,
    state TEXT NOT NULL,
    outcome TEXT NOT NULL DEFAULT '',
    first_seen REAL NOT NULL,
    handled_at REAL,
    message_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (account, uid)
);
CREATE TABLE IF NOT EXISTS deliveries (
    account TEXT NOT NULL,
    message_key TEXT NOT NULL,
    recipient TEXT NOT NULL,
    delivered_at REAL NOT NULL,
    PRIMARY KEY (account, message_key, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_by_key ON deliveries (message_key, recipient, delivered_at);
CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (delivered_at);
CREATE INDEX IF NOT EXISTS messages_by_key ON messages (message_key);
CREATE TABLE IF NOT EXISTS sync_marks (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    synced_at REAL NOT NULL
);
"""


_RECORD_COLUMNS = "SELECT account, uid, message_key, size, state, outcome, first_seen, handled_at, message_id"


@dataclass(frozen=True)
class MessageRecord:
    account: str
    uid: str
    message_key: str
    size: int
    state: str
    outcome: str
    first_seen: float
    handled_at: float | None
    message_id: str = ""


def uid_key(account: str, uid: str, fingerprint: str) -> str:
    """The key of a message only its UIDL and content identify (no Message-ID, no Date).

    The same text may well be sent again (a scanner, an alert), so only a retry
    of this very POP3 message matches it, and its deliveries are forgotten with
    the message (:meth:`Journal.forget`): a later message listed under the same
    UIDL is never held back.
    """
    return f"{UID_KEY_PREFIX}{len(account)}:{account}:{len(uid)}:{uid}:{fingerprint}"


@dataclass(frozen=True)
class EarlierDelivery:
    """Where and when a message already reached a recipient."""

    account: str
    delivered_at: float


class Journal:
    """Durable per-message outcomes and per-recipient deliveries."""

    def __init__(self, path: Path) -> None:
        try:
            touch_private(path)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
            # A new journal gives the pages of pruned rows back (prune_journal); set before any table exists.
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("PRAGMA journal_mode=WAL")
            # Commits write the WAL without fsync (a killed process keeps them); a
            # durable write switches to FULL for its commit, which fsyncs the WAL
            # file and with it everything committed before.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA journal_size_limit=4194304")  # the WAL shrinks back after a large prune
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(
                f"cannot open the journal {path}: {exc}",
                cause="The state folder is missing, not writable, or the disk is full.",
                fix="Check the folder's permissions and free space (or set POP3GUI_HOME to a writable folder).",
            ) from exc
        self.now = time.time  # replaceable in tests of day-based rules
        self.unsynced = 0  # outcomes committed since the last make_durable()

    def _migrate(self) -> None:
        """Create the schema, or bring a journal written by an earlier version up to date."""
        db = self._db
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version >= SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            columns = {str(row[1]) for row in db.execute("PRAGMA table_info(messages)")}
            if columns and "message_id" not in columns:
                db.execute("ALTER TABLE messages ADD COLUMN message_id TEXT NOT NULL DEFAULT ''")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()

    def _write(self, sql_and_args: Iterable[tuple[str, tuple[object, ...]]], *, durable: bool = True) -> None:
        """Run statements in one transaction; a durable one is on disk when this returns."""
        db = self._db
        statements = list(sql_and_args)
        try:
            if durable:
                db.execute("PRAGMA synchronous=FULL")
            if len(statements) == 1:  # one statement is its own transaction
                db.execute(*statements[0])
            else:
                db.execute("BEGIN IMMEDIATE")
                for sql, args in statements:
                    db.execute(sql, args)
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StateError(
                f"cannot write the journal: {exc}",
                cause="The disk is full or the state folder became unwritable.",
                fix="Free disk space; the message stays on the POP3 server until this works.",
            ) from exc
        finally:
            if durable:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("PRAGMA synchronous=NORMAL")

    def get(self, account: str, uid: str) -> MessageRecord | None:
        row = self._db.execute(
            _RECORD_COLUMNS + " FROM messages WHERE account=? AND uid=?",
            (account, uid),
        ).fetchone()
        return MessageRecord(*row) if row else None

    def records(self, account: str) -> dict[str, MessageRecord]:
        rows = self._db.execute(
            _RECORD_COLUMNS + " FROM messages WHERE account=?",
            (account,),
        ).fetchall()
        return {r[1]: MessageRecord(*r) for r in rows}

    def begin(self, account: str, uid: str, message_key: str, size: int, *, message_id: str = "") -> None:
        """Note that a message is being submitted (so an interruption is visible later)."""
        self._write([(
            "INSERT INTO messages (account, uid, message_key, size, state, first_seen, message_id)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT(account, uid) DO UPDATE SET state=excluded.state,"
            # An old-format key of a message in progress stays until its outcome: it finds the
            # recipients an earlier version already delivered it to (delivered_under_old_key).
            " message_key=CASE WHEN messages.message_key NOT LIKE ? AND messages.message_key<>''"
            " AND messages.state IN (?, ?) THEN messages.message_key ELSE excluded.message_key END,"
            " message_id=excluded.message_id",
            (account, uid, message_key, size, SUBMITTING, self.now(), message_id, KEY_PREFIX + "%",
             SUBMITTING, DEFERRED),
        )], durable=False)

    def defer(self, account: str, uid: str) -> None:
        """The message stays on the server for a retry; that is a known outcome, not a crash."""
        self._write([("UPDATE messages SET state=? WHERE account=? AND uid=?", (DEFERRED, account, uid))])

    def record_deliveries(self, account: str, message_key: str, recipients: Iterable[str]) -> None:
        """Remember recipients the local server accepted (partial progress of a message)."""
        now = self.now()
        self._write([
            ("INSERT OR REPLACE INTO deliveries VALUES (?,?,?,?)", (account, message_key, r.lower(), now))
            for r in recipients
        ])

    def finish(self, account: str, uid: str, message_key: str, size: int, outcome: str,
               delivered: Iterable[str] = (), *, message_id: str = "") -> None:
        """Record the message as handled, with its accepted recipients, in one transaction."""
        now = self.now()
        statements: list[tuple[str, tuple[object, ...]]] = [
            ("INSERT OR REPLACE INTO deliveries VALUES (?,?,?,?)", (account, message_key, r.lower(), now))
            for r in delivered
        ]
        statements.append((
            "INSERT INTO messages (account, uid, message_key, size, state, outcome, first_seen, handled_at,"
            " message_id) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(account, uid) DO UPDATE SET"
            " state=excluded.state, outcome=excluded.outcome, handled_at=excluded.handled_at,"
            " message_key=excluded.message_key, message_id=excluded.message_id",
            (account, uid, message_key, size, HANDLED, outcome, now, now, message_id),
        ))
        self._write(statements, durable=False)
        self.unsynced += 1

    def make_durable(self) -> None:
        """Put every outcome committed so far on disk (one fsync); call before any DELE."""
        self._write([("INSERT OR REPLACE INTO sync_marks (id, synced_at) VALUES (1, ?)", (self.now(),))])
        self.unsynced = 0

    def note_oversize(self, account: str, uid: str, size: int) -> bool:
        """Mark a too-big message; True the first time (so its event is emitted once)."""
        rec = self.get(account, uid)
        if rec is not None and rec.state == OVERSIZE:
            return False
        self._write([(
            "INSERT OR REPLACE INTO messages (account, uid, message_key, size, state, first_seen)"
            " VALUES (?,?,?,?,?,?)",
            (account, uid, "", size, OVERSIZE, self.now()),
        )])
        return True

    def earlier_delivery(self, message_key: str, recipient: str,
                         days: int = DUPLICATE_WINDOW_DAYS) -> EarlierDelivery | None:
        """Did this very message (same key) reach this recipient lately, from any account?"""
        row = self._db.execute(
            "SELECT account, delivered_at FROM deliveries WHERE message_key=? AND recipient=? AND delivered_at>=?"
            " ORDER BY delivered_at LIMIT 1",
            (message_key, recipient.lower(), self.now() - days * _DAY),
        ).fetchone()
        return EarlierDelivery(str(row[0]), float(row[1])) if row else None

    def delivered_under_old_key(self, account: str, uid: str, recipient: str) -> bool:
        """Did an earlier version, keying by Message-ID, record this recipient for this very message?

        Only the partial progress of the same POP3 message (account + UIDL) is
        looked up this way, so a row of the old format can spare a recipient a
        second copy of an interrupted message but never hold back another one.
        """
        row = self._db.execute(
            "SELECT 1 FROM messages m JOIN deliveries d ON d.account=m.account AND d.message_key=m.message_key"
            " WHERE m.account=? AND m.uid=? AND m.message_key NOT LIKE ? AND m.message_key<>''"
            " AND d.recipient=?",
            (account, uid, KEY_PREFIX + "%", recipient.lower()),
        ).fetchone()
        return row is not None

    def forget(self, account: str, uids: Iterable[str]) -> None:
        """Drop message rows for UIDs the server has just deleted (QUIT answered +OK).

        RFC 1939 lets a server reuse a deleted message's UIDL: a later message
        listed under it is new, not this handled one. Delivery rows stay for the
        duplicate window, except those of a message only its UIDL identified.
        """
        self._write(self._forgetting(account, list(uids)), durable=False)

    def _forgetting(self, account: str, uids: list[str]) -> list[tuple[str, tuple[object, ...]]]:
        statements: list[tuple[str, tuple[object, ...]]] = []
        for uid in uids:
            statements.append((
                "DELETE FROM deliveries WHERE message_key=(SELECT message_key FROM messages WHERE account=? AND uid=?)"
                " AND substr(message_key, 1, ?)=?", (account, uid, len(UID_KEY_PREFIX), UID_KEY_PREFIX)))
            statements.append(("DELETE FROM messages WHERE account=? AND uid=?", (account, uid)))
        return statements

    def mark_deleting(self, account: str, uids: Iterable[str]) -> None:
        """Note that DELE is about to go out for these handled messages.

        Until the QUIT that commits it is answered, the server may still hold the
        message, or may already list a new message under its UIDL (RFC 1939 allows
        reuse): a UIDL listed again in this state is downloaded, and its content
        decides (:meth:`restore_handled`).
        """
        self._write([("UPDATE messages SET state=? WHERE account=? AND uid=? AND state=?",
                      (DELETING, account, uid, HANDLED)) for uid in uids], durable=False)

    def renew_deliveries(self, account: str, uids: Iterable[str]) -> None:
        """The deliveries of these messages count as made now: an IMAP folder renumbered them, and each will
        be downloaded once more and must be known by its content, however long ago it was delivered."""
        now = self.now()
        self._write([("UPDATE deliveries SET delivered_at=? WHERE message_key=(SELECT message_key FROM messages"
                      " WHERE account=? AND uid=?)", (now, account, uid)) for uid in uids], durable=False)

    def mark_flagged(self, account: str, uids: Iterable[str]) -> None:
        """IMAP: these messages carry \\Deleted (and were copied, when moving); only their expunge remains.

        Made durable at once: a copy made must not be made again.
        """
        self._write([("UPDATE messages SET state=? WHERE account=? AND uid=? AND state IN (?, ?)",
                      (FLAGGED, account, uid, HANDLED, DELETING)) for uid in uids])

    def restore_handled(self, account: str, uid: str) -> None:
        """The message listed again after a DELE is the one already handled: due for DELE again."""
        self._write([("UPDATE messages SET state=? WHERE account=? AND uid=? AND state=?",
                      (HANDLED, account, uid, DELETING))], durable=False)

    def forget_absent(self, account: str, present: Iterable[str]) -> int:
        """Drop message rows for UIDs the server no longer lists (they were deleted).

        Delivery rows stay for the duplicate window, so a re-sent copy is still caught.
        """
        keep = set(present)
        gone = [uid for uid in self.records(account) if uid not in keep]
        self._write(self._forgetting(account, gone) + self._pruning(), durable=False)  # forgetting can wait
        return len(gone)

    def prune_deliveries(self) -> None:
        """Drop delivery rows past twice the duplicate window (an IMAP session's share of forget_absent)."""
        self._write(self._pruning(), durable=False)

    def _pruning(self) -> list[tuple[str, tuple[object, ...]]]:
        """Old delivery rows go, except those of messages still on a server (kept mail may be renumbered)."""
        return [("DELETE FROM deliveries WHERE delivered_at<? AND message_key NOT IN"
                 " (SELECT message_key FROM messages)", (self.now() - KEEP_DELIVERIES_DAYS * _DAY,))]


@dataclass(frozen=True)
class JournalPrune:
    """What one pruning step of the journal did."""

    deliveries: int = 0  # delivery rows removed
    pages_freed: int = 0
    backlog: bool = False  # the step reached its bound: more is due


def prune_journal(path: Path, now: float, *, step_rows: int = 20_000, batch_rows: int = 200,
                  vacuum_pages: int = 16_384) -> JournalPrune:
    """One bounded pruning step on a connection of its own (blocking: run it in a worker thread).

    Removes delivery rows older than :data:`KEEP_DELIVERIES_DAYS` whose message
    no server lists any more, whatever the protocol or the account's settings:
    a row of a message still on a server (its ``messages`` row is there) stays,
    so kept mail that a server renumbers is still known by its content.  The
    rows are found by a read, then deleted in short transactions that check
    both conditions again (a message may have been listed again meanwhile);
    like :meth:`Journal.forget`, these deletions need no fsync of their own.
    Then the freed pages are given back to the disk.
    """
    if not path.exists():
        return JournalPrune()
    db = upkeep_connection(path)
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='index' AND name='deliveries_by_time'").fetchone():
            return JournalPrune()  # not yet migrated by this release's Journal: the next cycle's step will do
        cutoff = now - KEEP_DELIVERIES_DAYS * _DAY
        removed = scanned = 0
        last: tuple[float, int] = (float("-inf"), 0)
        while scanned < step_rows:
            want = min(batch_rows, step_rows - scanned)
            rows = db.execute(
                "SELECT delivered_at, rowid FROM deliveries d WHERE delivered_at < ? AND (delivered_at, rowid) > (?, ?)"
                " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.message_key = d.message_key)"
                " ORDER BY delivered_at, rowid LIMIT ?", (cutoff, *last, want)).fetchall()
            if not rows:
                break
            last = (float(rows[-1][0]), int(rows[-1][1]))
            started = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            try:
                gone = db.executemany(
                    "DELETE FROM deliveries WHERE rowid = ? AND delivered_at < ? AND NOT EXISTS"
                    " (SELECT 1 FROM messages m WHERE m.message_key = deliveries.message_key)",
                    [(int(r[1]), cutoff) for r in rows]).rowcount
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            removed += max(gone, 0)
            scanned += len(rows)
            pause_after(started)
            if len(rows) < want:
                break
        convert_to_incremental(db, path)
        freed = reclaim(db, vacuum_pages)
        trim_wal(db, path)
        return JournalPrune(removed, freed, scanned >= step_rows)
    finally:
        db.close()
