"""``pop3gui status``: text, --json and --nagios from a real state folder, in a subprocess as cron runs it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from pop3gui.core.config.model import AccountConfig, AlertsConfig, Config
from pop3gui.core.config.save import save_config
from pop3gui.core.events.model import EventBus
from pop3gui.core.health.monitor import AccountOutcome, HealthMonitor
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.state.paths import Paths

CONFIG = Config(accounts=(AccountConfig(name="alice", host="pop.isp.example", username="a", deliver_to="a@contoso.com"),
                          AccountConfig(name="bob", host="pop.isp.example", username="b", deliver_to="b@contoso.com")),
                alerts=AlertsConfig(no_mail_hours=0))
JSON_KEYS = {"version", "state", "reasons", "time", "runner", "accounts", "quarantined", "alerts"}
ACCOUNT_KEYS = {"name", "enabled", "protocol", "auth", "first_seen", "last_cycle", "last_success", "last_failure",
                "failed_cycles", "last_mail", "quarantined", "sign_in", "sign_in_needed"}


def status(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POP3GUI_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "pop3gui", "status", *args], capture_output=True, text=True, env=env,
                          timeout=120)


async def _none() -> SmtpSubmitter:
    raise AssertionError("no mail")


def cycles(home: Path, *outcomes: list[AccountOutcome]) -> Paths:
    paths = Paths(home / "config.toml", home / "state", home / "logs")
    save_config(CONFIG, paths.config_file)
    now = datetime.now() - timedelta(minutes=len(outcomes))
    for outcome in outcomes:
        asyncio.run(HealthMonitor(CONFIG, paths, EventBus(), open_session=_none, now=lambda: now).after_cycle(outcome))
        now += timedelta(minutes=1)
    return paths


def ok(name: str) -> AccountOutcome:
    return AccountOutcome(name, False, True)


def bad(name: str) -> AccountOutcome:
    return AccountOutcome(name, True, False, "auth_failed", "the POP3 server refused the login", "Wrong password.",
                          "Store the right one.")


def test_ok_names_the_accounts_and_the_last_run(tmp_path: Path) -> None:
    cycles(tmp_path, [ok("alice"), ok("bob")])
    result = status(tmp_path, "--nagios")
    assert result.returncode == 0, result.stdout + result.stderr
    line = result.stdout.strip()
    assert line.startswith("POP3GUI OK - 2 accounts, last run ") and "\n" not in line
    assert line.split(" | ")[1].startswith("failed=0 quarantined=0 alerts=0 last_run_age=")


def test_one_failed_cycle_warns_and_the_threshold_is_critical(tmp_path: Path) -> None:
    cycles(tmp_path, [ok("alice"), bad("bob")])
    warning = status(tmp_path, "--nagios")
    assert warning.returncode == 1
    assert warning.stdout.startswith("POP3GUI WARNING - account bob failed its last 1 cycle(s) (auth_failed)")
    cycles(tmp_path, [bad("bob")], [bad("bob")])
    critical = status(tmp_path, "--nagios")
    assert critical.returncode == 2
    assert critical.stdout.startswith("POP3GUI CRITICAL - account bob has failed 3 cycles in a row (auth_failed)")
    text = status(tmp_path)
    assert text.returncode == 2
    assert "FAILING: 3 cycle(s) in a row" in text.stdout and "fix: Store the right one." in text.stdout
    assert "no runner is running" in text.stdout


def test_json_is_one_document_with_stable_keys(tmp_path: Path) -> None:
    cycles(tmp_path, [ok("alice"), bad("bob")], [bad("bob")], [bad("bob")])
    result = status(tmp_path, "--json")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    assert set(document) == JSON_KEYS and document["state"] == "critical" and document["version"] == 1
    assert all(set(a) == ACCOUNT_KEYS for a in document["accounts"])
    bob = next(a for a in document["accounts"] if a["name"] == "bob")
    assert bob["failed_cycles"] == 3 and bob["last_failure"]["diagnosis"] == "auth_failed"
    assert bob["sign_in"] is None  # a password login
    assert [a["condition"] for a in document["alerts"]] == ["failed_cycles"]
    assert set(document["alerts"][0]) == {"condition", "account", "recipient", "severity", "subject", "text",
                                          "cause", "fix", "started_at", "mailed"}
    assert document["runner"]["running"] is False


def test_a_runner_holding_the_lock_is_seen_and_left_alone(tmp_path: Path) -> None:
    paths = cycles(tmp_path, [ok("alice"), ok("bob")])
    from pop3gui.core.health.store import HealthStore

    with HealthStore(paths.health_db) as store:
        store.set_next_run((datetime.now() + timedelta(minutes=15)).timestamp(), datetime.now().timestamp())
    with RunnerLock(paths.lock_file):
        result = status(tmp_path)
        assert "Runner: running (pid " in result.stdout and "next run " in result.stdout
        assert json.loads(status(tmp_path, "--json").stdout)["runner"]["running"] is True
        assert paths.lock_file.read_text() == str(os.getpid())


def test_unknown_without_a_config_or_with_a_damaged_state(tmp_path: Path) -> None:
    none = status(tmp_path / "nothing", "--nagios")
    assert none.returncode == 3 and none.stdout.startswith("POP3GUI UNKNOWN - ") and "Traceback" not in none.stderr
    paths = cycles(tmp_path, [ok("alice")])
    paths.health_db.write_bytes(b"not a database" * 500)
    for suffix in ("-wal", "-shm"):
        Path(str(paths.health_db) + suffix).unlink(missing_ok=True)
    damaged = status(tmp_path, "--nagios")
    assert damaged.returncode == 3 and "cannot be read" in damaged.stdout and "Traceback" not in damaged.stderr
    as_json = status(tmp_path, "--json")
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["state"] == "unknown"
    save_config(CONFIG, tmp_path / "fresh" / "config.toml")
    never_ran = status(tmp_path / "fresh", "--nagios")
    assert never_ran.returncode == 3 and "no cycle has run" in never_ran.stdout
