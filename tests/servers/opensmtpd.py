"""A real OpenSMTPD 6.8 (Debian's opensmtpd) on loopback as the office's mail server.

opensmtpd conflicts with the installed postfix, so it runs from the unpacked
package in a private root (``privroot``), where its queue lands in the
namespace's own ``/var/spool/smtpd`` and its control socket in a private
``/run``.

The only rule is ``match from local for domain <domains> !rcpt-to <unknown>``:
loopback counts as ``local``, yet no rule matches a foreign domain, so it is
refused rather than relayed, and so is an unknown user, both with OpenSMTPD's
own ``550 Invalid recipient: <addr>``. A catch-all virtual table maps every
other recipient to the ``mail`` user, whose Maildir receives one copy per
recipient with ``Delivered-To:``.
"""

from __future__ import annotations

from pathlib import Path

from tests.servers.private_mta import PrivateMta
from tests.servers.privroot import PrivateRoot, system_user

PLACEHOLDER_UNKNOWN = "nobody@unknown-users.invalid"
EMPTY_DIR = "/var/lib/opensmtpd/empty"  # the unprivileged processes' chroot

_CONFIG = """\
table domains {{ {domains} }}
table unknown file:{root}/unknown_users
table everyone file:{root}/everyone
smtp max-message-size {message_size_limit}
listen on 127.0.0.1 port {port} hostname mail.pop3gui.test
action "one_maildir" maildir "{maildir}" virtual <everyone> user mail
match from local for domain <domains> !rcpt-to <unknown> action "one_maildir"
"""


class OpenSmtpdServer(PrivateMta):
    """A running private OpenSMTPD; ``host:port`` takes mail for ``accepted_domains``."""

    name = "opensmtpd"
    packages = ("opensmtpd",)

    _smtpctl_ready = False

    def _config(self) -> str:
        return _CONFIG.format(
            root=self.root,
            maildir=self.maildir,
            port=self.port,
            domains=", ".join(self.accepted_domains),
            message_size_limit=self.message_size_limit,
        )

    def _private(self, unpacked: Path) -> PrivateRoot:
        everyone = self.root / "everyone"
        everyone.write_text("".join(f"@{domain} mail\n" for domain in self.accepted_domains))
        everyone.chmod(0o644)
        self._smtpctl_ready = False
        return PrivateRoot(
            unpacked,
            self.root / "ns",
            users=[system_user(name, home=EMPTY_DIR) for name in ("opensmtpd", "opensmtpq")],
            etc_files={"smtpd.conf": self._config()},
            dirs=[(EMPTY_DIR, 0, 0, 0o755)],
        )

    def _argv(self) -> list[str]:
        # -d: stay in the foreground and log to stderr.
        return ["/usr/sbin/smtpd", "-d", "-f", "/etc/smtpd.conf"]

    def _write_unknown_users(self) -> None:
        # An empty file table has no type and cannot serve rcpt-to: keep one
        # address no client can use (.invalid is reserved) in the list.
        addresses = [*self.unknown_users, PLACEHOLDER_UNKNOWN]
        path = self.root / "unknown_users"
        path.write_text("".join(f"{addr}\n" for addr in addresses))
        path.chmod(0o644)

    def _reload_unknown_users(self) -> None:
        # File tables are read once at start; smtpctl makes the running server read it again.
        self._smtpctl("update", "table", "unknown")

    def _smtpctl(self, *args: str) -> str:
        assert self._process is not None
        if not self._smtpctl_ready:
            # What the package's postinst does with dpkg-statoverride: smtpctl
            # refuses to run unless it is setgid to the queue user's group.
            self._run_inside("chgrp opensmtpq /usr/sbin/smtpctl && chmod 2555 /usr/sbin/smtpctl")
            self._smtpctl_ready = True
        proc = self._process.run(["/usr/sbin/smtpctl", *args])
        if proc.returncode != 0:
            raise RuntimeError(
                f"smtpctl {' '.join(args)} failed ({proc.returncode}): "
                f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}"
            )
        return proc.stdout.decode(errors="replace")

    def _run_inside(self, script: str) -> None:
        assert self._process is not None
        proc = self._process.run(["/bin/sh", "-c", script])
        if proc.returncode != 0:
            raise RuntimeError(f"{script} failed: {proc.stderr.decode(errors='replace')}")

    def queued(self) -> int:
        if not self.running():
            return 0
        return len([line for line in self._smtpctl("show", "queue").splitlines() if line.strip()])

    def _drop_queue(self) -> None:
        if self.running():
            self._smtpctl("remove", "all")
