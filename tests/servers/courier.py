"""A real Courier POP3 server on loopback, private to one test session.

Debian's courier-pop conflicts with the installed Dovecot, so the packages are
unpacked into a cached root and run in a private namespace
(:mod:`tests.servers.privroot`): ``authdaemond`` with the ``authuserdb``
module (users in a private ``/etc/courier/userdb``, no PAM, no system
accounts), and two ``couriertcpd`` listeners on 127.0.0.1 started the way
Debian's ``/usr/lib/courier/pop3d`` and ``pop3d-ssl`` scripts start them:
plain POP3 with STLS on ``pop3_port``, implicit TLS through ``couriertls`` on
``pop3s_port``. Everything else is Debian's configuration as shipped, so the
server keeps advertising PIPELINING while losing what follows a login command
in the same write - the behaviour the compatibility tests exist for.

Mail is one Maildir per user, owned by the ``mail`` user.
"""

from __future__ import annotations

import mailbox
import os
import shutil
import ssl
import tempfile
import time
from pathlib import Path

from tests.servers.certs import TestCertificates, make_certificates
from tests.servers.dovecot import chown_tree, free_port, mail_ids, wait_for_port
from tests.servers.privroot import (
    NamespacedProcess,
    PrivateRoot,
    PrivateRootError,
    sha512_crypt,
    system_user,
    unpacked_root,
)

PACKAGES = ["courier-pop", "courier-base", "courier-authlib", "courier-authdaemon", "courier-authlib-userdb"]
"""What is unpacked (the missing shared libraries are added by :func:`unpacked_root`)."""

# Started like Debian's /usr/lib/courier/pop3d and pop3d-ssl (set -a; source the
# two configuration files; couriertcpd ...), minus courierlogger's daemonising,
# so every process stays in the namespace and logs to our file.
_LAUNCH = """\
set -a
prefix=/usr
exec_prefix=/usr
sbindir=/usr/sbin
bindir=/usr/bin
libexecdir=/usr/lib/courier
. /etc/courier/authdaemonrc
/usr/lib/courier/courier-authlib/authdaemond &
. /etc/courier/pop3d
. /etc/courier/pop3d-ssl
TLS_CACHEFILE=
/usr/sbin/couriertcpd -address={host} -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS \\
    {pop3_port} /usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d $MAILDIRPATH &
POP3_TLS=1 POP3_STARTTLS=NO POP3_TLS_REQUIRED=0 /usr/sbin/couriertcpd -address={host} \\
    -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP $TCPDOPTS \\
    {pop3s_port} $COURIERTLS -server -tcpd -user=courier \\
    /usr/lib/courier/courier/courierpop3login /usr/lib/courier/courier/courierpop3d $MAILDIRPATH &
wait
"""


class CourierServer:
    """A running Courier POP3 server; use :meth:`start` or the context manager."""

    host = "127.0.0.1"

    def __init__(self, root: Path | None = None) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="pop3gui-courier-"))
        self.root.chmod(0o755)
        self.mail_dir = self.root / "mail"
        self.log_path = self.root / "courier.log"
        self.pop3_port = 0
        self.pop3s_port = 0
        self.certs: TestCertificates | None = None
        self.start_seconds = 0.0
        self._uid, self._gid = mail_ids()
        self._users: dict[str, str] = {}
        self._private: PrivateRoot | None = None
        self._proc: NamespacedProcess | None = None

    # -- life cycle ---------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        assert self.certs is not None, "server not started"
        return self.certs.ca_path

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this server's CA (host name checked)."""
        assert self.certs is not None, "server not started"
        return self.certs.client_context()

    def start(self, timeout: float = 20.0) -> CourierServer:
        """Unpack (cached), configure and start; raises PrivateRootError when it cannot be prepared."""
        began = time.monotonic()
        package_root = unpacked_root("courier", PACKAGES)
        self.certs = make_certificates(self.root / "tls")
        self.mail_dir.mkdir(exist_ok=True)
        self.mail_dir.chmod(0o755)
        os.chown(self.mail_dir, self._uid, self._gid)
        courier = system_user("courier")
        # couriertls reads the certificate (key and chain in one file) as the courier user.
        pem = self.certs.key_path.read_bytes() + self.certs.cert_path.read_bytes()
        self.pop3_port = free_port()
        self.pop3s_port = free_port()
        while self.pop3s_port == self.pop3_port:
            self.pop3s_port = free_port()
        self._private = PrivateRoot(
            package_root,
            self.root / "ns",
            users=[courier],
            etc_files={"courier/pop3d.pem": pem, "courier/authdaemonrc": _authdaemonrc(package_root)},
            dirs=[
                ("/run/courier", 0, courier.gid, 0o775),
                ("/run/courier/authdaemon", courier.uid, courier.gid, 0o750),
            ],
        )
        self._private.prepare()
        pem_path = self._private.etc_path("courier/pop3d.pem")
        os.chown(pem_path, courier.uid, courier.gid)
        pem_path.chmod(0o600)
        launch = _LAUNCH.format(host=self.host, pop3_port=self.pop3_port, pop3s_port=self.pop3s_port)
        self._proc = self._private.start(["/bin/sh", "-c", launch], log_path=self.log_path)
        try:
            self._write_userdb()
            for port in (self.pop3_port, self.pop3s_port):
                wait_for_port(port, timeout, self._describe, alive=self._proc.alive)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _describe(self) -> str:
        if self._proc is None:
            return "not started"
        state = "running" if self._proc.alive() else f"exited with {self._proc.popen.returncode}"
        return f"courier {state}; log:\n{self._proc.log_tail()}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> CourierServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- users and mail -----------------------------------------------------

    def maildir_path(self, user: str) -> Path:
        return self.mail_dir / user

    def add_user(self, name: str, password: str) -> Path:
        """Create *name* with *password* in the userdb (works while running); return its Maildir."""
        if not name or any(c in name for c in "|\t\n/= ") or "\n" in password:
            raise ValueError("user name or password not representable in a Courier userdb")
        path = self.maildir_path(name)
        mailbox.Maildir(str(path), create=True).close()
        chown_tree(path, self._uid, self._gid)
        self._users[name] = sha512_crypt(password)
        if self._proc is not None:
            self._write_userdb()
        return path

    def _write_userdb(self) -> None:
        """Rewrite /etc/courier/userdb and compile it (authuserdb notices the new userdb.dat)."""
        assert self._private is not None
        lines = [
            f"{name}\tuid={self._uid}|gid={self._gid}|home={self.maildir_path(name)}"
            f"|mail={self.maildir_path(name)}|systempw={hashed}\n"
            for name, hashed in sorted(self._users.items())
        ]
        self._private.write_file("/etc/courier/userdb", "".join(lines).encode(), mode=0o600)
        proc = self._private.run(["/usr/sbin/makeuserdb"])
        if proc.returncode != 0:
            raise PrivateRootError(f"makeuserdb failed: {(proc.stdout + proc.stderr).decode(errors='replace')}")

    def deliver(self, user: str, message: bytes) -> str:
        """Put *message* into *user*'s Maildir new/ (owned by mail); return its key.

        Stored with LF line ends, as a local MDA would: Courier serves the file
        adding a CR before every LF, so a stored CRLF would go out as CR CR LF.
        """
        message = message.replace(b"\r\n", b"\n")
        path = self.maildir_path(user)
        if not path.is_dir():
            raise KeyError(f"no such user {user!r}")
        box = mailbox.Maildir(str(path), factory=None, create=False)
        try:
            key = box.add(message)
            os.chown(path / "new" / key, self._uid, self._gid)
        finally:
            box.close()
        return key

    def messages(self, user: str) -> list[bytes]:
        """The messages still in *user*'s mailbox, oldest first."""
        box = mailbox.Maildir(str(self.maildir_path(user)), factory=None, create=False)
        try:
            entries = []
            for key in box.keys():
                try:
                    stamp = box.get_message(key).get_date()
                    data = box.get_bytes(key)
                except (KeyError, FileNotFoundError):
                    continue  # removed or renamed by Courier meanwhile
                entries.append((stamp, key, data))
        finally:
            box.close()
        entries.sort(key=lambda e: (e[0], e[1]))
        return [data for _, _, data in entries]


def _authdaemonrc(package_root: Path) -> str:
    """Debian's authdaemonrc with authuserdb as the only module (no PAM, no system accounts)."""
    text = (package_root / "etc/courier/authdaemonrc").read_text()
    return text.replace('authmodulelist="authpam"', 'authmodulelist="authuserdb"')
