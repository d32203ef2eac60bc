"""A real Dovecot POP3 and IMAP server on loopback, private to one test session.

Started with its own configuration file in a temporary directory; it serves
plain POP3 (with STLS) on ``pop3_port`` and implicit TLS on ``pop3s_port``, and,
when dovecot-imapd is installed, plain IMAP (with STARTTLS) on ``imap_port`` and
implicit TLS on ``imaps_port``, all on 127.0.0.1, to the same users with the
same certificate. Mail is stored as Maildirs owned by the ``mail`` user, because
Dovecot refuses uid 0 for mail access.

IMAP folders are Maildir++ subfolders (``.Archive.2024`` on disk) named with
the hierarchy separator ``/`` over IMAP (``Archive/2024``), with UTF-8 names on
disk; a folder name cannot hold a ``.``. Mail put into a Maildir while a client
IDLEs is announced within about a second (inotify, and a 1 s re-check).
"""

from __future__ import annotations

import mailbox
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.servers.certs import TestCertificates, make_certificates
from tests.servers.maildir_copies import mailbox_messages

MAIL_USER = "mail"

IMAP_SEPARATOR = "/"
"""The IMAP hierarchy separator of the test Dovecot (Maildir++ stores it as '.')."""

IDLE_CHECK_SECONDS = 1
"""mailbox_idle_check_interval: how often an IDLE session re-checks its mailbox at the latest."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int,
    timeout: float,
    describe: Callable[[], str],
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll until *port* accepts connections; raise with *describe()* after *timeout*."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if alive is not None and not alive():
            break
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {timeout:.0f} s: {describe()}")


def process_gone(pid: int) -> bool:
    """True when *pid* has exited (a zombie nobody reaps counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    for line in status.splitlines():
        if line.startswith("State:"):
            return "Z" in line.split(":", 1)[1] or "X" in line.split(":", 1)[1]
    return False


def imap_binary(dovecot: str | None = None) -> Path | None:
    """Dovecot's imap program (package dovecot-imapd), or None when it is not installed."""
    dovecot = dovecot or shutil.which("dovecot")
    if dovecot is None:
        return None
    prefix = Path(dovecot).resolve().parent.parent
    for candidate in (prefix / "lib" / "dovecot" / "imap", prefix / "libexec" / "dovecot" / "imap"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def mail_ids() -> tuple[int, int]:
    entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


_CONFIG = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
info_log_path = {base}/dovecot.log
listen = 127.0.0.1
protocols = {protocols}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_dh = <{dh}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = {auth_failure_delay} secs
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:{mail}/%u:UTF-8
mailbox_idle_check_interval = {idle_check} secs
pop3_uidl_format = %08Xu%08Xv
login_greeting = pop3gui test Dovecot ready.
namespace inbox {{
  inbox = yes
  separator = {separator}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}/%u
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
"""

# Added to _CONFIG when the server also speaks IMAP.
_IMAP_CONFIG = """\
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
"""

# Added to _CONFIG for a server that also takes OAuth2 bearer tokens (XOAUTH2,
# OAUTHBEARER), checked by RFC 7662 introspection at a test's fake provider.
# The oauth2 passdb comes first and only for those mechanisms, the password
# users keep theirs (and only theirs).  Loopback is a trusted network so that a refused token
# costs no growing per-address penalty (Dovecot's anvil would otherwise make
# each further failure from 127.0.0.1 wait seconds longer).
_OAUTH_CONFIG = """\
auth_mechanisms = plain login xoauth2 oauthbearer
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {oauth2_args}
}}
"""

# Dovecot 2.3's oauth2 passdb settings (2.4 changed the syntax: pinned here).
_OAUTH2_ARGS = """\
introspection_mode = post
introspection_url = {introspection_url}
username_attribute = email
active_attribute = active
active_value = true
force_introspection = yes
"""


def _distinct_free_ports(count: int) -> list[int]:
    """*count* different TCP ports on 127.0.0.1 that are free right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class DovecotServer:
    """A running Dovecot POP3 (and IMAP) server; use :meth:`start` or the context manager.

    *imap*: True runs IMAP too (FileNotFoundError without dovecot-imapd), False
    POP3 only, None (the default) IMAP whenever dovecot-imapd is installed.
    ``imap_port`` and ``imaps_port`` stay 0 when IMAP does not run.
    """

    def __init__(self, root: Path | None = None, *, auth_failure_delay: int = 0,
                 oauth_introspection_url: str | None = None, imap: bool | None = None,
                 apop: bool = False) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="pop3gui-dovecot-"))
        self.root.chmod(0o755)
        self.mail_dir = self.root / "mail"
        self.users_dir = self.root / "users"
        self.config_path = self.root / "dovecot.conf"
        self.log_path = self.root / "dovecot.log"
        self.pop3_port = 0
        self.pop3s_port = 0
        self.imap_port = 0
        self.imaps_port = 0
        self.imap = imap
        self.imap_separator = IMAP_SEPARATOR
        self.certs: TestCertificates | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._uid, self._gid = mail_ids()
        self.auth_failure_delay = auth_failure_delay
        # With a URL, POP3 also takes XOAUTH2 and OAUTHBEARER tokens that URL calls active.
        self.oauth_introspection_url = oauth_introspection_url
        # APOP too (RFC 1939): the POP3 greeting carries a <timestamp>; the passwords are stored in plain text.
        self.apop = apop
        self.start_seconds = 0.0

    # -- life cycle ---------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        assert self.certs is not None, "server not started"
        return self.certs.ca_path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this server's CA (host name checked)."""
        assert self.certs is not None, "server not started"
        return self.certs.client_context()

    def start(self, timeout: float = 20.0) -> DovecotServer:
        began = time.monotonic()
        dovecot = shutil.which("dovecot")
        if dovecot is None:
            raise FileNotFoundError("dovecot is not installed (apt-get install dovecot-pop3d)")
        self.certs = make_certificates(self.root / "tls")
        self.mail_dir.mkdir(exist_ok=True)
        os.chown(self.mail_dir, self._uid, self._gid)
        self.mail_dir.chmod(0o755)
        self.users_dir.mkdir(exist_ok=True)
        self.users_dir.chmod(0o755)
        dh = Path("/usr/share/dovecot/dh.pem")
        with_imap = self.imap
        if with_imap is None:
            with_imap = imap_binary(dovecot) is not None
        elif with_imap and imap_binary(dovecot) is None:
            raise FileNotFoundError("Dovecot's imap is not installed (apt-get install dovecot-imapd)")
        ports = _distinct_free_ports(4 if with_imap else 2)
        self.pop3_port, self.pop3s_port = ports[0], ports[1]
        self.imap_port, self.imaps_port = (ports[2], ports[3]) if with_imap else (0, 0)
        config = _CONFIG.format(
            base=self.root,
            cert=self.certs.cert_path,
            key=self.certs.key_path,
            dh=dh,
            uid=self._uid,
            gid=self._gid,
            mail=self.mail_dir,
            users=self.users_dir,
            pop3_port=self.pop3_port,
            pop3s_port=self.pop3s_port,
            auth_failure_delay=self.auth_failure_delay,
            protocols="pop3 imap" if with_imap else "pop3",
            idle_check=IDLE_CHECK_SECONDS,
            separator=IMAP_SEPARATOR,
        )
        if with_imap:
            config += _IMAP_CONFIG.format(imap_port=self.imap_port, imaps_port=self.imaps_port)
        if self.apop:
            config = config.replace("auth_mechanisms = plain login\n", "auth_mechanisms = plain login apop\n")
        if not dh.exists():
            config = config.replace(f"ssl_dh = <{dh}\n", "")
        if self.oauth_introspection_url is not None:
            config = self._with_oauth(config, self.oauth_introspection_url)
        self.config_path.write_text(config)
        # -F keeps the master in the foreground so it stays our child and is
        # reaped; output goes to DEVNULL (Dovecot keeps inherited pipes open).
        self._proc = subprocess.Popen(
            [dovecot, "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for port in (self.pop3_port, self.pop3s_port, self.imap_port, self.imaps_port):
                if port == 0:
                    continue
                wait_for_port(port, timeout, self._describe, alive=self._alive)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _with_oauth(self, config: str, introspection_url: str) -> str:
        """*config* with the oauth2 passdb first, asking *introspection_url* about each token."""
        args = self.root / "dovecot-oauth2.conf.ext"
        args.write_text(_OAUTH2_ARGS.format(introspection_url=introspection_url))
        args.chmod(0o644)
        oauth = _OAUTH_CONFIG.format(oauth2_args=args)
        config = config.replace("auth_mechanisms = plain login\n", "")
        # Without its own mechanisms the password passdb would also take a
        # password offered as an XOAUTH2 "token".
        config = config.replace("  driver = passwd-file\n", "  driver = passwd-file\n  mechanisms = plain login\n", 1)
        return config.replace("passdb {\n", oauth + "passdb {\n", 1)

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _describe(self) -> str:
        state = "running" if self._alive() else f"exited with {self._proc.returncode if self._proc else None}"
        log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else "(no log)"
        return f"dovecot -c {self.config_path} {state}; log:\n{log}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        pid_file = self.root / "run" / "master.pid"
        pid = None
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            pass
        if pid is not None and not process_gone(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if proc is not None:
            if pid is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        elif pid is not None:
            deadline = time.monotonic() + 10
            while not process_gone(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- users and mail -----------------------------------------------------

    def maildir_path(self, user: str) -> Path:
        return self.mail_dir / user

    def add_user(self, name: str, password: str) -> Path:
        """Create *name* with *password* (works while running) and return its Maildir."""
        if any(c in name for c in ":/\n") or "\n" in password or ":" in password:
            raise ValueError("user name or password not representable in a passwd-file")
        path = self.maildir_path(name)
        box = mailbox.Maildir(str(path), create=True)
        box.close()
        chown_tree(path, self._uid, self._gid)
        # One passwd-file per user: Dovecot re-reads a changed passwd-file at
        # most once a second, but a file it has not seen yet is read at once.
        target = self.users_dir / name
        tmp = self.users_dir / f".{name}.tmp"
        tmp.write_text(f"{name}:{{PLAIN}}{password}:::::\n")
        tmp.chmod(0o644)
        os.replace(tmp, target)
        return path

    def add_mailbox(self, name: str) -> Path:
        """An empty Maildir for *name* and no password: a user who signs in with OAuth2 only.

        Dovecot lower-cases the user name a token's introspection gives (%Lu),
        so the Maildir is made under the lower-cased name.
        """
        name = name.lower()
        if any(c in name for c in ":/\n") or name in ("", ".", ".."):
            raise ValueError(f"user name not usable as a Maildir: {name!r}")
        path = self.maildir_path(name)
        box = mailbox.Maildir(str(path), create=True)
        box.close()
        chown_tree(path, self._uid, self._gid)
        return path

    def folder_path(self, user: str, folder: str = "INBOX") -> Path:
        """The Maildir of *user*'s IMAP *folder* ("INBOX" is the user's Maildir itself).

        A nested folder "Archive/2024" is the Maildir++ subfolder ".Archive.2024".
        """
        if folder.upper() == "INBOX":
            return self.maildir_path(user)
        parts = folder.split(IMAP_SEPARATOR)
        if any(part in ("", "~") or any(c in part for c in "./\n\r\0") for part in parts):
            raise ValueError(f"folder name not usable in the test Dovecot (Maildir++): {folder!r}")
        return self.maildir_path(user) / ("." + ".".join(parts))

    def create_folder(self, user: str, name: str) -> Path:
        """Create the IMAP folder *name* ("Archive/2024": separator "/") of *user*; return its Maildir.

        Works while the server runs: Dovecot finds the folder at the next LIST or SELECT.
        Creating an existing folder is no error.
        """
        root = self.maildir_path(user)
        if not root.is_dir():
            raise KeyError(f"no such user {user!r}")
        path = self.folder_path(user, name)
        if path == root:
            return path
        box = mailbox.Maildir(str(path), create=True)
        box.close()
        (path / "maildirfolder").touch()
        chown_tree(path, self._uid, self._gid)
        return path

    def folders(self, user: str) -> list[str]:
        """*user*'s IMAP folders as a client names them: "INBOX" first, then the others sorted."""
        root = self.maildir_path(user)
        if not root.is_dir():
            raise KeyError(f"no such user {user!r}")
        names = [entry.name[1:].replace(".", IMAP_SEPARATOR) for entry in os.scandir(root)
                 if entry.is_dir() and entry.name.startswith(".") and entry.name not in (".", "..")]
        return ["INBOX", *sorted(names)]

    def deliver(self, user: str, message: bytes, folder: str = "INBOX") -> str:
        """Put *message* into new/ of *user*'s *folder* (owned by mail); return its key.

        The folder must exist (:meth:`create_folder`); an IDLE session on it hears of the message.
        """
        if not self.maildir_path(user).is_dir():
            raise KeyError(f"no such user {user!r}")
        path = self.folder_path(user, folder)
        if not path.is_dir():
            raise KeyError(f"no folder {folder!r} for user {user!r} (create_folder first)")
        box = mailbox.Maildir(str(path), factory=None, create=False)
        try:
            key = box.add(message)
            subdir = "new"
            os.chown(path / subdir / key, self._uid, self._gid)
        finally:
            box.close()
        return key

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The messages still in *user*'s *folder*, oldest first."""
        return mailbox_messages(self.folder_path(user, folder))
