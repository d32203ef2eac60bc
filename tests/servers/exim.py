"""A real Exim 4 (Debian's exim4-daemon-light) on loopback as the office's mail server.

exim4-daemon-light conflicts with the installed postfix, so it runs from the
unpacked package in a private root (``privroot``): its setuid binary re-executes
itself for every delivery and drops ``LD_LIBRARY_PATH`` on the way, which is why
the unpacked ``/usr`` is laid over the real one rather than run from a folder.

The configuration keeps the parts of Debian's default RCPT and DATA ACLs that
apply to a server receiving for its own domains, with their wording: a foreign
domain is refused by ``require message = relay not permitted`` (no
``relay_from_hosts``, so 127.0.0.1 may not relay), a recipient no router
accepts by ``require verify = recipient`` (Exim says ``Unrouteable address``),
and a line over 998 octets by Debian's DATA ACL. One ``accept`` router sends
every other recipient of ``accepted_domains`` to one Maildir, each copy carrying
Exim's ``Envelope-to:``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.servers.private_mta import PrivateMta
from tests.servers.privroot import PrivateRoot, system_user

EXIM_USER = "Debian-exim"  # compiled into Debian's binary

_CONFIG = """\
primary_hostname = mail.pop3gui.test
qualify_domain = pop3gui.test
domainlist local_domains = {domains}
domainlist relay_to_domains =
hostlist relay_from_hosts =
local_interfaces = 127.0.0.1
spool_directory = {root}/spool
log_file_path = {root}/log/%slog
message_size_limit = {message_size_limit}
host_lookup =
rfc1413_hosts =
tls_advertise_hosts =
keep_environment =
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data

begin acl

# Debian's acl_check_rcpt, without the parts for authenticated or relaying clients.
acl_check_rcpt:
  accept
    hosts = :
    control = dkim_disable_verify
  # Debian's DISABLE_DKIM_VERIFY: test mail carries no signatures.
  warn
    control = dkim_disable_verify
  deny
    domains = +local_domains
    local_parts = ^[.] : ^.*[@%!/|`#&?]
    message = restricted characters in address
  deny
    domains = !+local_domains
    local_parts = ^[./|] : ^.*[@%!`#&?] : ^.*/\\\\.\\\\./
    message = restricted characters in address
  accept
    local_parts = postmaster
    domains = +local_domains : +relay_to_domains
  deny
    condition = ${{if and {{{{>{{$rcpt_count}}{{10}}}}{{<{{$recipients_count}}{{${{eval:$rcpt_count/2}}}}}}}}}}
    message = Rejected for too many bad recipients
    logwrite = REJECT [$sender_host_address]: bad recipient count high [${{eval:$rcpt_count-$recipients_count}}]
  accept
    hosts = +relay_from_hosts
  require
    message = relay not permitted
    domains = +local_domains : +relay_to_domains
  require
    verify = recipient
  accept

# Debian's acl_check_data: it refuses lines longer than RFC 5322 allows.
acl_check_data:
  deny
    condition  = ${{if > {{$max_received_linelength}}{{998}}}}
    message    = maximum allowed line length is 998 octets, \\
                       got $max_received_linelength
  deny
    !verify = header_syntax
    message = header syntax
    log_message = header syntax ($acl_verify_message)
  accept

begin routers

# Every recipient of the accepted domains except the unknown users.
everyone:
  driver = accept
  domains = +local_domains
  condition = ${{lookup{{${{lc:$local_part@$domain}}}}lsearch{{{root}/unknown_users}}{{no}}{{yes}}}}
  transport = one_maildir

begin transports

one_maildir:
  driver = appendfile
  directory = {maildir}
  maildir_format
  envelope_to_add
  return_path_add
  delivery_date_add
  user = mail
  group = mail
  mode = 0644
  directory_mode = 0755

begin retry

*   *   F,1m,5s
"""


class EximServer(PrivateMta):
    """A running private Exim 4.96; ``host:port`` takes mail for ``accepted_domains``."""

    name = "exim"
    packages = ("exim4-daemon-light",)

    def _config(self) -> str:
        return _CONFIG.format(
            root=self.root,
            maildir=self.maildir,
            domains=" : ".join(self.accepted_domains),
            message_size_limit=self.message_size_limit,
        )

    def _private(self, unpacked: Path) -> PrivateRoot:
        exim = system_user(EXIM_USER, home="/var/spool/exim4")
        for sub in ("spool", "log"):
            path = self.root / sub
            path.mkdir(exist_ok=True)
            path.chmod(0o750)
            os.chown(path, exim.uid, exim.gid)
        return PrivateRoot(
            unpacked,
            self.root / "ns",
            users=[exim],
            etc_files={"exim4/exim4.conf": self._config()},
        )

    def _argv(self) -> list[str]:
        # -bdf: the daemon in the foreground; -q5s: retry what was deferred soon.
        return ["/usr/sbin/exim4", "-bdf", "-oX", str(self.port), "-q5s"]

    def _write_unknown_users(self) -> None:
        # Exim reads the lsearch file anew in each SMTP connection: no reload needed.
        path = self.root / "unknown_users"
        path.write_text("".join(f"{addr}\n" for addr in self.unknown_users))
        path.chmod(0o644)

    def queued(self) -> int:
        directory = self.root / "spool" / "input"
        return sum(1 for p in directory.rglob("*-H") if p.is_file()) if directory.is_dir() else 0

    def _drop_queue(self) -> None:
        for directory in ("input", "msglog"):
            for path in (self.root / "spool" / directory).rglob("*"):
                if path.is_file():
                    path.unlink(missing_ok=True)

    def _logs(self) -> list[Path]:
        log = self.root / "log"
        return [self.output, log / "mainlog", log / "paniclog"]
