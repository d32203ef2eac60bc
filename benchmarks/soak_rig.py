"""The soak rig: real servers, a fault plan, the runner as a child process, samples and the verdict.

Used by benchmarks/soak.py (2,000 cycles, a second apart) and by
tests/reliability/test_soak.py (200 cycles back to back).  Needs root (the
private Dovecot and Postfix of the test suite, tests/servers/).

The office: Dovecot (plain POP3 on loopback) with three mailboxes and Postfix
accepting contoso.com.  ``alice`` and ``bob`` deliver to alice@ and
bob@contoso.com; ``carol`` delivers to carol@fabrikam.com, which Postfix
refuses for a policy reason (554 5.7.1 relay access denied), and with no
undeliverable mailbox her messages go to quarantine.  Alert mail goes to
admin@contoso.com.  Passwords come from benchmarks/bench_keyring.py.

The plan repeats every *period* cycles (see :func:`plan`): mail on every other
cycle, then in each period a stretch where bob's password is wrong on the
server (refused login), a stretch where Postfix is stopped (local server
down), one message for carol (quarantined) and, later, the admin emptying the
quarantine.
"""

from __future__ import annotations

import csv
import json
import os
import selectors
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers.dovecot import DovecotServer, process_gone, wait_for_port  # noqa: E402
from tests.servers.postfix import PostfixServer  # noqa: E402
from tests.support.x_server import display_with_tray  # noqa: E402

MIB = 1024 * 1024  # pop3gui's [events] max_mb counts in these

RUNNER = BENCH_DIR / "soak_runner.py"
PASSWORD = "soak-password"
WRONG_PASSWORD = "soak-password-changed"
ADMIN = "admin@contoso.com"
USERS = {"alice": "alice@contoso.com", "bob": "bob@contoso.com", "carol": "carol@fabrikam.com"}

# What happens before a cycle (the CSV's "fault" column).
MAIL = "mail"
LOGIN_REFUSED = "login-refused"
LOCAL_DOWN = "local-down"
QUARANTINE = "quarantine"


@dataclass(frozen=True)
class Step:
    """What the harness does before cycle *n*."""

    mail: bool  # one message each for alice and bob
    login_refused: bool  # bob's password on the server differs from the stored one
    local_down: bool  # Postfix is stopped
    quarantine: bool  # one message for carol, refused by policy: quarantined
    clear_quarantine: bool  # the admin empties the quarantine

    @property
    def faults(self) -> str:
        names = [LOGIN_REFUSED if self.login_refused else "", LOCAL_DOWN if self.local_down else "",
                 QUARANTINE if self.quarantine else ""]
        return "+".join(n for n in names if n)

    @property
    def quiet(self) -> bool:
        """No fault now: the cycles the constant counts are compared on."""
        return not (self.login_refused or self.local_down or self.quarantine)


def plan(n: int, period: int) -> Step:
    """Cycle *n*'s step in a plan repeating every *period* cycles (each fault stretch is 5 % of it)."""
    phase = n % period
    stretch = max(2, period // 20)
    return Step(
        mail=n % 2 == 0,
        login_refused=period // 4 <= phase < period // 4 + stretch,
        local_down=period // 2 <= phase < period // 2 + stretch,
        quarantine=phase == (3 * period) // 4,
        clear_quarantine=phase == (9 * period) // 10,
    )


def message(user: str, n: int, size: int) -> bytes:
    """A plain message of about *size* bytes: text lines, different every cycle."""
    line = f"soak cycle {n} for {user} " + "x" * 60 + "\r\n"
    body = line * max(1, size // len(line))
    head = (f"From: Sender <sender@fabrikam.example>\r\nTo: {user}@isp.example\r\n"
            f"Subject: soak {n}\r\nMessage-ID: <soak-{n}-{user}-{time.time_ns()}@fabrikam.example>\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n")
    return (head + "\r\n" + body).encode()


# --- the office ----------------------------------------------------------------------------


class Office:
    """Dovecot and Postfix for one soak, the runner's home, and the faults the plan asks for."""

    def __init__(self, work: Path, *, mode: str, message_size: int, events_max_mb: int | None = None) -> None:
        self.work = work
        self.events_max_mb = events_max_mb
        self.mode = mode
        self.message_size = message_size
        self.dovecot = DovecotServer(imap=False)
        self.postfix = PostfixServer(("contoso.com",))
        self.home = work / "home"
        self.postfix_up = True
        self.bob_refused = False

    def __enter__(self) -> Office:
        self.dovecot.start()
        try:
            self.postfix.start()
        except BaseException:
            self.dovecot.stop()
            raise
        for user in USERS:
            self.dovecot.add_user(user, PASSWORD)
        self._write_home()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not self.postfix_up:
                self._postfix_start()
            self.postfix.stop()
        finally:
            self.dovecot.stop()

    def _write_home(self) -> None:
        from pop3gui.core.config.model import (AccountConfig, AlertsConfig, Config, DeliveryConfig,
                                               RecipientPolicy, ScheduleConfig, SmtpConfig)
        from pop3gui.core.config.save import save_config
        from pop3gui.core.state.credentials import POP3_SERVICE

        self.home.mkdir(parents=True)
        accounts = tuple(
            AccountConfig(name=user, host="127.0.0.1", port=self.dovecot.pop3_port, security="none",
                          username=user, kind="user", deliver_to=target, timeout_s=20)
            for user, target in USERS.items())
        # Headless: the harness moves the runner's clock one interval per cycle.  Tray: cycles come from
        # Retrieve Now; the schedule's own (daily) run never comes due during the soak.
        interval = 1 if self.mode == "headless" else 1440
        config = Config(
            smtp=SmtpConfig(host=self.postfix.host, port=self.postfix.port, timeout_s=20),
            delivery=DeliveryConfig(undeliverable_to=""),
            policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
            schedule=ScheduleConfig(interval_min=interval),
            alerts=AlertsConfig(mail_to=ADMIN),
            accounts=accounts,
        )
        if self.events_max_mb is not None:  # [events] max_mb, to see the store kept under a small cap
            from dataclasses import replace

            from pop3gui.core.config.model import EventsConfig

            config = replace(config, events=EventsConfig(max_mb=self.events_max_mb))
        save_config(config, self.home / "config.toml")
        secrets = self.home / "keyring.json"
        secrets.write_text(json.dumps({POP3_SERVICE: {user: PASSWORD for user in USERS}}))
        secrets.chmod(0o600)

    @property
    def paths(self) -> Any:
        from pop3gui.core.state.paths import Paths

        return Paths(self.home / "config.toml", self.home / "state", self.home / "logs")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "POP3GUI_HOME": str(self.home),
            "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "PYTHON_KEYRING_BACKEND": "bench_keyring.BenchKeyring",
            "BENCH_KEYRING_FILE": str(self.home / "keyring.json"),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    # --- the plan's steps --------------------------------------------------------------

    def apply(self, n: int, step: Step) -> None:
        if step.login_refused != self.bob_refused:
            self.dovecot.add_user("bob", WRONG_PASSWORD if step.login_refused else PASSWORD)
            self.bob_refused = step.login_refused
            time.sleep(1.1)  # Dovecot re-reads a changed passwd-file at most once a second
        if step.local_down and self.postfix_up:
            self._postfix_stop()
        elif not step.local_down and not self.postfix_up:
            self._postfix_start()
        if step.mail:
            for user in ("alice", "bob"):
                self.dovecot.deliver(user, message(user, n, self.message_size))
        if step.quarantine:
            self.dovecot.deliver("carol", message("carol", n, self.message_size))
        if step.clear_quarantine:
            self.clear_quarantine()
            if self.postfix_up:
                self.postfix.clear()  # keep the local server's Maildir from filling the disk

    def clear_quarantine(self) -> None:
        """What the admin does in the Quarantine tab or with ``pop3gui quarantine``: delete the entries."""
        from pop3gui.core.state.spool import Quarantine

        quarantine = Quarantine(self.paths.quarantine_dir)
        for record in list(quarantine.records()):
            quarantine.remove(record.id)

    def _postfix_stop(self) -> None:
        pid = self.postfix._master_pid()
        self.postfix._postfix("stop", check=False)
        deadline = time.monotonic() + 15
        while pid is not None and not process_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.postfix_up = False

    def _postfix_start(self) -> None:
        self.postfix._postfix("start")
        wait_for_port(self.postfix.port, 30, lambda: self.postfix._log_tail())
        self.postfix_up = True

    def events_bytes(self) -> int:
        """The event store on disk: the database and its write-ahead log."""
        db = self.paths.events_db
        return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())

    def events_cap_mb(self) -> float | None:
        """``[events] max_mb`` when this pop3gui has it (None: no cap)."""
        from pop3gui.core.config.load import load_config

        events = getattr(load_config(self.paths.config_file), "events", None)
        cap = getattr(events, "max_mb", None)
        return None if cap is None else float(cap)


# --- a display with a system tray ----------------------------------------------------------


def x_display() -> AbstractContextManager[dict[str, str]]:
    """A private Xvfb display with trayer as its system tray (the one tests/gui/test_tray.py uses)."""
    return display_with_tray()


# --- the runner as a child ---------------------------------------------------------------


class RunnerProcess:
    """soak_runner.py in a child process: commands in, one JSON line per finished cycle out."""

    def __init__(self, mode: str, env: dict[str, str], log: Path) -> None:
        cmd_read, self._cmd_write = os.pipe()
        self._probe_read, probe_write = os.pipe()
        env = dict(env, SOAK_COMMAND_FD=str(cmd_read), SOAK_PROBE_FD=str(probe_write))
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(RUNNER), mode], env=env, cwd=ROOT,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         pass_fds=(cmd_read, probe_write))
        os.close(cmd_read)
        os.close(probe_write)
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._probe_read, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, command: str) -> None:
        os.write(self._cmd_write, command.encode() + b"\n")

    def report(self, timeout: float) -> dict[str, Any]:
        """The next cycle's JSON line (RuntimeError when the runner died or took longer than *timeout*)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise RuntimeError(f"the runner reported no cycle within {timeout:.0f} s; {self.tail()}")
            chunk = os.read(self._probe_read, 65536)
            if not chunk:
                raise RuntimeError(f"the runner ended (exit code {self.proc.wait()}); {self.tail()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result

    def tail(self) -> str:
        try:
            return "its output ends:\n" + self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "no output"

    def stop(self, timeout: float = 60) -> int:
        """Quit as the user would (the tray's Quit, SIGTERM's path headless) and wait for a clean exit."""
        if self.proc.poll() is None:
            try:
                self.send("quit")
            except OSError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._cmd_write, self._probe_read):
            try:
                os.close(fd)
            except OSError:
                pass
        self._selector.close()
        return self.proc.returncode


# --- samples ------------------------------------------------------------------------------


@dataclass
class Sample:
    cycle: int
    seconds: float  # since the soak started
    step: str  # mail, faults
    rss_kb: int
    fds: int
    threads: int
    tasks: int
    events_bytes: int
    exit_code: int | None
    delivered: int
    quarantined: int
    failed: str


def proc_figures(pid: int) -> tuple[int, int, int]:
    """(VmRSS in KiB, open file descriptors, threads) of *pid* from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


def soak(mode: str, cycles: int, *, interval: float, period: int, message_size: int = 32 * 1024,
         events_max_mb: int | None = None, work: Path | None = None,
         progress: Callable[[Sample], None] | None = None, cycle_timeout: float = 120) -> tuple[list[Sample], float | None]:
    """Run *cycles* cycles of the runner in *mode* ("headless" or "tray"); the samples and the store's cap."""
    own = work is None
    work = Path(tempfile.mkdtemp(prefix=f"pop3gui-soak-{mode}-")) if work is None else work
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    samples: list[Sample] = []
    try:
        with Office(work, mode=mode, message_size=message_size, events_max_mb=events_max_mb) as office, \
                (x_display() if mode == "tray" else _no_display()) as display:
            runner = RunnerProcess(mode, dict(office.env(), **display), work / "runner.log")
            try:
                began = time.monotonic()
                first = runner.report(cycle_timeout)  # the run at start (run_forever's first, the tray's at start)
                samples.append(_sample(0, began, "start", runner, office, first))
                last_start = time.monotonic()
                for n in range(1, cycles + 1):
                    step = plan(n, period)
                    office.apply(n, step)
                    wait = interval - (time.monotonic() - last_start)
                    if wait > 0:
                        time.sleep(wait)
                    last_start = time.monotonic()
                    runner.send("cycle")
                    report = runner.report(cycle_timeout)
                    label = "+".join(x for x in (MAIL if step.mail else "", step.faults) if x)
                    sample = _sample(n, began, label, runner, office, report)
                    samples.append(sample)
                    if progress is not None:
                        progress(sample)
            finally:
                code = runner.stop()
            if code != 0:
                raise RuntimeError(f"the runner exited with {code}; {runner.tail()}")
            cap = office.events_cap_mb()
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return samples, cap


@contextmanager
def _no_display() -> Iterator[dict[str, str]]:
    yield {}


def _sample(n: int, began: float, step: str, runner: RunnerProcess, office: Office,
            report: dict[str, Any]) -> Sample:
    rss, fds, threads = proc_figures(runner.pid)
    for _ in range(2):  # a file the runner has open for a moment (the health store after a cycle) is no leak:
        time.sleep(0.02)  # the fewest of three reads 20 ms apart is what stays open
        fds = min(fds, proc_figures(runner.pid)[1])
    return Sample(cycle=n, seconds=round(time.monotonic() - began, 2), step=step, rss_kb=rss, fds=fds,
                  threads=threads, tasks=int(report["tasks"]), events_bytes=office.events_bytes(),
                  exit_code=report["exit_code"], delivered=int(report["delivered"]),
                  quarantined=int(report["quarantined"]), failed=" ".join(report["failed"]))


# --- the verdict --------------------------------------------------------------------------


@dataclass
class Verdict:
    warmup: int  # cycles left out of the checks
    rss_start_kb: int
    rss_warm_kb: int  # median of the last tenth of the warm-up
    rss_end_kb: int  # median of the last tenth of the run
    rss_growth: float  # (end - warm) / warm
    constant: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # metric: (after warm-up, max, end)
    maxima: dict[str, int] = field(default_factory=dict)  # over the whole run
    events_mb: float = 0.0
    events_cap_mb: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


COUNTS = ("fds", "threads", "tasks")


def is_quiet(sample: Sample) -> bool:
    """A cycle with no fault stretch on, and not the one right after (the refused login may show a cycle late)."""
    return sample.step in ("", MAIL)


def verdict(samples: list[Sample], *, warmup: float = 0.1, max_growth: float = 0.10,
            max_growth_kb: int | None = None, cap_mb: float | None = None) -> Verdict:
    """Check the run after its warm-up: RSS growth, constant counts (on quiet cycles), the store's cap.

    The counts must be back, on the last quiet cycles, to their value on the first quiet cycle after the
    warm-up, and never above the warm-up's maximum (the warm-up holds a whole fault period, so a fault's
    transient has been seen there).  *max_growth_kb*, when given, bounds the RSS growth in KiB too.
    """
    runs = [s for s in samples if s.cycle > 0]
    cut = max(1, int(len(runs) * warmup))
    warm, rest = runs[:cut], runs[cut:]
    tenth = max(1, len(runs) // 10)
    rss_warm = int(statistics.median(s.rss_kb for s in warm[-max(1, len(warm) // 10):]))
    rss_end = int(statistics.median(s.rss_kb for s in rest[-tenth:])) if rest else rss_warm
    growth = (rss_end - rss_warm) / rss_warm if rss_warm else 0.0
    v = Verdict(warmup=cut, rss_start_kb=samples[0].rss_kb, rss_warm_kb=rss_warm, rss_end_kb=rss_end,
                rss_growth=growth, events_cap_mb=cap_mb)
    v.maxima = {m: max(getattr(s, m) for s in samples) for m in ("rss_kb", *COUNTS)}
    v.events_mb = max(s.events_bytes for s in samples) / MIB
    if growth >= max_growth:
        v.problems.append(f"RSS grew {growth:.1%} after the warm-up ({rss_warm} -> {rss_end} KiB; "
                          f"limit {max_growth:.0%})")
    if max_growth_kb is not None and rss_end - rss_warm > max_growth_kb:
        v.problems.append(f"RSS grew {rss_end - rss_warm} KiB after the warm-up ({rss_warm} -> {rss_end} KiB; "
                          f"limit {max_growth_kb} KiB)")
    quiet = [s for s in rest if is_quiet(s)]
    for metric in COUNTS:
        if not quiet:
            break
        warm_max = max(getattr(s, metric) for s in warm)
        after = getattr(quiet[0], metric)
        top = max(getattr(s, metric) for s in quiet)
        end = getattr(quiet[-1], metric)
        v.constant[metric] = (after, top, end)
        if end != after:
            v.problems.append(f"{metric}: {after} on the first quiet cycle after the warm-up, {end} on the last")
        if top > warm_max:
            v.problems.append(f"{metric}: up to {top} on quiet cycles after the warm-up, above the warm-up's "
                              f"maximum {warm_max}")
    if cap_mb is not None and v.events_mb > cap_mb:
        v.problems.append(f"event store {v.events_mb:.1f} MiB, above its cap [events] max_mb = {cap_mb:g} (MiB)")
    return v


def write_csv(samples: list[Sample], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=[f.name for f in fields(Sample)])
        writer.writeheader()
        for s in samples:
            writer.writerow(asdict(s))


def read_csv(path: Path) -> list[Sample]:
    with open(path, newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    ints = {f.name for f in fields(Sample) if f.type in ("int", int)}
    out = []
    for row in rows:
        values: dict[str, Any] = {}
        for f in fields(Sample):
            raw = row[f.name]
            if f.name == "exit_code":
                values[f.name] = int(raw) if raw else None
            elif f.name in ints:
                values[f.name] = int(raw)
            elif f.name == "seconds":
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        out.append(Sample(**values))
    return out
