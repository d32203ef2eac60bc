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
from pathlib import Path

from tests.servers.dovecot import chown_tree
from tests.servers.maildir_copies import mailbox_messages
from tests.servers.private_pop3 import PrivatePop3Server
from tests.servers.privroot import PrivateRoot, PrivateRootError, sha512_crypt, system_user

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


class CourierServer(PrivatePop3Server):
    """A running Courier POP3 server; use :meth:`start` or the context manager."""

    name = label = "courier"
    packages = PACKAGES
    log_name = "courier.log"

    def __init__(self, root: Path | None = None) -> None:
        super().__init__(root)
        self._users: dict[str, str] = {}

    # -- configuration (PrivateServer.start calls these) ---------------------

    def _private(self, unpacked: Path) -> PrivateRoot:
        assert self.certs is not None
        self._mail_owned_dir(self.mail_dir, 0o755)
        courier = system_user("courier")
        # couriertls reads the certificate (key and chain in one file) as the courier user.
        pem = self.certs.key_path.read_bytes() + self.certs.cert_path.read_bytes()
        private = PrivateRoot(
            unpacked,
            self.root / "ns",
            users=[courier],
            etc_files={"courier/pop3d.pem": pem, "courier/authdaemonrc": _authdaemonrc(unpacked)},
            dirs=[
                ("/run/courier", 0, courier.gid, 0o775),
                ("/run/courier/authdaemon", courier.uid, courier.gid, 0o750),
            ],
        )
        private.prepare()
        pem_path = private.etc_path("courier/pop3d.pem")
        os.chown(pem_path, courier.uid, courier.gid)
        pem_path.chmod(0o600)
        return private

    def _argv(self) -> list[str]:
        launch = _LAUNCH.format(host=self.host, pop3_port=self.pop3_port, pop3s_port=self.pop3s_port)
        return ["/bin/sh", "-c", launch]

    def _launched(self) -> None:
        # makeuserdb runs in the server's namespace, where authuserdb will look.
        self._write_userdb()

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
        if self._process is not None:
            self._write_userdb()
        return path

    def _write_userdb(self) -> None:
        """Rewrite /etc/courier/userdb and compile it (authuserdb notices the new userdb.dat)."""
        assert self._private_root is not None
        lines = [
            f"{name}\tuid={self._uid}|gid={self._gid}|home={self.maildir_path(name)}"
            f"|mail={self.maildir_path(name)}|systempw={hashed}\n"
            for name, hashed in sorted(self._users.items())
        ]
        self._private_root.write_file("/etc/courier/userdb", "".join(lines).encode(), mode=0o600)
        proc = self._private_root.run(["/usr/sbin/makeuserdb"])
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
        return mailbox_messages(self.maildir_path(user))


def _authdaemonrc(package_root: Path) -> str:
    """Debian's authdaemonrc with authuserdb as the only module (no PAM, no system accounts)."""
    text = (package_root / "etc/courier/authdaemonrc").read_text()
    return text.replace('authmodulelist="authpam"', 'authmodulelist="authuserdb"')
