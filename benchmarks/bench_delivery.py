"""End-to-end delivery benchmark: pop3gui vs fetchmail vs a minimal floor.

Starts a private Dovecot (the ISP) and a private Postfix (the office server)
with the same classes as the tests (``tests.servers``), seeds N messages into
Dovecot Maildirs, and measures, one after the other in one run:

* ``pop3gui run --once`` as a subprocess (its own ``POP3GUI_HOME`` in a temp
  dir, passwords from ``benchmarks/bench_keyring.py``);
* ``fetchmail`` with an equivalent rc file (``keep``, ``fetchall``, the same
  Postfix as ``smtphost``, ``smtpname alice@contoso.com``), if installed;
* the floor (``benchmarks/floor.py``) as a subprocess too: every account at
  once, each a pipelined raw POP3 reader (all RETRs sent at once) feeding its
  own aiosmtplib connection that sends sequentially; no journal, no spool, no
  events.  ``--floor-in-process`` runs it in this process instead, without an
  interpreter's start, as runs before 2026-12-01 06:40 did.

The IMAP cases (``imap-loopback``, ``imap-wan``, only when named) read the
same Dovecot over IMAP: pop3gui with ``protocol = "imap"`` on INBOX and
``after_delivery = "delete"``, fetchmail with ``protocol imap`` deleting too
(``expunge 0``: one EXPUNGE at the end), the floor with one pipelined
``FETCH 1:* (BODY.PEEK[])``.

Before every peer the mailboxes are reseeded with the same messages and
Postfix's Maildir is cleared. The clock ("wall") starts when the peer starts
and stops when its process exits (the floor in this process: when the last
message is accepted by Postfix); "until delivered" keeps the same start and stops when
Postfix has written all N messages to its Maildir. The delivered count is
then verified exactly; a run fails unless the mailbox held every message at
its start, Postfix delivered every one, and the server keeps what the peer
should leave (nothing for pop3gui, and for fetchmail over IMAP).

CPU and peak RSS of subprocess peers are the peer's own process's, reported by
``/usr/bin/time`` wrapped around it (the figures ``getrusage(RUSAGE_CHILDREN)``
would give, for that one child; see :func:`run_measured`); the floor's too,
unless it runs in this process: then its CPU is the ``time.process_time()``
delta of this process and its peak RSS this process's ``ru_maxrss``. Server-side CPU (Dovecot, Postfix) is not counted for anyone.

Run as root (Dovecot and Postfix need it)::

    python3 benchmarks/bench_delivery.py --quick
    python3 benchmarks/bench_delivery.py                 # all cases
    python3 benchmarks/bench_delivery.py --case wan --case big --markdown
    python3 benchmarks/bench_delivery.py --case imap-loopback --case imap-wan --repeat 3

Every run ends with the targets of the cases it ran: figures, ratio, goal, met or not, and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import compileall
import contextlib
import itertools
import json
import os
import platform
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiosmtplib

from tests.servers.dovecot import DovecotServer, mail_ids
from tests.servers.postfix import PostfixServer
from floor import RECIPIENT, FloorRun, floor  # noqa: E402 - benchmarks/ is on sys.path

# pop3gui itself is imported by use_pop3gui_source(), after --rev has chosen which tree to measure.
POP3GUI_SRC = ROOT
POP3_SERVICE = "pop3gui"  # pop3gui.core.state.credentials.POP3_SERVICE, checked in use_pop3gui_source()

KIB = 1024
MIB = 1024 * 1024
ADMIN = "admin@contoso.com"
PASSWORD = "bench-password"
POSTFIX_SIZE_LIMIT = 300 * MIB  # raised for the 100 MiB case; harmless for the others
POP3GUI_MAX_MESSAGE_KB = 300 * 1024


def use_pop3gui_source(rev: str | None, work: Path) -> str:
    """Measure the working tree, or with *rev* a `git archive` of that commit; returns the commit label."""
    global POP3GUI_SRC
    git = ["git", "-C", str(ROOT)]
    if rev:
        POP3GUI_SRC = work / "src"
        POP3GUI_SRC.mkdir()
        archive = subprocess.run([*git, "archive", "--format=tar", rev, "pop3gui"], capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(POP3GUI_SRC)], input=archive, check=True)
    # Byte-compile the tree as an install does: a shell with PYTHONDONTWRITEBYTECODE set
    # would otherwise make every pop3gui run compile its modules from source.
    compileall.compile_dir(POP3GUI_SRC / "pop3gui", quiet=1)
    sys.path.insert(0, str(POP3GUI_SRC))
    for name in [m for m in sys.modules if m == "pop3gui" or m.startswith("pop3gui.")]:
        del sys.modules[name]
    from pop3gui.core.state import credentials

    assert credentials.POP3_SERVICE == POP3_SERVICE, credentials.POP3_SERVICE
    commit = subprocess.run([*git, "rev-parse", "--short", rev or "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip() or "unknown"
    if rev:
        return f"{commit} (committed tree, --rev {rev})"
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no", "pop3gui"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{commit}" + (" + uncommitted changes in pop3gui/ (working tree)" if dirty else " (working tree)")


# --- cases -------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    label: str
    accounts: int
    per_account: int
    size: int  # bytes per message
    delay_ms: float = 0.0
    protocol: str = "pop3"  # how every peer reads Dovecot: "pop3" or "imap" (INBOX)

    @property
    def total(self) -> int:
        return self.accounts * self.per_account

    def describe(self) -> str:
        size = f"{self.size // MIB} MiB" if self.size >= MIB else f"{self.size // KIB} KiB"
        acc = f"{self.accounts} accounts × {self.per_account}" if self.accounts > 1 else f"{self.per_account}"
        return f"{acc} × {size}, {self.delay_ms:g} ms one-way delay to {self.protocol.upper()}"


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    workloads: tuple[Workload, ...]


CASES: dict[str, Case] = {
    "loopback": Case("loopback", "1000 × 10 KiB on loopback",
                     (Workload("1000×10KiB", 1, 1000, 10 * KIB),)),
    "wan": Case("wan", "200 × 10 KiB with 10 ms one-way delay (20 ms RTT) to the POP3 server",
                (Workload("200×10KiB@10ms", 1, 200, 10 * KIB, 10.0),)),
    "accounts": Case("accounts", "10 accounts × 100 messages vs 1 account × 100 (10 KiB, loopback)",
                     (Workload("1 acct×100", 1, 100, 10 * KIB), Workload("10 accts×100", 10, 100, 10 * KIB))),
    "big": Case("big", "one 100 MiB message on loopback",
                (Workload("1×100MiB", 1, 1, 100 * MIB),)),
    "imap-loopback": Case("imap-loopback", "IMAP: 1000 × 10 KiB from INBOX on loopback",
                          (Workload("IMAP 1000×10KiB", 1, 1000, 10 * KIB, protocol="imap"),)),
    "imap-wan": Case("imap-wan", "IMAP: 1000 × 10 KiB from INBOX with 10 ms one-way delay (20 ms RTT) to the "
                     "IMAP server",
                     (Workload("IMAP 1000×10KiB@10ms", 1, 1000, 10 * KIB, 10.0, protocol="imap"),)),
}
QUICK = Case("quick", "quick smoke run: 100 × 10 KiB on loopback", (Workload("100×10KiB", 1, 100, 10 * KIB),))
DEFAULT_CASES = ("loopback", "wan", "accounts", "big")


# --- results -----------------------------------------------------------------


@dataclass
class Result:
    peer: str
    workload: Workload
    wall: float = 0.0
    until_delivered: float | None = None
    cpu: float = 0.0
    maxrss_kb: int = 0
    delivered: int = 0
    ok: bool = True
    notes: list[str] = field(default_factory=list)
    runs: list[float] = field(default_factory=list)
    by_round: list[Result] = field(default_factory=list)  # with --repeat: every run of this peer, round by round
    nbytes: int = 0
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after
    machine_busy: float = 0.0  # share of all cores busy (any process) from start until delivered
    machine_cpu: float = 0.0  # CPU seconds of all processes (connector, servers, this script) in that time
    steal: float = 0.0  # share of the time the hypervisor gave the cores to someone else

    @property
    def mib(self) -> float:
        return self.nbytes / MIB

    @property
    def msgs_per_s(self) -> float:
        return self.workload.total / self.wall if self.wall else 0.0

    @property
    def mib_per_s(self) -> float:
        return self.mib / self.wall if self.wall else 0.0


# --- machine -----------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip() and "WARNING" not in ln]
    return lines[0].strip() if lines else "n/a"


def machine_details(commit: str) -> dict[str, str]:
    from pop3gui import __version__ as pop3gui_version

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    distro = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    fetchmail = shutil.which("fetchmail")
    return {
        "pop3gui": f"{pop3gui_version}, commit {commit}",
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "OS": distro,
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "aiosmtplib": aiosmtplib.__version__,
        "Dovecot": _first_line(["dovecot", "--version"]),
        "Postfix": _first_line(["postconf", "-h", "mail_version"]),
        "fetchmail": _first_line([fetchmail, "--version"]).replace("This is fetchmail release ", "")
        if fetchmail else "not installed",
    }


# --- messages and mailboxes ----------------------------------------------------


def _body(rng: random.Random, size: int) -> bytes:
    """Text lines of 76 characters + CRLF (base64 of random bytes: no line starts with a dot)."""
    raw = rng.randbytes(max(size * 3 // 4, 3))
    text = base64.b64encode(raw)
    lines = [text[i:i + 76] for i in range(0, len(text), 76)]
    return b"\r\n".join(lines) + b"\r\n"


def write_message(path: Path, *, index: int, tag: str, size: int) -> int:
    """Write one message of about *size* bytes to *path*; returns its length."""
    from tests.support.office import (
        make_message,  # imports pop3gui: only after use_pop3gui_source()
    )

    safe = "".join(c if c.isascii() and (c.isalnum() or c in ".-") else "-" for c in tag)
    head = make_message(to=RECIPIENT, subject=f"pop3gui benchmark {safe} #{index}", body="",
                        message_id=f"<bench-{safe}-{index}@fabrikam.example>")
    rng = random.Random(f"{tag}/{index}")
    remaining = max(size - len(head), 80)
    written = len(head)
    with open(path, "wb") as out:
        out.write(head)
        block = 8 * MIB
        while remaining > 0:
            # each block is whole 78-byte lines so lines never straddle blocks
            want = min(block, remaining)
            chunk = _body(rng, (want // 78) * 57 or 57)
            out.write(chunk)
            written += len(chunk)
            remaining -= len(chunk)
    return written


@dataclass
class Corpus:
    """The messages of one workload, on disk; copied into Dovecot before every peer."""

    folder: Path
    files: dict[str, list[Path]]  # POP3 user -> message files
    total_bytes: int

    @classmethod
    def build(cls, folder: Path, workload: Workload) -> Corpus:
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, list[Path]] = {}
        total = 0
        for a in range(workload.accounts):
            user = f"bench{a}"
            files[user] = []
            for i in range(workload.per_account):
                path = folder / f"{user}-{i:05d}.eml"
                total += write_message(path, index=i, tag=f"{workload.label}/{user}", size=workload.size)
                files[user].append(path)
        return cls(folder, files, total)


_seeds = itertools.count(1)


def seed(dovecot: DovecotServer, corpus: Corpus) -> None:
    """Empty each user's Maildir and copy the corpus into new/ (owned by mail), oldest first.

    Every file gets a name never used before in this process (the seed's number is part of it):
    two seeds within one second would otherwise reuse the names of messages a peer has just
    expunged, which Dovecot's IMAP index may still remember, and a session then sees only part of
    the mailbox.
    """
    uid, gid = mail_ids()
    host = platform.node() or "bench"
    round_no = next(_seeds)
    for user, paths in corpus.files.items():
        box = dovecot.maildir_path(user)
        for sub in ("new", "cur", "tmp"):
            for entry in os.scandir(box / sub):
                os.unlink(entry.path)
        stamp = int(time.time())
        for i, src in enumerate(paths):
            name = f"{stamp}.R{round_no}B{i:06d}.{host}"
            tmp = box / "tmp" / name
            shutil.copyfile(src, tmp)
            os.chown(tmp, uid, gid)
            os.utime(tmp, (stamp + i, stamp + i))
            os.rename(tmp, box / "new" / name)


def remaining_on_server(dovecot: DovecotServer, corpus: Corpus) -> int:
    count = 0
    for user in corpus.files:
        for sub in ("new", "cur"):
            count += sum(1 for _ in os.scandir(dovecot.maildir_path(user) / sub))
    return count


def cpu_ticks() -> tuple[int, int, int]:
    """(busy, total, steal) clock ticks of all cores since boot, from /proc/stat (zeros elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0, 0, 0
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, sum(fields), steal


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def delivered_count(postfix: PostfixServer) -> int:
    count = 0
    for sub in ("new", "cur"):
        directory = postfix.maildir / sub
        if directory.is_dir():
            count += sum(1 for e in os.scandir(directory) if e.is_file())
    return count


def reset(dovecot: DovecotServer, postfix: PostfixServer, corpus: Corpus) -> None:
    postfix.wait_for_queue_empty(timeout=60)
    postfix.clear()
    seed(dovecot, corpus)
    # Write back what earlier runs left dirty now, not while the next peer runs: the kernel's
    # periodic writeback slows Postfix's per-message fsyncs for whichever peer it lands on.
    os.sync()


def wait_delivered(postfix: PostfixServer, n: int, started: float, timeout: float) -> float | None:
    deadline = time.monotonic() + timeout
    while delivered_count(postfix) < n:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)
    return time.perf_counter() - started


# --- the delay proxy -----------------------------------------------------------


class ProxyProcess:
    """benchmarks/delay_proxy.py in its own process, so it never competes with the floor for the GIL."""

    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH_DIR / "delay_proxy.py"), "--target-port", str(target_port),
             "--delay-ms", str(delay_ms)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "LISTENING":
            self.stop()
            raise RuntimeError(f"delay proxy did not start: {line!r}")
        self.port = int(line[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- running a subprocess peer -----------------------------------------------------


@dataclass
class Run:
    wall: float
    cpu: float
    maxrss_kb: int
    returncode: int
    started: float


TIME = shutil.which("time", path="/usr/bin:/bin")


def run_measured(cmd: list[str], *, env: dict[str, str], log: Path, cwd: Path) -> Run:
    """Run *cmd*; its own CPU time and peak RSS, not mixed with any other child's.

    The peak RSS of a child started straight from this process would start at
    this (bigger) process's RSS: Linux carries the pre-exec high-water mark of
    the fork into ``ru_maxrss``. So the command runs under ``/usr/bin/time``
    (Debian package ``time``), a small C program whose child reports its own
    figures; without it, ``os.wait4`` figures are used and the RSS is marked
    as an upper bound.
    """
    stats = log.with_suffix(".rusage")
    wrapped = [TIME, "-o", str(stats), "-f", "%e %U %S %M", *cmd] if TIME else cmd
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(wrapped, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    cpu, maxrss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
    if TIME:
        lines = stats.read_text().strip().splitlines() if stats.exists() else []
        fields = lines[-1].split() if lines else []
        try:
            _, user, system, rss = fields[-4:]
            cpu, maxrss = float(user) + float(system), int(rss)
        except ValueError:
            pass
    return Run(wall, cpu, maxrss, proc.returncode, started)


# --- peers -------------------------------------------------------------------------


@dataclass
class Setup:
    dovecot: DovecotServer
    postfix: PostfixServer
    port: int  # Dovecot's POP3 or IMAP port (the workload's protocol), or the delay proxy's in front of it
    work: Path
    parallel_accounts: int | None = None  # pop3gui's [performance] max_parallel_accounts; None: its default
    floor_in_process: bool = False  # the floor in this process (no start-up), as before 2026-12-01 06:40


def pop3gui_home(setup: Setup, workload: Workload, name: str) -> tuple[Path, dict[str, str]]:
    from pop3gui.core.config.model import AccountConfig, Config, DeliveryConfig, RecipientPolicy, SmtpConfig
    from pop3gui.core.config.save import save_config

    home = setup.work / name
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    accounts = tuple(
        AccountConfig(name=f"bench{a}", host="127.0.0.1", protocol=workload.protocol, port=setup.port,
                      security="none", username=f"bench{a}", kind="user", deliver_to=RECIPIENT, timeout_s=600,
                      folders=("INBOX",), after_delivery="delete")  # both dropped from a POP3 account's table
        for a in range(workload.accounts)
    )
    config = Config(
        smtp=SmtpConfig(host=setup.postfix.host, port=setup.postfix.port, timeout_s=600),
        delivery=DeliveryConfig(undeliverable_to=ADMIN, max_message_kb=POP3GUI_MAX_MESSAGE_KB),
        policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
        accounts=accounts,
    )
    if setup.parallel_accounts is not None:
        config = replace(config, performance=replace(config.performance,
                                                     max_parallel_accounts=setup.parallel_accounts))
    save_config(config, home / "config.toml")
    secrets = home / "keyring.json"
    secrets.write_text(json.dumps({POP3_SERVICE: {a.name: PASSWORD for a in accounts}}))
    secrets.chmod(0o600)
    env = dict(os.environ)
    env.update({
        "POP3GUI_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(POP3GUI_SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PYTHON_KEYRING_BACKEND": "bench_keyring.BenchKeyring",
        "BENCH_KEYRING_FILE": str(secrets),
    })
    return home, env


def run_pop3gui(setup: Setup, workload: Workload, *, profile: Path | None = None) -> tuple[Run, Path]:
    home, env = pop3gui_home(setup, workload, "pop3gui-profile" if profile else "pop3gui")
    cmd = [sys.executable]
    if profile is not None:
        cmd += ["-m", "cProfile", "-o", str(profile)]
    cmd += ["-m", "pop3gui", "run", "--once"]
    log = home / "run.log"
    return run_measured(cmd, env=env, log=log, cwd=home), log


def pop3gui_startup(setup: Setup) -> Run:
    """What `python -m pop3gui --version` costs (best of 3): the fixed start-up part of every pop3gui figure."""
    home, env = pop3gui_home(setup, Workload("startup", 1, 0, 0), "pop3gui-startup")
    runs = [run_measured([sys.executable, "-m", "pop3gui", "--version"], env=env, log=home / "v.log", cwd=home)
            for _ in range(3)]
    return min(runs, key=lambda r: r.wall)


def fetchmail_rc(setup: Setup, workload: Workload) -> str:
    """POP3: keep (no DELE). IMAP: INBOX, deleted after delivery as pop3gui does, with one EXPUNGE at the end
    (expunge 0) instead of fetchmail's default EXPUNGE after every message."""
    lines = ["set no bouncemail", "set no spambounce", ""]
    imap = workload.protocol == "imap"
    for a in range(workload.accounts):
        lines += [
            f"poll bench{a} via 127.0.0.1 protocol {workload.protocol} service {setup.port} auth password "
            "timeout 600",
            f'  user "bench{a}" there with password "{PASSWORD}" is "alice" here'
            + (' folder "INBOX"' if imap else ""),
            '  options fetchall no rewrite sslproto "" limit 0' + (" expunge 0" if imap else " keep"),
            f'  smtphost "{setup.postfix.host}/{setup.postfix.port}" smtpname "{RECIPIENT}"',
            "",
        ]
    return "\n".join(lines)


def ensure_fetchmail() -> str | None:
    found = shutil.which("fetchmail")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print("fetchmail is missing; installing the Debian package fetchmail ...", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "-q", "fetchmail"]
        if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            subprocess.run(cmd, env=env, capture_output=True, check=False)
        found = shutil.which("fetchmail")
    return found


def run_fetchmail(setup: Setup, workload: Workload, fetchmail: str) -> tuple[Run, Path]:
    home = setup.work / "fetchmail"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True, mode=0o700)
    rc = home / "fetchmailrc"
    fd = os.open(rc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(fetchmail_rc(setup, workload))
    env = dict(os.environ, FETCHMAILHOME=str(home), HOME=str(home))
    log = home / "run.log"
    cmd = [fetchmail, "-f", str(rc), "-d0", "--nodetach", "--nosyslog",
           "--idfile", str(home / "fetchids"), "--pidfile", str(home / "fetchmail.pid")]
    return run_measured(cmd, env=env, log=log, cwd=home), log


def floor_run(setup: Setup, workload: Workload) -> FloorRun:
    return FloorRun(setup.port, workload.protocol, workload.accounts, setup.postfix.host, setup.postfix.port,
                    PASSWORD)


def run_floor(setup: Setup, workload: Workload) -> tuple[Run, Path, int]:
    """The floor as a process of its own (benchmarks/floor.py), as pop3gui and fetchmail run; what it sent."""
    run = floor_run(setup, workload)
    log = setup.work / "floor.log"
    cmd = [sys.executable, str(BENCH_DIR / "floor.py"), "--port", str(run.port), "--protocol", run.protocol,
           "--accounts", str(run.accounts), "--smtp", f"{run.smtp_host}:{run.smtp_port}", "--password", PASSWORD]
    measured = run_measured(cmd, env=dict(os.environ), log=log, cwd=setup.work)
    lines = log.read_text(errors="replace").split() if log.exists() else []
    sent = int(lines[-1]) if len(lines) >= 2 and lines[-2] == "sent" and lines[-1].isdigit() else 0
    return measured, log, sent


# --- one measurement -------------------------------------------------------------


def measure(peer: str, setup: Setup, corpus: Corpus, workload: Workload, fetchmail: str | None) -> Result:
    reset(setup.dovecot, setup.postfix, corpus)
    res = Result(peer, workload, nbytes=corpus.total_bytes, load=(loadavg(), 0.0))
    n = workload.total
    seeded = remaining_on_server(setup.dovecot, corpus)
    if seeded != n or delivered_count(setup.postfix) != 0:
        res.ok = False
        res.notes.append(f"not started: {seeded} of {n} messages seeded, {delivered_count(setup.postfix)} in "
                         "Postfix's Maildir")
        return res
    ticks0 = cpu_ticks()
    log: Path | None = None
    if peer == "floor" and setup.floor_in_process:
        cpu0 = time.process_time()
        started = time.perf_counter()
        try:
            sent = asyncio.run(floor(floor_run(setup, workload)))
        except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not crash
            res.ok = False
            res.notes.append(f"floor failed: {exc!r}")
            sent = 0
        res.wall = time.perf_counter() - started
        res.cpu = time.process_time() - cpu0
        res.maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sent != n:
            res.ok = False
            res.notes.append(f"sent {sent} of {n}")
    elif peer == "floor":
        run, log, sent = run_floor(setup, workload)
        started = run.started
        res.wall, res.cpu, res.maxrss_kb = run.wall, run.cpu, run.maxrss_kb
        if run.returncode != 0 or sent != n:
            res.ok = False
            res.notes.append(f"exit code {run.returncode}, sent {sent} of {n} (log: {log})")
    else:
        if peer == "pop3gui":
            run, log = run_pop3gui(setup, workload)
        else:
            assert fetchmail is not None
            run, log = run_fetchmail(setup, workload, fetchmail)
        started = run.started
        res.wall, res.cpu, res.maxrss_kb = run.wall, run.cpu, run.maxrss_kb
        if run.returncode != 0:
            res.ok = False
            res.notes.append(f"exit code {run.returncode} (log: {log})")
    res.until_delivered = wait_delivered(setup.postfix, n, started, timeout=max(60.0, n * 0.5))
    busy, total, steal = (b - a for a, b in zip(ticks0, cpu_ticks(), strict=True))
    if total:
        res.machine_busy, res.steal = busy / total, steal / total
        res.machine_cpu = busy / os.sysconf("SC_CLK_TCK")
    time.sleep(0.2)
    setup.postfix.wait_for_queue_empty(timeout=30)
    res.delivered = delivered_count(setup.postfix)
    if res.delivered != n:
        res.ok = False
        res.notes.append(f"Postfix delivered {res.delivered} of {n}")
    res.load = (res.load[0], loadavg())
    left = remaining_on_server(setup.dovecot, corpus)
    # what each peer leaves: pop3gui deletes (POP3 DELE; IMAP \Deleted + EXPUNGE), fetchmail keeps over POP3
    # and deletes over IMAP, the floor deletes as pop3gui does
    deletes = peer in ("pop3gui", "floor") or (peer == "fetchmail" and workload.protocol == "imap")
    expect_left = 0 if deletes else n
    if left != expect_left:
        res.ok = False
        res.notes.append(f"{left} message(s) left on the {workload.protocol.upper()} server "
                         f"(expected {expect_left})")
    if not res.ok and log is not None and log.exists():
        tail = log.read_text(errors="replace")[-1500:]
        res.notes.append("log tail: " + tail.replace("\n", " | "))
    return res


def measure_interleaved(peers: list[str], setup: Setup, corpus: Corpus, workload: Workload,
                        fetchmail: str | None, repeat: int, case: str) -> list[list[Result]]:
    """*repeat* rounds of one run of every peer, the order rotated each round, so that a slow spell of the
    machine spreads over the peers instead of landing on one of them; the runs by round."""
    rounds: list[list[Result]] = []
    for i in range(repeat):
        order = peers[i % len(peers):] + peers[:i % len(peers)]
        runs: dict[str, Result] = {}
        for peer in order:
            r = runs[peer] = measure(peer, setup, corpus, workload, fetchmail)
            if repeat > 1:
                print(f"[{case}]   {peer} run {i + 1}/{repeat}: wall {r.wall:.2f} s, CPU {r.cpu:.2f} s"
                      + ("" if r.ok else "  FAILED: " + "; ".join(r.notes)), flush=True)
        rounds.append([runs[peer] for peer in peers])
    return rounds


def median_run(results: list[Result]) -> Result:
    """The run with the median wall time, carrying every run's wall time and every failure."""
    in_rounds = list(results)
    results = sorted(results, key=lambda r: r.wall)
    chosen = results[len(results) // 2]  # the median run
    chosen.runs = [r.wall for r in results]
    chosen.by_round = in_rounds
    for r in results:
        if not r.ok and r is not chosen:
            chosen.ok = False
            chosen.notes.extend(r.notes)
    return chosen


# --- reporting -------------------------------------------------------------------


def fmt_mib(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def result_rows(results: list[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        delivered = "-" if r.until_delivered is None else f"{r.until_delivered:.2f}"
        rows.append([
            r.peer, r.workload.label, str(r.workload.total), f"{r.mib:.1f}", f"{r.wall:.2f}", delivered,
            f"{r.msgs_per_s:.1f}", f"{r.mib_per_s:.2f}", f"{r.cpu:.2f}", fmt_mib(r.maxrss_kb),
            f"{r.delivered}/{r.workload.total}" + ("" if r.ok else " FAIL"),
            f"{r.load[0]:.1f}→{r.load[1]:.1f}", f"{100 * r.machine_busy:.0f} %",
            f"{1000 * r.machine_cpu / r.workload.total:.1f}" if r.workload.total else "-",
            f"{100 * r.steal:.0f} %",
        ])
    return rows


HEADERS = ["peer", "workload", "msgs", "MiB", "wall s", "until delivered s", "msg/s", "MiB/s", "CPU s",
           "peak RSS MiB", "delivered", "load", "machine busy", "machine CPU ms/msg", "steal"]


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"


def case_ratios(case: Case, results: list[Result]) -> list[str]:
    lines = []
    by = {(r.peer, r.workload.label): r for r in results}
    for w in case.workloads:
        p = by.get(("pop3gui", w.label))
        if p is None:
            continue
        for other in ("fetchmail", "floor"):
            o = by.get((other, w.label))
            if o is not None:
                lines.append(f"{w.label}: pop3gui/{other} wall {ratio(p.wall, o.wall)}, "
                             f"CPU {ratio(p.cpu, o.cpu)}; {other}/pop3gui wall {ratio(o.wall, p.wall)}")
    if case.name == "accounts" and len(case.workloads) == 2:
        one, ten = case.workloads
        for peer in ("pop3gui", "fetchmail", "floor"):
            a, b = by.get((peer, one.label)), by.get((peer, ten.label))
            if a and b:
                lines.append(f"{peer}: 10 accounts × 100 takes {ratio(b.wall, a.wall)} the wall time of "
                             f"1 account × 100 (10.00× = strictly sequential, same per-message cost)")
        pop_one, pop_ten = by.get(("pop3gui", one.label)), by.get(("pop3gui", ten.label))
        if pop_one and pop_ten and pop_ten.machine_cpu:
            cores = os.cpu_count() or 1
            others = (pop_ten.machine_cpu - pop_ten.cpu) / ten.total
            lines.append(
                f"the machine during pop3gui's 10 accounts: {100 * pop_ten.machine_busy:.0f} % of {cores} cores "
                f"busy; besides pop3gui's own CPU, Dovecot, Postfix and the rest took {1000 * others:.1f} ms of "
                f"CPU per message, so {ten.total} messages need at least {others * ten.total / cores:.2f} s of "
                f"{cores} cores for them alone, against {2 * pop_one.wall:.2f} s for '2 × one account'")
    if case.name == "big":
        p = by.get(("pop3gui", case.workloads[0].label))
        if p is not None:
            largest = case.workloads[0].size / MIB
            allowed = 80 + 3 * largest
            peak = p.maxrss_kb / 1024
            verdict = "within" if peak <= allowed else "OVER"
            lines.append(f"pop3gui peak RSS {peak:.0f} MiB vs the rule 80 MiB + 3 × {largest:.0f} MiB = "
                         f"{allowed:.0f} MiB: {verdict}")
    for r in results:
        for note in r.notes:
            lines.append(f"note ({r.peer}, {r.workload.label}): {note}")
    return lines


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    for row in rows:
        out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return "\n".join(out)


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i < 2 else "---:"
                                                              for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


METHOD = (
    "wall = from starting the peer's process to its exit; "
    "until delivered = same start, until Postfix has written all messages to its Maildir; "
    "floor = benchmarks/floor.py, a process of its own: every account's POP3 session at once, each feeding its "
    "own SMTP connection, no journal; "
    "CPU and peak RSS = the peer's own process (/usr/bin/time); servers' CPU not counted. "
    "pop3gui deletes what it delivered (POP3: DELE before QUIT, its default; IMAP: after_delivery = delete, "
    "UID STORE \\Deleted + UID EXPUNGE); fetchmail runs with keep over POP3 and deletes over IMAP (expunge 0: "
    "one EXPUNGE at the end); the floor deletes once everything is sent (all DELEs pipelined before QUIT; "
    "IMAP: STORE \\Deleted + EXPUNGE), so every pop3gui run, every floor run and every fetchmail IMAP run ends "
    "with the mailbox empty "
    "(checked, as is the delivered count). "
    "load = the machine's 1-minute load average before → after the measurement (other work on the machine "
    "makes figures noisy when it is well above 0). "
    "machine busy = share of all cores busy with anything (connector, Dovecot, Postfix, this script) from "
    "the start until delivered, from /proc/stat; machine CPU ms/msg = those busy CPU seconds per message, the "
    "whole system's cost of moving one message; steal = time the hypervisor gave the cores to other guests "
    "(CPU seconds of every process are inflated while it is above 0)."
)


@dataclass(frozen=True)
class Target:
    """One performance target: pop3gui against fetchmail or the floor on one workload, or its CPU."""

    case: str
    workload: str  # the workload's label
    versus: str  # "fetchmail": at least goal× faster; "floor": at most goal× its wall; "cpu": ms per message
    goal: float
    text: str


TARGETS = (
    Target("loopback", "1000×10KiB", "fetchmail", 10.0, "loopback 1000 × 10 KiB: ≥ 10× faster than fetchmail"),
    Target("wan", "200×10KiB@10ms", "fetchmail", 15.0, "200 × 10 KiB at 20 ms RTT: ≥ 15× faster than fetchmail"),
    Target("accounts", "10 accts×100", "floor", 1.3, "10 accounts × 100: within 1.3× of the parallel floor"),
    Target("loopback", "1000×10KiB", "cpu", 1.5, "pop3gui's own CPU ≤ 1.5 ms per 10 KiB message"),
)
VERDICT_HEADERS = ["target", "figures", "ratio", "goal", "met?", "load"]


def load_range(results: list[Result]) -> str:
    """The lowest and highest 1-minute load average seen before or after any run of *results*."""
    values = [x for r in results for run in (r.by_round or [r]) for x in run.load]
    return f"{min(values):.1f}–{max(values):.1f}" if values else "n/a"


def target_verdicts(sections: list[tuple[Case, list[Result], list[str]]],
                    startup_cpu: float | None) -> list[list[str]]:
    """One row per target whose case ran: the figures, the ratio of the medians, the goal, and whether it is met
    (with --repeat also the ratio round by round). The quick run checks the loopback targets on its 100
    messages, as a smoke test of the verdicts only."""
    rows = []
    for case, results, _ in sections:
        by = {(r.peer, r.workload.label): r for r in results}
        quick = case.name == QUICK.name
        for t in TARGETS:
            if t.case != case.name and not (quick and t.case == "loopback"):
                continue
            label = case.workloads[0].label if quick else t.workload
            text = t.text + (f" (quick run: {label}, not the target's workload)" if quick else "")
            p = by.get(("pop3gui", label))
            if p is None:
                continue
            if t.versus == "cpu":
                n = p.workload.total
                cpus = sorted(r.cpu for r in (p.by_round or [p]))
                cpu = cpus[len(cpus) // 2]
                per = 1000 * cpu / n
                figure = f"pop3gui CPU {cpu:.2f} s (median of {len(cpus)}) / {n} messages, start-up included"
                if startup_cpu is not None:
                    figure += f"; {1000 * (cpu - startup_cpu) / n:.2f} ms without start-up ({startup_cpu:.2f} s)"
                rows.append([text, figure, f"{per:.2f} ms/msg", f"≤ {t.goal:g} ms",
                             "yes" if per <= t.goal and p.ok else "NO" + ("" if p.ok else " (a run failed)"),
                             load_range([p])])
                continue
            o = by.get((t.versus, label))
            if o is None or not o.wall or not p.wall:
                rows.append([text, f"{t.versus} not measured", "-", "-", "n/a", load_range([p])])
                continue

            def x(pop: Result, other: Result) -> float:
                return other.wall / pop.wall if t.versus == "fetchmail" else pop.wall / other.wall

            def met(value: float) -> bool:
                return value >= t.goal if t.versus == "fetchmail" else value <= t.goal

            value = x(p, o)
            figure = f"pop3gui {p.wall:.2f} s, {t.versus} {o.wall:.2f} s (median walls)"
            rounds = [x(a, b) for a, b in zip(p.by_round, o.by_round, strict=False) if a.wall and b.wall]
            if len(rounds) > 1:
                figure += (f"; round by round {min(rounds):.2f}–{max(rounds):.2f}×, met in "
                           f"{sum(map(met, rounds))} of {len(rounds)}")
            ok = p.ok and o.ok
            rows.append([text, figure, f"{value:.2f}×", ("≥ " if t.versus == "fetchmail" else "≤ ") + f"{t.goal:g}×",
                         ("yes" if met(value) else "NO") if ok else "FAIL (a run failed)", load_range([p, o])])
    return rows


def render(machine: dict[str, str], sections: list[tuple[Case, list[Result], list[str]]], *,
           markdown: bool, profile_text: str = "", verdicts: list[list[str]] | None = None) -> str:
    out: list[str] = []
    if markdown:
        out.append("### Machine\n")
        out += [f"- {k}: {v}" for k, v in machine.items()]
        out.append(f"\nMethod: {METHOD}\n")
        if verdicts:
            out.append("### Targets\n")
            out.append(md_table(VERDICT_HEADERS, verdicts))
            out.append("")
        for case, results, extra in sections:
            out.append(f"### {case.name}: {case.title}\n")
            out.append(md_table(HEADERS, result_rows(results)))
            lines = case_ratios(case, results) + extra
            if lines:
                out.append("")
                out += [f"- {line}" for line in lines]
            out.append("")
        if profile_text:
            out.append("### Profile of pop3gui (cProfile)\n")
            out.append("```\n" + profile_text.rstrip() + "\n```")
    else:
        out.append("Machine:")
        out += [f"  {k:<11} {v}" for k, v in machine.items()]
        out.append("")
        out.append("Method: " + METHOD)
        for case, results, extra in sections:
            out.append("")
            out.append(f"== {case.name}: {case.title}")
            out.append(text_table(HEADERS, result_rows(results)))
            out += ["  " + line for line in case_ratios(case, results) + extra]
        if profile_text:
            out.append("")
            out.append("== profile of pop3gui (cProfile)")
            out.append(profile_text.rstrip())
        if verdicts:
            out.append("")
            out.append("== targets (ratio of the median walls; load = 1-minute load average around those runs)")
            out.append(text_table(VERDICT_HEADERS, verdicts))
    return "\n".join(out) + "\n"


# --- profiling ----------------------------------------------------------------------


def profile_pop3gui(setup: Setup, corpus: Corpus, workload: Workload, top: int = 25,
                    keep_as: Path | None = None) -> str:
    reset(setup.dovecot, setup.postfix, corpus)
    prof = setup.work / "pop3gui.prof"
    run, log = run_pop3gui(setup, workload, profile=prof)
    wait_delivered(setup.postfix, workload.total, run.started, timeout=120)
    import io

    lines = [(f"workload {workload.label}: wall {run.wall:.2f} s under cProfile (exit code {run.returncode}), "
              f"CPU {run.cpu:.2f} s")]
    if not prof.exists():
        return "\n".join(lines + [f"no profile written; log: {log}"])
    if keep_as is not None:
        shutil.copyfile(prof, keep_as)
        lines.append(f"profile kept as {keep_as} (python -m pstats {keep_as})")
    for key, title in (("tottime", "by own time"), ("cumulative", "by cumulative time")):
        buf = io.StringIO()
        stats = pstats.Stats(str(prof), stream=buf)
        stats.strip_dirs().sort_stats(key).print_stats(top)
        text = buf.getvalue()
        body = text[text.find("   ncalls"):] if "   ncalls" in text else text
        head = [ln for ln in text.splitlines() if "function calls" in ln]
        lines.append(f"-- top {top} {title} ({head[0].strip() if head else ''})")
        lines.append(body.rstrip())
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------


def spread_lines(workload: Workload, peers: list[str], rounds: list[list[Result]]) -> list[str]:
    """Every run's wall time per peer (the table shows the median), and pop3gui's ratios round by round."""
    lines = []
    for k, peer in enumerate(peers):
        walls = sorted(runs[k].wall for runs in rounds)
        lines.append(f"{workload.label}: {peer} wall of the {len(walls)} runs "
                     + ", ".join(f"{w:.2f}" for w in walls) + f" s (spread {walls[-1] - walls[0]:.2f} s)")
    if "pop3gui" in peers:
        p = peers.index("pop3gui")
        for k, other in enumerate(peers):
            if other == "pop3gui":
                continue
            ratios = sorted(runs[k].wall / runs[p].wall for runs in rounds if runs[p].wall)
            if ratios:
                lines.append(f"{workload.label}: {other}/pop3gui wall round by round "
                             + ", ".join(f"{x:.2f}×" for x in ratios)
                             + f" (median {ratios[len(ratios) // 2]:.2f}×)")
    return lines


def run_case(case: Case, setup_base: tuple[DovecotServer, PostfixServer, Path], peers: list[str],
             fetchmail: str | None, repeat: int, profile: bool,
             parallel_accounts: int | None = None, floor_in_process: bool = False,
             profile_out: Path | None = None) -> tuple[list[Result], list[str], str]:
    dovecot, postfix, work = setup_base
    results: list[Result] = []
    extra: list[str] = []
    profile_text = ""
    for workload in case.workloads:
        corpus = Corpus.build(work / "corpus" / case.name / workload.label.replace("×", "x").replace("@", "-"),
                              workload)
        for a in range(workload.accounts):
            if not dovecot.maildir_path(f"bench{a}").exists():
                dovecot.add_user(f"bench{a}", PASSWORD)
        port = mailbox_port(dovecot, workload)
        proxy = ProxyProcess(port, workload.delay_ms) if workload.delay_ms else None
        try:
            setup = Setup(dovecot, postfix, proxy.port if proxy else port, work, parallel_accounts, floor_in_process)
            active = [peer for peer in peers if peer != "fetchmail" or fetchmail is not None]
            print(f"[{case.name}] {', '.join(active)}: {workload.describe()}"
                  + (f", {repeat} interleaved rounds" if repeat > 1 else "") + " ...", flush=True)
            rounds = measure_interleaved(active, setup, corpus, workload, fetchmail, repeat, case.name)
            for k, peer in enumerate(active):
                r = median_run([runs[k] for runs in rounds])
                print(f"[{case.name}] {peer}: wall {r.wall:.2f} s, {r.msgs_per_s:.1f} msg/s, CPU {r.cpu:.2f} s, "
                      f"peak RSS {r.maxrss_kb / 1024:.0f} MiB, delivered {r.delivered}/{workload.total}"
                      + ("" if r.ok else "  FAILED: " + "; ".join(r.notes)), flush=True)
                results.append(r)
            if repeat > 1:
                extra += spread_lines(workload, active, rounds)
            # The case's last (largest) workload: per-message costs show there, start-up less.
            if profile and "pop3gui" in peers and workload is case.workloads[-1]:
                print(f"[{case.name}] profiling pop3gui under cProfile ...", flush=True)
                profile_text = profile_pop3gui(setup, corpus, workload, keep_as=profile_out)
        finally:
            if proxy is not None:
                proxy.stop()
            shutil.rmtree(corpus.folder, ignore_errors=True)
    if fetchmail is None and "fetchmail" in peers:
        extra.append("fetchmail: not installed")
    return results, extra, profile_text


def mailbox_port(dovecot: DovecotServer, workload: Workload) -> int:
    return dovecot.imap_port if workload.protocol == "imap" else dovecot.pop3_port


def warm_up(dovecot: DovecotServer, postfix: PostfixServer, work: Path, peers: list[str],
            fetchmail: str | None, protocols: list[str]) -> None:
    """One small unreported run of each peer and protocol: .pyc files, page cache, Postfix's first delivery
    agents, Dovecot's first imap process."""
    if not dovecot.maildir_path("bench0").exists():
        dovecot.add_user("bench0", PASSWORD)
    for protocol in protocols:
        workload = Workload(f"warm-up {protocol}", 1, 10, 10 * KIB, protocol=protocol)
        corpus = Corpus.build(work / "corpus" / f"warm-up-{protocol}", workload)
        setup = Setup(dovecot, postfix, mailbox_port(dovecot, workload), work)
        for peer in peers:
            if peer == "fetchmail" and fetchmail is None:
                continue
            r = measure(peer, setup, corpus, workload, fetchmail)
            if not r.ok:
                print(f"warm-up of {peer} ({protocol}) failed: {'; '.join(r.notes)}", flush=True)
        shutil.rmtree(corpus.folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="End-to-end delivery benchmark: pop3gui vs fetchmail vs a floor "
                                     "(real Dovecot and Postfix on loopback; needs root).")
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="run this case (repeatable; default: all of " + ", ".join(DEFAULT_CASES) + "; the "
                        "IMAP cases only when named)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 × 10 KiB on loopback only")
    parser.add_argument("--peer", action="append", choices=["pop3gui", "fetchmail", "floor"],
                        help="measure only this peer (repeatable; default: all three)")
    parser.add_argument("--repeat", type=int, default=1, metavar="K",
                        help="run every measurement K times and report the median wall time (default 1)")
    parser.add_argument("--profile", action="store_true",
                        help="also run pop3gui once under cProfile on the first case (its largest workload) and print the top functions")
    parser.add_argument("--profile-out", metavar="FILE", type=Path,
                        help="with --profile: keep the cProfile data as FILE (read it with python -m pstats FILE)")
    parser.add_argument("--markdown", action="store_true", help="print the final report as Markdown")
    parser.add_argument("--output", metavar="FILE", help="also write the Markdown report to FILE")
    parser.add_argument("--rev", metavar="COMMIT",
                        help="measure pop3gui as committed in COMMIT (a `git archive` in the temp folder) instead "
                        "of the working tree; use --rev HEAD for a baseline while pop3gui/ has local changes")
    parser.add_argument("--no-warm-up", action="store_true", help="skip the small unreported warm-up runs")
    parser.add_argument("--floor-in-process", action="store_true",
                        help="run the floor in this process, without an interpreter's start (as runs before "
                        "2026-12-01 06:40 did); by default it is a process of its own, as pop3gui and fetchmail are")
    parser.add_argument("--max-parallel-accounts", type=int, metavar="N",
                        help="pop3gui's [performance] max_parallel_accounts for every run (default: pop3gui's own "
                        "default, 4); the floor always works every account at once")
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        print("bench_delivery: must run as root (private Dovecot and Postfix instances).", file=sys.stderr)
        return 2
    cases = [QUICK] if args.quick else [CASES[c] for c in (args.case or DEFAULT_CASES)]
    peers = args.peer or ["pop3gui", "fetchmail", "floor"]
    fetchmail = ensure_fetchmail() if "fetchmail" in peers else None
    if "fetchmail" in peers and fetchmail is None:
        print("fetchmail: not installed", flush=True)
    work = Path(tempfile.mkdtemp(prefix="pop3gui-bench-"))
    work.chmod(0o755)
    try:
        commit = use_pop3gui_source(args.rev, work)
    except (subprocess.CalledProcessError, ImportError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        print(f"bench_delivery: cannot use pop3gui from {args.rev or ROOT}: {exc}", file=sys.stderr)
        return 2
    machine = machine_details(commit)
    load_at_start = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    startup: Run | None = None
    sections: list[tuple[Case, list[Result], list[str]]] = []
    profile_text = ""
    failed = False
    began = time.monotonic()
    try:
        protocols = sorted({w.protocol for case in cases for w in case.workloads}, reverse=True)  # pop3 first
        dovecot_server = DovecotServer(imap=True) if "imap" in protocols else DovecotServer()
        with dovecot_server as dovecot, PostfixServer(message_size_limit=POSTFIX_SIZE_LIMIT) as postfix:
            if not args.no_warm_up:
                print("warming up (unreported) ...", flush=True)
                warm_up(dovecot, postfix, work, peers, fetchmail, protocols)
            if "pop3gui" in peers:
                startup = pop3gui_startup(Setup(dovecot, postfix, dovecot.pop3_port, work))
                machine["pop3gui start-up"] = (f"wall {startup.wall:.2f} s, CPU {startup.cpu:.2f} s, peak RSS "
                                               f"{startup.maxrss_kb / 1024:.0f} MiB (`python -m pop3gui "
                                               "--version`, best of 3)")
                if args.floor_in_process:
                    machine["floor"] = ("in this benchmark process (--floor-in-process): no interpreter start; wall "
                                        "to its sessions' last QUIT/LOGOUT, CPU = process_time delta, peak RSS = "
                                        "ru_maxrss of the whole benchmark process")
                if args.max_parallel_accounts is not None:
                    machine["pop3gui config"] = (f"[performance] max_parallel_accounts = {args.max_parallel_accounts} "
                                                 "(--max-parallel-accounts; the default is 4)")
            for case in cases:
                results, extra, prof = run_case(case, (dovecot, postfix, work), peers, fetchmail, args.repeat,
                                                args.profile and not profile_text, args.max_parallel_accounts,
                                                args.floor_in_process, args.profile_out)
                profile_text = profile_text or prof
                failed = failed or any(not r.ok for r in results)
                sections.append((case, results, extra))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine["benchmark run"] = f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {time.monotonic() - began:.0f} s"
    machine["load"] = (f"1/5/15-minute load average {' / '.join(load_at_start) or 'n/a'} at the start, "
                       f"{' / '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end; 1-minute average "
                       f"{load_range([r for _, results, _ in sections for r in results])} before and after each "
                       "measurement")
    verdicts = target_verdicts(sections, startup.cpu if startup else None)
    print()
    print(render(machine, sections, markdown=args.markdown, profile_text=profile_text, verdicts=verdicts), end="")
    if args.output:
        Path(args.output).write_text(render(machine, sections, markdown=True, profile_text=profile_text,
                                            verdicts=verdicts))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
