"""What a parsed ~/.fetchmailrc means, in pop3gui's terms: mailboxes and notes.

Security follows fetchmail 6.4: ``ssl`` is implicit TLS; without it fetchmail
negotiates STLS/STARTTLS and requires it (``sslproto ''`` turns that off:
clear text); the certificate is checked unless ``no sslcertck`` (checked by
default since 6.4.0). Local names are qualified the way fetchmail writes RCPT
TO (sink.c, rcpt_address(): a name with "@" as it is, else name@destaddr,
where destaddr is ``smtpaddress``, else the first ``smtphost`` without its
/port, else "localhost" — also when the host is an LMTP socket path; the
man page, --smtpaddress: "When this is not specified, the name of the SMTP
server (as specified by --smtphost) is used for SMTP/LMTP and 'localhost' is
used for UNIX socket/BSMTP"; no smtphost means "localhost").
"""

from __future__ import annotations

import getpass
import math
from typing import Protocol

from pop3gui.core.config.model import DEFAULT_ENVELOPE_HEADERS
from pop3gui.core.migrate.fetchmailrc import RcFile, RcServer, RcUser
from pop3gui.core.migrate.report import ImportPlan, Mailbox, Note

__all__ = ["fetchmail_plan"]

_SERVICES = {"pop3": 110, "pop-3": 110, "pop3s": 995, "imap": 143, "imap2": 143, "imaps": 993}

# Options pop3gui has no counterpart for: the key, and what to do instead.
_SERVER_UNMAPPED = {
    "plugin": "pop3gui connects by itself over TCP with TLS; reach the server directly, or run the tunnel "
              "(ssh -L) as a service and point the account's host and port at it.",
    "plugout": "pop3gui connects to the local SMTP server directly; set [smtp] host and port.",
    "interface": "pop3gui polls whenever the schedule says; limit retrieval to working hours in [schedule] "
                 "hours if the link is not always up.",
    "monitor": "Not needed: pop3gui does not keep dial-up links up.",
    "principal": "Kerberos is not supported; use a password or OAuth2 sign-in.",
    "qvirtual": "Add a routing rule for each address prefix, or let the envelope headers decide.",
    "aka": "List the server's domains as recipient policies if its mail is addressed to them.",
    "interval": "pop3gui polls every account on each scheduled cycle; disable the account or change "
                "[schedule] interval_min.",
    "checkalias": "Not needed: pop3gui matches recipients against the recipient policies' domains.",
    "tracepolls": "Not needed: the event log names the account of every delivered message.",
}
_USER_UNMAPPED = {
    "mda": "pop3gui delivers only by SMTP to the office's mail server; let that server run the filter or "
           "mailbox delivery (procmail, maildrop, Sieve).",
    "bsmtp": "pop3gui delivers only by SMTP; configure the local server in [smtp].",
    "preconnect": "Run the command from a scheduler of its own before pop3gui's schedule, or drop it.",
    "postconnect": "Run the command from a scheduler of its own, or drop it.",
    "sslcertpath": "Concatenate the CA certificates into one PEM file and set the account's ca_file.",
    "sslfingerprint": "pop3gui checks the certificate against trusted CAs; set ca_file to the server's CA "
                      "(or its self-signed certificate) instead of a fingerprint.",
    "sslcert": "Client certificates are not supported; log in with a password or OAuth2.",
    "sslkey": "Client certificates are not supported; log in with a password or OAuth2.",
    "sslcommonname": "Ask the provider for a certificate naming the host you connect to, or connect with the "
                     "name the certificate carries.",
    "fetchdomains": "ETRN/ODMR are not supported.",
    "antispam": "pop3gui keeps mail the local server refuses in its quarantine and reports it.",
    "properties": "Not used by pop3gui.",
    "warnings": "pop3gui reports an oversized message once, as an event.",
    "fetchlimit": "pop3gui fetches all new mail in each cycle.",
    "batchlimit": "Not needed: pop3gui keeps its SMTP connections itself ([performance]).",
    "fetchsizelimit": "Not needed.",
    "fastuidl": "Not needed: pop3gui keeps its own record of delivered messages.",
    "expunge": "Not needed: pop3gui removes messages once the local server has accepted them.",
    "lmtp": "pop3gui delivers by SMTP; let the local server accept SMTP and hand mail to the LMTP store.",
}
# Flags and fetchmail's default: only a change from the default is worth a note.
_FLAG_DEFAULTS = {
    "flush": (False, "pop3gui never deletes messages it has not delivered; nothing to do."),
    "limitflush": (False, "Oversized messages stay on the server with one event; delete them there if you want."),
    "rewrite": (True, "pop3gui never rewrites addresses in headers; nothing to do."),
    "stripcr": (False, "pop3gui passes messages through unchanged."),
    "forcecr": (False, "pop3gui passes messages through unchanged (SMTP lines end in CRLF)."),
    "pass8bits": (False, "pop3gui declares 8BITMIME when the local server offers it."),
    "dropstatus": (False, "pop3gui keeps Status headers; filter them on the local server if needed."),
    "dropdelivered": (False, "pop3gui keeps Delivered-To headers; if the local server refuses mail as a loop, "
                             "remove them with a header check there."),
    "mimedecode": (False, "pop3gui passes messages through unchanged."),
}
_SETTINGS = {
    "logfile": "pop3gui writes its own log and event list (see `pop3gui events`).",
    "idfile": "pop3gui keeps its own journal of delivered messages; fetchmail's ids are not needed.",
    "pidfile": "Not needed.",
    "syslog": "pop3gui writes its own log and event list.",
    "invisible": "Not needed: pop3gui adds no Received header.",
    "showdots": "Not needed.",
    "properties": "Not used by pop3gui.",
    "bouncemail": "pop3gui never bounces to senders: undeliverable mail goes to [delivery] undeliverable_to.",
    "spambounce": "pop3gui never bounces to senders: refused mail goes to its quarantine.",
    "softbounce": "pop3gui keeps refused mail in its quarantine and reports it.",
}


class _NoteFn(Protocol):
    """The note() helper of one mailbox."""

    def __call__(self, line: int, what: str, fix: str, unmapped: bool = ...) -> None: ...


def fetchmail_plan(rc: RcFile, login: str | None = None) -> ImportPlan:
    """The mailboxes of every user of every entry; *login* stands for "the user running fetchmail"."""
    who = login if login is not None else _login()
    notes: list[Note] = []
    mailboxes: list[Mailbox] = []
    interval = 0
    undeliverable = ""
    for key, value in rc.settings.items():
        if key == "daemon":
            interval = min(1440, max(1, math.ceil(int(value.value) / 60)))
            notes.append(Note(rc.path, value.line, f"set daemon {value.value} -> [schedule] interval_min = "
                              f"{interval}", "", unmapped=False))
        elif key == "postmaster":
            if "@" in str(value.value):
                undeliverable = str(value.value)
                notes.append(Note(rc.path, value.line, f"set postmaster -> [delivery] undeliverable_to = "
                                  f"{undeliverable!r}", "", unmapped=False))
            else:
                notes.append(Note(rc.path, value.line, f"set postmaster {value.value!r} is a local user name, not "
                                  "an address", "Set [delivery] undeliverable_to to the full address of the mailbox "
                                  "for mail nobody local is named in."))
        elif key in _SETTINGS and value.value is not False:
            notes.append(Note(rc.path, value.line, f"set {key} is not mapped", _SETTINGS[key]))
    for server in rc.servers:
        for user in server.users:
            box = _mailbox(rc.path, server, user, who, notes)
            if box is not None:
                mailboxes.append(box)
    return ImportPlan(kind="fetchmail", files=(rc.path,), mailboxes=tuple(mailboxes), notes=tuple(notes),
                      interval_min=interval, undeliverable_to=undeliverable)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment or the user database
        return "user"


def _mailbox(path: str, server: RcServer, user: RcUser, login: str, notes: list[Note]) -> Mailbox | None:
    host = server.get("via") or server.name
    remote = user.get("remote") or login
    label = f"{remote} at {host}"

    def note(line: int, what: str, fix: str, unmapped: bool = True) -> None:
        notes.append(Note(path, line, f"{label}: {what}", fix, unmapped))

    protocol_name = server.get("protocol", "AUTO")
    auth_name = server.get("auth", "any")
    protocol, auth, sasl, enabled = "pop3", "password", "xoauth2", not server.skip
    if protocol_name in ("POP3", "SDPS", "APOP", "KPOP"):
        protocol = "pop3"
        if protocol_name == "APOP":
            auth = "apop"
        if protocol_name == "SDPS":
            note(server.line_of("protocol"), "protocol sdps is imported as plain POP3", "", unmapped=False)
    elif protocol_name == "IMAP":
        protocol = "imap"
    elif protocol_name == "AUTO":
        protocol = "imap"
        note(server.line_of("protocol"), "protocol auto (fetchmail tries IMAP, then POP3) is imported as IMAP",
             'If the server does not speak IMAP, set protocol = "pop3" on the account.', unmapped=False)
    else:
        note(server.line_of("protocol"), f"protocol {protocol_name.lower()} is not supported, the mailbox was not "
             "imported", "pop3gui fetches with POP3 or IMAP: add the mailbox by hand if the provider offers one "
             "of them.")
        return None
    if protocol_name == "KPOP" or auth_name.startswith("kerberos") or auth_name in ("gssapi", "ssh", "external"):
        enabled = False
        note(server.line_of("auth"), f"authentication {auth_name if protocol_name != 'KPOP' else 'kerberos'} is "
             "not supported; the account was imported disabled",
             "Ask the provider for a password or OAuth2 login, store it with `pop3gui secret set ACCOUNT`, and "
             "enable the account.")
    elif auth_name in ("oauthbearer", "xoauth2"):
        auth, sasl = "oauth2", auth_name
    elif auth_name in ("cram-md5", "ntlm", "otp", "opie", "msn"):
        note(server.line_of("auth"), f"auth {auth_name} is imported as a password login", "pop3gui sends the "
             "password only over TLS (USER/PASS or AUTH PLAIN); keep TLS on.", unmapped=False)

    ssl = bool(user.get("ssl", False))
    sslproto = user.get("sslproto")
    if ssl:
        security = "tls"
    elif sslproto == "":
        security = "none"
        note(user.line_of("sslproto"), "sslproto '' (no STARTTLS): the password travels unencrypted",
             'Use TLS if the server offers it (security = "tls" or "starttls").', unmapped=False)
    else:
        security = "starttls"
    verify = bool(user.get("sslcertck", True))
    if not verify and security != "none":
        note(user.line_of("sslcertck"), "no sslcertck: the server's certificate will not be checked",
             "Set the account's ca_file to the server's CA instead, then verify_tls = true.", unmapped=False)

    port = 0
    service = server.get("service")
    if service is not None:
        if str(service).isdigit():
            port = int(service)
        elif str(service).lower() in _SERVICES:
            port = _SERVICES[str(service).lower()]
        else:
            note(server.line_of("service"), f"service {service!r} is not a port number pop3gui knows",
                 "Set the account's port to the number.")

    folders: tuple[str, ...] = ("INBOX",)
    mailboxes = user.get("mailboxes")
    if mailboxes:
        if protocol == "imap":
            folders = tuple(dict.fromkeys(mailboxes))
        else:
            note(user.line_of("mailboxes"), "folder is ignored for POP3 (POP3 has one mailbox)", "", unmapped=False)

    password = user.get("password") or ""
    if auth == "oauth2":
        if password:
            note(user.line_of("password"), "the password here is an OAuth2 access token; it was not stored",
                 "Sign in once: `pop3gui auth login ACCOUNT` (see docs/oauth.md).", unmapped=False)
        password = ""

    smtp_host, smtp_port, destaddr = _smtp(user, note)
    deliver_to, local_domains = "", tuple(server.get("localdomains") or ())
    envelope: tuple[str, ...] = DEFAULT_ENVELOPE_HEADERS
    names = [(name, mapped) for name, mapped in (user.get("localnames") or [])]
    wildcard = bool(user.get("wildcard", False))
    if not names:
        names = [(login, None)]
    if wildcard or len(names) > 1:
        envelope = _envelope(server, note)
        for name, mapped in names:
            if mapped is not None and mapped != name:
                note(user.line_of("localnames"), f"the name mapping {name}={mapped} is not mapped",
                     f"Add a routing rule on the account: contains = \"{name}@\", deliver_to = the address of "
                     f"{mapped}.")
        if not local_domains:
            note(user.line_of("localnames"), "multidrop without localdomains: fetchmail matched names at the "
                 "server's own host names", "Add the domains your mail is addressed to as a recipient policy.")
    else:
        name, mapped = names[0]
        local = mapped or name
        smtpname = user.get("smtpname")
        deliver_to = smtpname if smtpname else (local if "@" in local else f"{local}@{destaddr}")
        if "@" not in local and not smtpname:
            note(user.line_of("localnames"), f"local name {local!r} becomes {deliver_to} (as fetchmail addressed "
                 "it to the SMTP server)", "Check deliver_to: it must be the recipient's address on your mail "
                 "server.", unmapped=False)

    for key, fix in _SERVER_UNMAPPED.items():
        if server.get(key) is not None:
            note(server.line_of(key), f"{key} {server.get(key)!r} is not mapped", fix)
    if server.get("dns") is False:
        note(server.line_of("dns"), "no dns is not mapped", "Not needed: pop3gui does no DNS lookups of recipients.")
    if server.get("badheader") is True:
        note(server.line_of("badheader"), "bad-header accept is not mapped",
             "pop3gui passes messages with odd headers on to the local server, which decides.")
    if server.get("uidl") is True:
        note(server.line_of("uidl"), "uidl is not needed", "pop3gui always tracks messages by UIDL.",
             unmapped=False)
    for key, fix in _USER_UNMAPPED.items():
        value = user.get(key)
        if value is not None and value is not False:
            note(user.line_of(key), f"{key} {value!r} is not mapped" if value is not True else f"{key} is not mapped",
                 fix)
    for key, (default, fix) in _FLAG_DEFAULTS.items():
        value = user.get(key)
        if value is not None and value != default:
            note(user.line_of(key), f"{'' if value else 'no '}{key} is not mapped", fix)
    if user.get("fetchall"):
        note(user.line_of("fetchall"), "fetchall: pop3gui fetches every message it has not delivered yet", "",
             unmapped=False)
    if user.get("idle") and protocol != "imap":
        note(user.line_of("idle"), "idle applies to IMAP only", "", unmapped=False)
    if server.skip:
        note(server.line, "a `skip` entry is imported disabled", "Enable the account when you want it fetched.",
             unmapped=False)

    limit = int(user.get("limit") or 0)
    timeout = float(server.get("timeout") or 0)
    return Mailbox(
        file=path, line=user.line, host=host, username=remote, protocol=protocol, port=port, security=security,
        verify_tls=verify, ca_file=user.get("sslcertfile") or "", password=password,
        password_line=user.line_of("password"), auth=auth, sasl=sasl, deliver_to=deliver_to,
        envelope_headers=envelope, local_domains=local_domains, leave_on_server=bool(user.get("keep", False)),
        folders=folders, max_message_kb=math.ceil(limit / 1024) if limit > 0 else 0,
        timeout_s=timeout if 0 < timeout <= 3600 else 0, enabled=enabled, smtp_host=smtp_host, smtp_port=smtp_port,
        smtp_username=server.get("esmtpname") or "", smtp_password=server.get("esmtppassword") or "",
    )


def _smtp(user: RcUser, note: _NoteFn) -> tuple[str, int, str]:
    """The first SMTP host and port, and the domain fetchmail puts after a bare local name (destaddr)."""
    hunt = list(user.get("smtphunt") or [])
    host, port = "", 0
    if len(hunt) > 1:
        note(user.line_of("smtphunt"), f"smtphost lists {len(hunt)} hosts; pop3gui delivers to one, the first",
             "Give the local server a fallback on its own side if you need one.", unmapped=True)
    first = hunt[0] if hunt else ""
    if first.startswith("/"):
        note(user.line_of("smtphunt"), f"smtphost {first!r} is an LMTP socket", "Point [smtp] host and port at "
             "the local server's SMTP listener.")
        first = ""
    if first:
        host, _, port_text = first.partition("/")
        port = int(port_text) if port_text.isdigit() else 0
    destaddr = user.get("smtpaddress") or host or "localhost"
    return host, port, destaddr


def _envelope(server: RcServer, note: _NoteFn) -> tuple[str, ...]:
    """The envelope headers of a multidrop mailbox."""
    if "envelope" not in server.options:
        note(server.line, "multidrop with fetchmail's default envelope (Received): imported with pop3gui's "
             "envelope headers and Received", "", unmapped=False)
        return (*DEFAULT_ENVELOPE_HEADERS, "Received")
    header = server.get("envelope")
    if header is None:
        note(server.line_of("envelope"), "no envelope: recipients are read from To and Cc", "", unmapped=False)
        return ()
    skip = int(server.get("envskip") or 0)
    if skip:
        note(server.line_of("envelope"), f"envelope {skip} {header}: pop3gui reads every {header} header, it "
             "does not skip the first ones", "Check that the skipped headers name no local address, or add "
             "routing rules.")
    return (str(header),)


