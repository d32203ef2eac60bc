"""Running ``python -m pop3gui`` as a child process that the test may kill, and reading what it left.

Used by tests/reliability: the runner is started exactly as an administrator's
cron job would start it (``POP3GUI_HOME`` + the Secret Service's D-Bus address
in the environment), so a SIGKILL hits the real process with its real journal,
spool and keyring session.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pop3gui.core.state.journal import SUBMITTING


def cli_env(home: Path) -> dict[str, str]:
    """The environment of a CLI child: the test's (D-Bus address of the Secret Service) + POP3GUI_HOME."""
    return dict(os.environ, POP3GUI_HOME=str(home))


def start_cli(home: Path, *args: str, output: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``python -m pop3gui ARGS`` with its output appended to *output* (or discarded)."""
    sink = open(output, "ab") if output is not None else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        return subprocess.Popen([sys.executable, "-m", "pop3gui", *args], env=cli_env(home),
                                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
    finally:
        if output is not None:
            sink.close()  # type: ignore[union-attr]


@contextmanager
def reaped(proc: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """The child never outlives the block: SIGKILL and wait in ``finally``."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def run_cli(home: Path, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pop3gui", *args], input=stdin, capture_output=True, text=True,
                          env=cli_env(home), timeout=timeout, check=False)


def message_key(message_id: str) -> str:
    """A Message-ID as these tests compare them (the journal keeps it in ``messages.message_id``)."""
    return message_id.strip().lower()


def delivered_ids(messages: Iterable[object]) -> Counter[str]:
    """How many copies of each Message-ID the local server delivered."""
    return Counter(message_key(str(m["Message-ID"] or "")) for m in messages)  # type: ignore[index]


def snapshot_integrity(db: Path) -> tuple[str, list[str]]:
    """``PRAGMA integrity_check`` and the SUBMITTING Message-IDs of a journal left by a killed process.

    The check runs on a copy (database + WAL) so that the next runner, not the
    test, is the one that recovers the real file after the kill.
    """
    if not db.exists():
        return "ok", []
    with tempfile.TemporaryDirectory(prefix="pop3gui-journal-copy-") as tmp:
        copy = Path(tmp) / db.name
        shutil.copyfile(db, copy)
        wal = db.with_name(db.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        con = sqlite3.connect(copy)
        try:
            check = "; ".join(str(r[0]) for r in con.execute("PRAGMA integrity_check").fetchall())
            try:
                keys = [message_key(str(r[0])) for r in con.execute(
                    "SELECT message_id FROM messages WHERE state=?", (SUBMITTING,)).fetchall()]
            except sqlite3.OperationalError:  # killed before the schema was created
                keys = []
        finally:
            con.close()
    return check, keys


def journal_rows(db: Path, account: str) -> dict[str, tuple[str, str]]:
    """uid -> (state, Message-ID) of *account*'s journal rows, read from a copy (see above)."""
    with tempfile.TemporaryDirectory(prefix="pop3gui-journal-copy-") as tmp:
        copy = Path(tmp) / db.name
        shutil.copyfile(db, copy)
        wal = db.with_name(db.name + "-wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        con = sqlite3.connect(copy)
        try:
            if not con.execute("SELECT 1 FROM sqlite_master WHERE name='messages'").fetchone():
                return {}  # killed while the journal was being created: no rows yet
            rows = con.execute("SELECT uid, state, message_id FROM messages WHERE account=?", (account,))
            return {str(uid): (str(state), str(key)) for uid, state, key in rows.fetchall()}
        finally:
            con.close()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
