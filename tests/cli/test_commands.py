"""The command line as an admin uses it: check, run --once, events, secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pop3gui.core.config.model import LoggingConfig
from tests.conftest import Pop3User
from tests.support.office import Office, make_message


def pop3gui(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pop3gui", *args], input=stdin, capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=120)


@pytest.mark.servers
def test_check_flags_the_kb_failure_before_any_mail_flows(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com"))

    out = pop3gui("check")

    assert out.returncode == 1, out.stdout + out.stderr
    assert "[ok] account 'alice': logged in" in out.stdout
    assert "1 message(s)" in out.stdout
    assert "[PROBLEM] alice@fabrikam.com" in out.stdout
    assert "554 5.7.1" in out.stdout and "fix: Add fabrikam.com" in out.stdout
    assert len(office.isp.messages(pop3_user.name)) == 1  # check sends and deletes nothing
    assert office.local.delivered() == []


@pytest.mark.servers
def test_check_passes_on_a_good_setup(office: Office, pop3_user: Pop3User) -> None:
    office.use(office.account_for(pop3_user, "alice"))
    out = pop3gui("check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All checks passed." in out.stdout


@pytest.mark.servers
def test_run_once_delivers_and_events_shows_it(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="via cli"))
    office.use(office.account_for(pop3_user, "alice"))

    out = pop3gui("run", "--once")

    assert out.returncode == 0, out.stdout + out.stderr
    assert "Delivered to alice@contoso.com" in out.stdout
    office.local.wait_for_delivered(1)
    events = [json.loads(line) for line in pop3gui("events", "--json", "--limit", "100").stdout.splitlines()]
    delivered = [e for e in events if e["id"] == 3002]
    assert delivered and delivered[0]["subject"] == "via cli" and delivered[0]["account"] == "alice"
    assert delivered[0]["outcome"] == "delivered" and delivered[0]["recipient"] == "alice@contoso.com"
    assert delivered[0]["diagnosis"] is None and delivered[0]["reply"] is None
    assert (office.paths.log_file).read_text().count("3002") == 1


@pytest.mark.servers
def test_run_once_exits_1_when_a_recipient_is_refused(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example"))
    office.use(office.account_for(pop3_user, "alice", deliver_to="ghost@contoso.com"))
    out = pop3gui("run", "--once")
    assert out.returncode == 1
    assert "5.1.1" in out.stdout and "fix:" in out.stdout
    events = [json.loads(line) for line in pop3gui("events", "--json", "--limit", "100").stdout.splitlines()]
    [refused] = [e for e in events if e["id"] == 4001]
    assert refused["recipient"] == "ghost@contoso.com" and refused["diagnosis"] == "unknown_user"
    assert refused["reply"]["code"] == 550 and refused["reply"]["enhanced"] == "5.1.1"
    assert refused["outcome"] is None
    [ended] = [e for e in events if e["outcome"] is not None]  # the one event that ends the message's handling
    assert ended["id"] in (4003, 4004) and ended["diagnosis"] == "unknown_user"


@pytest.mark.servers
def test_secret_set_from_stdin_and_delete(office: Office, pop3_user: Pop3User) -> None:
    from pop3gui.core.state.credentials import Credentials

    office.use(office.account_for(pop3_user, "alice"))
    out = pop3gui("secret", "set", "alice", stdin="new-secret-value\n")
    assert out.returncode == 0, out.stderr
    assert "new-secret-value" not in out.stdout + out.stderr
    assert Credentials().pop3_password("alice") == "new-secret-value"
    assert pop3gui("secret", "delete", "alice").returncode == 0
    assert not Credentials().has_pop3_password("alice")
    missing = pop3gui("run", "--once")
    assert missing.returncode == 1 and "pop3gui secret set alice" in missing.stdout


def test_config_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    env = dict(os.environ, POP3GUI_HOME=str(tmp_path))
    (tmp_path / "config.toml").write_text("[schedule]\ninterval_min = 0\n")
    out = pop3gui("run", "--once", env=env)
    assert out.returncode == 2
    assert "schedule.interval_min" in out.stderr and "between 1 and 1440" in out.stderr
    assert "Traceback" not in out.stderr
    missing = pop3gui("--config", str(tmp_path / "none.toml"), "check", env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Fix:" in missing.stderr


def test_no_keyring_backend_is_explained(tmp_path: Path) -> None:
    env = dict(os.environ, POP3GUI_HOME=str(tmp_path), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    out = pop3gui("secret", "set", "alice", stdin="pw\n", env=env)
    assert out.returncode == 1
    assert "no usable keyring" in out.stderr
    assert "gnome-keyring" in out.stderr and "PYTHON_KEYRING_BACKEND" in out.stderr
    assert "Traceback" not in out.stderr
    assert not any(tmp_path.rglob("*")), "nothing may be written in plaintext instead"


def test_version_and_help() -> None:
    from pop3gui import __version__

    assert pop3gui("--version").stdout.strip() == f"pop3gui {__version__}"
    for command in ("run", "check", "events", "secret"):
        out = pop3gui(command, "--help")
        assert out.returncode == 0 and "usage: pop3gui" in out.stdout


def test_headless_commands_do_not_import_qt() -> None:
    code = "import sys, pop3gui.cli, pop3gui.core.engine.cycle, pop3gui.core.engine.preflight; " \
           "print(any(m.startswith(('PySide6', 'qasync')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_window_commands_without_a_screen_explain_instead_of_crashing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    env["POP3GUI_HOME"] = str(tmp_path)
    for command in ([], ["tray"]):
        out = pop3gui(*command, env=env)
        assert out.returncode == 1, out.stderr
        assert "no screen" in out.stderr and "pop3gui demo --headless --once" in out.stderr
    demo = pop3gui("demo", "--once", env=dict(env, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "running the demo in the terminal" in demo.stdout and "The demo ran as designed" in demo.stdout


@pytest.mark.servers
def test_check_examines_an_imap_account_and_changes_nothing(office: Office, pop3_user: Pop3User) -> None:
    office.imap.create_folder(pop3_user.name, "Sales")
    office.imap.deliver(pop3_user.name, make_message(to="x@isp.example"), "Sales")
    office.use(office.imap_account_for(pop3_user, "shared", folders=("INBOX", "Sales"), after_delivery="move",
                                       move_to="Delivered"))
    out = pop3gui("check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[ok] account 'shared': logged in" in out.stdout and "(IMAP)" in out.stdout
    assert "Sales: 1 message(s)" in out.stdout and "INBOX: 0 message(s)" in out.stdout
    assert "handled mail moves to Delivered (created at the first move)" in out.stdout
    assert len(office.imap.messages(pop3_user.name, "Sales")) == 1
    assert office.imap.folders(pop3_user.name) == ["INBOX", "Sales"]  # nothing created by a check


@pytest.mark.servers
def test_check_names_a_missing_imap_folder_with_the_fix(office: Office, pop3_user: Pop3User) -> None:
    office.use(office.imap_account_for(pop3_user, "shared", folders=("Archiv",)))
    out = pop3gui("check")
    assert out.returncode == 1
    assert "[PROBLEM] account 'shared'" in out.stdout and "no folder 'Archiv'" in out.stdout
    assert "press Test" in out.stdout


@pytest.mark.servers
def test_run_once_fetches_an_imap_folder_and_does_not_wait_for_push(office: Office, pop3_user: Pop3User) -> None:
    office.imap.deliver(pop3_user.name, make_message(to="x@isp.example", subject="over imap"))
    office.use(office.imap_account_for(pop3_user, "shared", idle=True))
    out = pop3gui("run", "--once")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Delivered to alice@contoso.com" in out.stdout
    assert "Waiting for new mail" not in out.stdout and "IDLE" not in out.stdout
    assert office.imap.messages(pop3_user.name) == []
    assert office.local.wait_for_delivered(1)[0]["Subject"] == "over imap"


@pytest.mark.servers
def test_run_delivers_pushed_imap_mail_within_seconds(office: Office, pop3_user: Pop3User) -> None:
    office.use(office.imap_account_for(pop3_user, "shared", idle=True), logging=LoggingConfig(level="debug"))
    runner = subprocess.Popen([sys.executable, "-m", "pop3gui", "run", "--verbose"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(runner.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not any("Waiting for new mail in INBOX" in line for line in list(lines)):  # first cycle done
            assert time.monotonic() < deadline and runner.poll() is None, "".join(lines)
            time.sleep(0.05)
        office.imap.deliver(pop3_user.name, make_message(to="x@isp.example", subject="pushed"))
        delivered = office.local.wait_for_delivered(1, timeout=10)  # the schedule's interval is 15 minutes
        assert delivered[0]["Subject"] == "pushed"
    finally:
        runner.terminate()
        runner.wait(timeout=30)
        reader.join(timeout=10)
        assert runner.stdout is not None
        runner.stdout.close()
    assert runner.returncode == 0, "".join(lines)
