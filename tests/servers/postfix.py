"""A real Postfix on loopback playing the office's local mail server.

Each instance has its own configuration directory, queue and data directory,
registered in the system's ``/etc/postfix/main.cf`` as an
``alternate_config_directories`` entry while it runs. smtpd listens on a free
port of 127.0.0.1 and accepts mail only for ``accepted_domains``; every accepted
recipient is delivered by the ``virtual`` agent into one Maildir, each copy
carrying ``Delivered-To:`` with its envelope recipient.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from tests.servers.certs import TestCertificates

from tests.servers.dovecot import chown_tree, free_port, mail_ids, process_gone, wait_for_port
from tests.servers.maildir_copies import MaildirCopies

SYSTEM_CONFIG_DIR = Path("/etc/postfix")
_LOCK_FILE = Path(tempfile.gettempdir()) / "pop3gui-postfix-main-cf.lock"
_INSTANCE_PREFIX = "pop3gui-postfix-"

_MASTER_CF = """\
{port}    inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
syslog_name = {syslog_name}
maillog_file = {root}/maillog
maillog_file_prefixes = /var, /dev/stdout, {root}
myhostname = mail.pop3gui.test
mydomain = pop3gui.test
myorigin = $myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_transport = error:5.1.1 local delivery is disabled
biff = no
append_dot_mydomain = no
smtputf8_enable = yes
smtpd_banner = $myhostname ESMTP pop3gui test Postfix
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:{root}/unknown_users
message_size_limit = {message_size_limit}
mailbox_size_limit = 0
virtual_mailbox_limit = 0
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:all/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = {uid}
virtual_transport = virtual
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
bounce_queue_lifetime = 0
delay_warning_time = 0
"""


def _with_overrides(template: str, overrides: Mapping[str, str]) -> str:
    """main.cf with each overridden setting's line replaced, or added at the end."""
    lines = template.splitlines()
    for name, value in overrides.items():
        line = f"{name} = {value}".replace("{", "{{").replace("}", "}}")
        found = [i for i, text in enumerate(lines) if text.split("=", 1)[0].strip() == name]
        if found:
            lines[found[0]] = line
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _system_config_lock() -> Iterator[None]:
    with open(_LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _postconf(*args: str) -> str:
    proc = subprocess.run(
        ["postconf", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"postconf {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout.strip()


def _split_list(value: str) -> list[str]:
    return [item for item in value.replace(",", " ").split() if item]


def _update_system_config(
    add_dirs: Iterable[str] = (), add_prefixes: Iterable[str] = (), remove: Iterable[str] = ()
) -> None:
    """Register or unregister instance directories in /etc/postfix/main.cf.

    Entries of earlier runs whose directory no longer exists are dropped.
    """
    main_cf = SYSTEM_CONFIG_DIR / "main.cf"
    with _system_config_lock():
        if not main_cf.exists():
            SYSTEM_CONFIG_DIR.mkdir(parents=True, exist_ok=True)
            main_cf.write_text("# created by the pop3gui test suite\ncompatibility_level = 3.6\n")
        sysdir = str(SYSTEM_CONFIG_DIR)
        current = _split_list(_postconf("-c", sysdir, "-h", "alternate_config_directories"))
        gone = set(remove)
        dirs = [
            d
            for d in current
            if d not in gone and (Path(d).is_dir() or _INSTANCE_PREFIX not in d)
        ]
        for d in add_dirs:
            if d not in dirs:
                dirs.append(d)
        prefixes = _split_list(_postconf("-c", sysdir, "-h", "maillog_file_prefixes"))
        kept = [
            p
            for p in prefixes
            if p not in gone and (Path(p).is_dir() or not Path(p).name.startswith(_INSTANCE_PREFIX))
        ]
        for d in add_prefixes:
            if d not in kept:
                kept.append(d)
        _postconf(
            "-c", sysdir, "-e",
            f"alternate_config_directories = {' '.join(dirs)}",
            f"maillog_file_prefixes = {', '.join(kept)}",
        )  # fmt: skip


class PostfixServer(MaildirCopies):
    """A running private Postfix instance; use :meth:`start` or the context manager."""

    def __init__(
        self,
        accepted_domains: Iterable[str] = ("contoso.com",),
        *,
        unknown_users: Iterable[str] = (),
        message_size_limit: int = 10_240_000,
        root: Path | None = None,
        main_cf: Mapping[str, str] | None = None,
        certificates: TestCertificates | None = None,
    ) -> None:
        """*main_cf* overrides settings of main.cf; with *certificates* smtpd offers STARTTLS on
        :attr:`port` and a second smtpd speaks implicit TLS (port 465 style) on :attr:`tls_port`."""
        self.main_cf_overrides = dict(main_cf or {})
        self.certificates = certificates
        self.tls_port = 0
        self.accepted_domains = list(accepted_domains)
        self.unknown_users = list(unknown_users)
        self.message_size_limit = message_size_limit
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix=_INSTANCE_PREFIX))
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.mail_base = self.root / "mail"
        self.maildir = self.mail_base / "all"
        self.maillog = self.root / "maillog"
        self.host = "127.0.0.1"
        self.port = 0
        self._started = False
        self.start_seconds = 0.0

    # -- life cycle ---------------------------------------------------------

    def _postfix(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # Postfix tells start-up errors only to syslog or a terminal: give it one.
        line = f"postfix -c {self.config_dir} {command}"
        proc = subprocess.run(
            ["script", "-qec", line, "/dev/null"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{line} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}\n{self._log_tail()}"
            )
        return proc

    def _log_tail(self) -> str:
        if not self.maillog.exists():
            return "(no maillog)"
        return "maillog:\n" + self.maillog.read_text(errors="replace")[-3000:]

    def start(self, timeout: float = 30.0) -> PostfixServer:
        began = time.monotonic()
        if shutil.which("postfix") is None:
            raise FileNotFoundError("postfix is not installed (apt-get install postfix)")
        uid, gid = mail_ids()
        self.port = free_port()
        self.config_dir.mkdir(exist_ok=True)
        (self.root / "spool").mkdir(exist_ok=True)
        data = self.root / "data"
        data.mkdir(exist_ok=True)
        shutil.chown(data, "postfix", "postfix")
        data.chmod(0o700)
        self.mail_base.mkdir(exist_ok=True)
        self.mail_base.chmod(0o755)
        os.chown(self.mail_base, uid, gid)
        self._write_unknown_users()
        master_cf = _MASTER_CF.format(port=self.port)
        overrides = dict(self.main_cf_overrides)
        if self.certificates is not None:
            self.tls_port = free_port()
            master_cf += ("tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"
                          f"{self.tls_port} inet  n       -       n       -       -       smtpd\n"
                          "  -o smtpd_tls_wrappermode=yes\n  -o smtpd_tls_security_level=encrypt\n")
            tls_dir = self.root / "tls"  # readable by smtpd, whatever the test's own folders allow
            tls_dir.mkdir(exist_ok=True)
            cert = shutil.copy(self.certificates.cert_path, tls_dir / "server.pem")
            key = shutil.copy(self.certificates.key_path, tls_dir / "server.key")
            overrides = {
                "smtpd_tls_cert_file": str(cert),
                "smtpd_tls_key_file": str(key),
                "smtpd_tls_security_level": "may",
                **overrides,
            }
        (self.config_dir / "master.cf").write_text(master_cf)
        (self.config_dir / "main.cf").write_text(
            _with_overrides(_MAIN_CF, overrides).format(
                root=self.root,
                syslog_name=f"postfix-{self.root.name}",
                message_size_limit=self.message_size_limit,
                domains=", ".join(self.accepted_domains),
                uid=uid,
                gid=gid,
            )
        )
        _update_system_config(add_dirs=[str(self.config_dir)], add_prefixes=[str(self.root)])
        try:
            self._postfix("start")
            self._started = True
            wait_for_port(self.port, timeout, self._log_tail)
            if self.tls_port:
                wait_for_port(self.tls_port, timeout, self._log_tail)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _write_unknown_users(self) -> None:
        lines = [f"{addr} 550 5.1.1 User unknown" for addr in self.unknown_users]
        path = self.root / "unknown_users"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o644)

    def set_unknown_users(self, addresses: Iterable[str]) -> None:
        """Replace the list of recipients refused with 550 5.1.1 (reloads Postfix)."""
        self.unknown_users = list(addresses)
        self._write_unknown_users()
        if self._started:
            self._postfix("reload")

    def _master_pid(self) -> int | None:
        try:
            return int((self.root / "spool" / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self._started:
            self._started = False
            pid = self._master_pid()
            self._postfix("stop", check=False)
            if pid is not None:
                deadline = time.monotonic() + 15
                while not process_gone(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        try:
            _update_system_config(remove=[str(self.config_dir), str(self.root)])
        finally:
            if self._own_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostfixServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was delivered (the rest is MaildirCopies') ---------------------

    def queue_files(self) -> list[Path]:
        """Messages still in Postfix's queue (not yet delivered or bounced)."""
        spool = self.root / "spool"
        files: list[Path] = []
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for root, _, names in os.walk(spool / sub):
                files.extend(Path(root) / n for n in names)
        return files

    def queued(self) -> int:
        return len(self.queue_files())

    def _drop_queue(self) -> None:
        if self._started:
            subprocess.run(
                ["postsuper", "-c", str(self.config_dir), "-d", "ALL"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )

    def wait_for_queue_empty(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.queue_files():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def clear(self) -> None:
        """Forget everything, then hand the Maildir back to the mail user the virtual agent writes as."""
        super().clear()
        if self.maildir.is_dir():
            chown_tree(self.maildir, *mail_ids())
