"""A real GNU Mailutils pop3d on loopback, private to one test session.

Debian's mailutils-pop3d conflicts with the installed Dovecot, so the package
is unpacked into a cached root and run in a private namespace
(:mod:`tests.servers.privroot`). Debian ships no configuration for it; ours
only says where to listen (127.0.0.1: plain POP3 with STLS on ``pop3_port``,
implicit TLS on ``pop3s_port``), where the mailboxes and the
mandatory-locking directory are (without a writable one every login answers
``-ERR [IN-USE]``), and to log to stderr. Authentication is Mailutils' own
system lookup: each mailbox user is an account in the namespace's private
``/etc/passwd`` and ``/etc/shadow`` with the ``mail`` uid.

Its protocol behaviour is the stock one: an APOP timestamp in the greeting
and an ``X-UIDL:`` header added to the messages it serves.

Mail is one mbox file per user (Mailutils' default format), owned by ``mail``.
"""

from __future__ import annotations

import mailbox
import os
import shutil
from pathlib import Path

from tests.servers.private_pop3 import PrivatePop3Server
from tests.servers.privroot import PrivateRoot, SystemUser

PACKAGES = ["mailutils-pop3d"]
"""What is unpacked (the missing shared libraries are added by :func:`unpacked_root`)."""

_CONFIG = """\
logging {{
  syslog false;
}};
mailbox {{
  mailbox-pattern "{mail}/${{user}}";
}};
mandatory-locking {{
  lock-directory "{locks}";
}};
tls {{
  ssl-certificate-file "{cert}";
  ssl-key-file "{key}";
}};
mode daemon;
foreground yes;
pidfile "/run/pop3d.pid";
server {host}:{pop3_port} {{
  tls-mode ondemand;
}};
server {host}:{pop3s_port} {{
  tls-mode connection;
}};
"""


class MailutilsServer(PrivatePop3Server):
    """A running GNU Mailutils pop3d; use :meth:`start` or the context manager."""

    name = "mailutils"
    label = "mailutils pop3d"
    packages = PACKAGES
    log_name = "pop3d.log"

    def __init__(self, root: Path | None = None) -> None:
        super().__init__(root)
        self.lock_dir = self.root / "locks"
        self._users: dict[str, SystemUser] = {}

    # -- configuration (PrivateServer.start calls these) ---------------------

    def _private(self, unpacked: Path) -> PrivateRoot:
        assert self.certs is not None
        # Mailutils refuses a private key that others can read.
        key = self.root / "tls" / "pop3d.key"
        shutil.copyfile(self.certs.key_path, key)
        key.chmod(0o600)
        self._mail_owned_dir(self.mail_dir, 0o775)
        self._mail_owned_dir(self.lock_dir, 0o1777)
        config = _CONFIG.format(
            mail=self.mail_dir, locks=self.lock_dir, cert=self.certs.cert_path, key=key,
            host=self.host, pop3_port=self.pop3_port, pop3s_port=self.pop3s_port,
        )  # fmt: skip
        return PrivateRoot(
            unpacked, self.root / "ns", users=list(self._users.values()),
            etc_files={"mailutils.conf": config},
        )  # fmt: skip

    def _argv(self) -> list[str]:
        return ["/usr/sbin/pop3d", "--config-file=/etc/mailutils.conf"]

    # -- users and mail -----------------------------------------------------

    def mailbox_path(self, user: str) -> Path:
        return self.mail_dir / user

    def add_user(self, name: str, password: str) -> Path:
        """Create account *name* with *password* (works while running); return its mbox file."""
        if not name or any(c in name for c in ":/\n ") or "\n" in password:
            raise ValueError("user name or password not representable in /etc/passwd and /etc/shadow")
        path = self.mailbox_path(name)
        path.touch(mode=0o600, exist_ok=True)
        os.chown(path, self._uid, self._gid)
        user = SystemUser(name, self._uid, self._gid, home=str(self.mail_dir), shell="/bin/sh",
                          password=password, own_group=False)  # fmt: skip
        self._users[name] = user
        if self._process is not None:
            self._process.add_user(user)
        return path

    def deliver(self, user: str, message: bytes) -> str:
        """Append *message* to *user*'s mbox (with a From_ line, locked); return its key.

        An mbox holds Unix lines: CRLF becomes LF here, and pop3d serves CRLF again.
        """
        message = message.replace(b"\r\n", b"\n")
        path = self.mailbox_path(user)
        if not path.is_file():
            raise KeyError(f"no such user {user!r}")
        box = mailbox.mbox(str(path), factory=None, create=False)
        box.lock()
        try:
            key = box.add(message)
            box.flush()
        finally:
            box.unlock()
            box.close()
        os.chown(path, self._uid, self._gid)
        return str(key)

    def messages(self, user: str) -> list[bytes]:
        """The messages still in *user*'s mbox, in mailbox order (without the From_ lines)."""
        box = mailbox.mbox(str(self.mailbox_path(user)), factory=None, create=False)
        box.lock()
        try:
            return [box.get_bytes(key) for key in box.keys()]
        finally:
            box.unlock()
            box.close()
