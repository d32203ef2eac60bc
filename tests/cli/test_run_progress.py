"""``pop3gui run --once`` progress: redrawn lines at a real terminal, plain lines through a pipe."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from pop3gui.cli.run import PlainProgress, TerminalProgress, describe
from pop3gui.core.engine.status import AccountResult, AccountStatus, Phase
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.state.credentials import Credentials
from tests.cli.terminal import run_in_pty
from tests.conftest import Pop3User
from tests.support.office import Office, make_message

_CSI = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def screen(output: str, columns: int = 100) -> list[str]:
    """What a terminal shows after *output*: text wrapped at *columns*, CR, LF, cursor up, erase below."""
    lines: list[str] = [""]
    row = col = 0
    i = 0
    while i < len(output):
        ch = output[i]
        match = _CSI.match(output, i) if ch == "\x1b" else None
        if match:
            n, op = int(match.group(1) or 1), match.group(2)
            if op == "A":
                row = max(0, row - n)
            elif op == "J":
                lines[row] = lines[row][:col]
                del lines[row + 1:]
            elif op == "K":
                lines[row] = lines[row][:col]
            else:
                raise AssertionError(f"unexpected control sequence {match.group(0)!r}")
            i = match.end()
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":  # as a terminal shows it (the tty driver adds the CR)
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        else:
            assert ch >= " ", f"unexpected control character {ch!r}"
            if col == columns:  # the terminal wraps a long line onto the next row
                row, col = row + 1, 0
                if row == len(lines):
                    lines.append("")
            line = lines[row].ljust(col)
            lines[row] = line[:col] + ch + line[col + 1:]
            col += 1
        i += 1
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def two_accounts(office: Office, pop3_user: Pop3User, messages: int = 3) -> None:
    """alice has *messages* to deliver; bob signs in with a wrong password."""
    for n in range(messages):
        office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject=f"m{n}"))
    alice = office.account_for(pop3_user, "alice")
    bob = office.account_for(pop3_user, "bob")
    Credentials().set_pop3_password("bob", "not-the-password")
    office.use(alice, bob)


@pytest.mark.servers
def test_at_a_terminal_one_line_per_account_is_redrawn(office: Office, pop3_user: Pop3User) -> None:
    two_accounts(office, pop3_user)
    code, raw = run_in_pty("run", "--once", columns=100)
    output = raw.decode("utf-8")
    assert code == 1, output
    assert "\x1b[" in output  # redrawn in place
    shown = screen(output)
    assert shown[-2] == "alice: done: 3 delivered", shown
    assert shown[-1].startswith("bob: FAILED: "), shown
    # Warnings and errors (with cause and fix) came out above the block, whole; info events did not.
    above = shown[:-2]
    assert any("ERROR" in line and "[bob]" in line for line in above), above
    assert any(line.startswith("    fix: ") for line in above)
    assert any("Cycle finished" in line for line in above)
    assert not any("Delivered to" in line for line in above)
    assert not any(line.startswith(("alice:", "bob:")) for line in above), "a stale block line was left"
    # It went through its phases on the way.
    assert "alice: connecting" in output and re.search(r"alice: (downloading|delivering), \d of 3 handled", output)
    office.local.wait_for_delivered(3)


@pytest.mark.servers
def test_a_narrow_terminal_gets_cut_lines_not_wrapped_ones(office: Office, pop3_user: Pop3User) -> None:
    two_accounts(office, pop3_user, messages=1)
    code, raw = run_in_pty("run", "--once", columns=30)
    shown = screen(raw.decode("utf-8"), columns=10_000)
    assert code == 1
    block = [line for line in shown if line.startswith(("alice:", "bob:"))]
    assert block == [shown[-2], shown[-1]] and all(len(line) < 30 for line in block), shown


@pytest.mark.servers
def test_through_a_pipe_progress_is_plain_lines(office: Office, pop3_user: Pop3User) -> None:
    two_accounts(office, pop3_user)
    out = subprocess.run([sys.executable, "-m", "pop3gui", "run", "--once"], capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    assert out.returncode == 1
    assert "\x1b" not in out.stdout
    lines = out.stdout.splitlines()
    alice = [line for line in lines if line.startswith("alice: ")]
    assert alice[0] == "alice: connecting" and alice[-1] == "alice: done: 3 delivered", alice
    assert len(alice) <= 5  # each phase once; a quick cycle has no time for in-between lines
    assert any(line.startswith("bob: FAILED: ") for line in lines)
    assert sum("Delivered to alice@contoso.com" in line for line in lines) == 3  # the events, as before


@pytest.mark.servers
def test_quiet_shows_no_progress(office: Office, pop3_user: Pop3User) -> None:
    two_accounts(office, pop3_user, messages=1)
    out = subprocess.run([sys.executable, "-m", "pop3gui", "run", "--once", "-q"], capture_output=True, text=True,
                         env=dict(os.environ), timeout=120)
    assert out.returncode == 1
    assert not any(line.startswith(("alice:", "bob:")) for line in out.stdout.splitlines())
    code, raw = run_in_pty("run", "--once", "-q")
    assert "\x1b[" not in raw.decode() and "alice: done" not in raw.decode()


# --- the views themselves, with a clock of the test's own -------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def status(phase: Phase, done: int = 0, total: int = 40, **result: int) -> AccountStatus:
    res = AccountResult("info@isp", **result) if phase in (Phase.DONE, Phase.FAILED) else None  # type: ignore[arg-type]
    return AccountStatus("info@isp", phase, done, total, result=res)


def test_plain_lines_at_most_every_few_seconds_and_at_each_phase() -> None:
    out, clock = io.StringIO(), Clock()
    view = PlainProgress(out, every=5.0, clock=clock)
    view.on_account_status(status(Phase.CONNECTING))
    for n in range(1, 40):
        clock.now += 0.5
        view.on_account_status(status(Phase.DOWNLOADING, n))
    clock.now += 0.5
    view.on_account_status(status(Phase.DELIVERING, 40))
    view.on_account_status(status(Phase.DONE, 40, delivered=38, quarantined=2))
    lines = out.getvalue().splitlines()
    assert lines[0] == "info@isp: connecting"
    assert lines[1] == "info@isp: downloading, 1 of 40 handled"  # a new phase: said at once
    progress = lines[2:-2]
    assert 3 <= len(progress) <= 4 and all("of 40 handled" in line for line in progress)
    assert lines[-2] == "info@isp: delivering, 40 of 40 handled"
    assert lines[-1] == "info@isp: done: 38 delivered, 2 quarantined"


def test_terminal_block_is_erased_for_an_event_and_drawn_below_it() -> None:
    out, clock = io.StringIO(), Clock()
    view = TerminalProgress(out, ["a", "b"], clock=clock)
    view.on_account_status(AccountStatus("a", Phase.CONNECTING))
    sink = view.sink(lambda event: print(event.one_line(), file=out))
    sink(Event(EventId.MESSAGE_DELIVERED, Severity.INFO, "not shown"))
    sink(Event(EventId.POP3_LOGIN_FAILED, Severity.ERROR, "Login failed.", account="b"))
    view.on_account_status(AccountStatus("a", Phase.DOWNLOADING, 1, 2))
    clock.now += 0.01
    view.on_account_status(AccountStatus("a", Phase.DOWNLOADING, 2, 2))  # too soon: not drawn
    assert "2 of 2" not in out.getvalue()
    view.finish()
    shown = screen(out.getvalue())
    assert shown[-2:] == ["a: downloading, 2 of 2 handled", "b: waiting"]
    assert len(shown) == 3 and "Login failed." in shown[0] and "not shown" not in out.getvalue()


@pytest.mark.parametrize(("st", "text"), [
    (AccountStatus("x", Phase.DONE, result=AccountResult("x")), "done: 0 delivered"),
    (AccountStatus("x", Phase.DONE, result=AccountResult("x", delivered=2, deferred=1)),
     "done: 2 delivered, 1 left for retry"),
    (AccountStatus("x", Phase.FAILED, result=AccountResult("x", failed=True, errors=["Login failed."])),
     "FAILED: Login failed."),
])
def test_describe(st: AccountStatus, text: str) -> None:
    assert describe(st) == text
