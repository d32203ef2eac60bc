"""What a parsed getmail rc file means, in pop3gui's terms: one mailbox and notes.

A getmail rc file describes one retriever.  getmail delivers into a local
Maildir, mbox or program, pop3gui delivers by SMTP to the office's server, so
the [destination] never maps: the report says so, and a user mailbox gets
``login@localhost`` as deliver_to until the admin sets the real address.
getmail keeps mail on the server unless ``delete = true``.
"""

from __future__ import annotations

import getpass
import math

from pop3gui.core.config.model import DEFAULT_ENVELOPE_HEADERS
from pop3gui.core.migrate.getmailrc import GetmailRc, flag, literal_strings
from pop3gui.core.migrate.report import ImportPlan, Mailbox, Note

__all__ = ["getmail_plan"]

# retriever type -> (protocol, security, multidrop)
_RETRIEVERS = {
    "simplepop3retriever": ("pop3", "none", False),
    "brokenuidlpop3retriever": ("pop3", "none", False),
    "simplepop3sslretriever": ("pop3", "tls", False),
    "brokenuidlpop3sslretriever": ("pop3", "tls", False),
    "simpleimapretriever": ("imap", "none", False),
    "simpleimapsslretriever": ("imap", "tls", False),
    "multidroppop3retriever": ("pop3", "none", True),
    "multidroppop3sslretriever": ("pop3", "tls", True),
    "multidropsdpsretriever": ("pop3", "none", True),
    "multidropimapretriever": ("imap", "none", True),
    "multidropimapsslretriever": ("imap", "tls", True),
}
_RETRIEVER_UNMAPPED = {
    "password_command": "pop3gui keeps passwords only in the OS keyring and runs no password program: store "
                        "the password once with `pop3gui secret set ACCOUNT` (or in the account's properties).",
    "certfile": "Client certificates are not supported; log in with a password or OAuth2.",
    "keyfile": "Client certificates are not supported; log in with a password or OAuth2.",
    "ssl_fingerprints": "pop3gui checks the certificate against trusted CAs; set ca_file to the server's CA.",
    "ssl_cert_hostname": "Connect with the host name the server's certificate carries.",
    "ssl_version": "pop3gui negotiates TLS 1.2 or newer.",
    "ssl_ciphers": "pop3gui uses the system's TLS settings.",
    "imap_search": "pop3gui fetches every message it has not delivered yet.",
    "imap_on_delete": "Use after_delivery on the IMAP account (delete, move or keep).",
    "move_on_delete": 'Set after_delivery = "move" and move_to on the IMAP account.',
    "use_kerberos": "Kerberos is not supported; use a password or OAuth2.",
    "record_mailbox": "pop3gui does not add a header naming the folder.",
    "use_peek": "Not needed.",
    "use_cram_md5": "pop3gui sends the password only over TLS.",
}
_OPTIONS_UNMAPPED = {
    "message_log": "pop3gui writes its own log and event list (`pop3gui events`).",
    "message_log_syslog": "pop3gui writes its own log and event list.",
    "message_log_verbose": "pop3gui writes its own log and event list.",
    "delivered_to": "pop3gui passes messages on unchanged.",
    "received": "pop3gui passes messages on unchanged.",
    "max_messages_per_session": "pop3gui fetches all new mail in each cycle.",
    "max_bytes_per_session": "pop3gui fetches all new mail in each cycle.",
    "delete_bigger_than": "Oversized messages stay on the server with one event; delete them there.",
    "fingerprint": "Not needed.",
    "skip_imap_fetch_size": "Not needed.",
    "to_oldmail_on_each_mail": "Not needed.",
}
_QUIET_OPTIONS = {"verbose", "delete", "delete_after", "read_all", "max_message_size"}
_QUIET_RETRIEVER = {"type", "server", "port", "username", "password", "mailboxes", "use_xoauth2", "ca_certs",
                    "envelope_recipient", "timeout", "use_apop"}


def getmail_plan(rc: GetmailRc, login: str | None = None) -> ImportPlan:
    """The one mailbox of a getmail rc file (none when the retriever cannot be imported), with its notes."""
    who = login if login is not None else _login()
    notes: list[Note] = []
    path = rc.path
    r = "retriever"
    kind = rc.get(r, "type").strip()
    username = rc.get(r, "username").strip()
    host = rc.get(r, "server").strip()
    label = f"{username or '?'} at {host or '?'}"

    def note(line: int, what: str, fix: str, unmapped: bool = True) -> None:
        notes.append(Note(path, line, f"{label}: {what}", fix, unmapped))

    if kind.lower() not in _RETRIEVERS:
        note(rc.line(r, "type"), f"retriever type {kind!r} is not supported, the mailbox was not imported",
             "pop3gui fetches with POP3 or IMAP: add the mailbox by hand.")
        return ImportPlan(kind="getmail", files=(path,), notes=tuple(notes))
    if not host or not username:
        missing = "server" if not host else "username"
        note(rc.line(r), f"[retriever] has no {missing}, the mailbox was not imported",
             f"Add {missing} = ... to the file, or add the account by hand.")
        return ImportPlan(kind="getmail", files=(path,), notes=tuple(notes))
    protocol, security, multidrop = _RETRIEVERS[kind.lower()]
    if security == "none":
        note(rc.line(r, "type"), f"{kind} talks to the server without encryption, so it was imported with "
             'security = "none"', 'If the server offers TLS, set security = "tls" (or "starttls").',
             unmapped=False)

    port = 0
    if rc.get(r, "port").strip():
        try:
            port = int(rc.get(r, "port"))
        except ValueError:
            note(rc.line(r, "port"), f"port {rc.get(r, 'port')!r} is not a number", "Set the account's port.")

    auth, sasl, enabled = "password", "xoauth2", True
    password = rc.get(r, "password")
    if flag(rc.get(r, "use_xoauth2"), False):
        auth = "oauth2"
        password = ""
        note(rc.line(r, "use_xoauth2"), "use_xoauth2: imported as an OAuth2 account (XOAUTH2)",
             "Sign in once: `pop3gui auth login ACCOUNT` (see docs/oauth.md).", unmapped=False)
    elif flag(rc.get(r, "use_apop"), False) and protocol == "pop3":
        auth = "apop"
    if flag(rc.get(r, "use_kerberos"), False):
        enabled = False

    folders: tuple[str, ...] = ("INBOX",)
    if protocol == "imap" and rc.get(r, "mailboxes").strip():
        value = rc.get(r, "mailboxes").strip()
        names = literal_strings(value)
        if value.upper() == "ALL" or names is None or not names:
            note(rc.line(r, "mailboxes"), f"mailboxes = {value} was not mapped; the account fetches INBOX",
                 "List the folders to fetch in the account's folders (Test in the account dialog shows them).")
        else:
            folders = tuple(dict.fromkeys(names))

    deliver_to = ""
    envelope: tuple[str, ...] = DEFAULT_ENVELOPE_HEADERS
    if multidrop:
        header = rc.get(r, "envelope_recipient").strip()
        if header:
            name, _, index = header.partition(":")
            envelope = (name.strip(),)
            if index.strip() not in ("", "1"):
                note(rc.line(r, "envelope_recipient"), f"envelope_recipient {header}: pop3gui reads every "
                     f"{name.strip()} header, not only number {index.strip()}", "Check that the other headers "
                     "name no local address.")
        note(rc.line(r, "type"), "multidrop mailbox: recipients come from the envelope header",
             "Add your domains as a recipient policy, so only their addresses are delivered.", unmapped=False)
    else:
        deliver_to = f"{who}@localhost"
        note(rc.line("destination"), f"getmail delivered to a local file or program; the account delivers to "
             f"{deliver_to} for now", "Set deliver_to to the recipient's address on your mail server.")

    dest = rc.sections.get("destination", {})
    dest_type = dest.get("type", "").strip()
    target = dest.get("path") or dest.get("locals") or dest.get("default") or ""
    note(rc.line("destination", "type"), f"[destination] {dest_type or '(none)'}"
         f"{' ' + target.strip() if target else ''} is not mapped",
         "pop3gui hands every message to the office's SMTP server ([smtp]); set up delivery to mailboxes and "
         "any filters (MDA, Sieve) on that server.")

    opts = rc.sections.get("options", {})
    delete = flag(opts.get("delete", ""), False)
    days = 0
    if opts.get("delete_after", "").strip():
        try:
            days = max(0, int(opts["delete_after"]))
        except ValueError:
            note(rc.line("options", "delete_after"), "delete_after is not a number of days", "Set "
                 "delete_after_days on the account.")
    leave = not delete
    if delete and days:
        note(rc.line("options", "delete_after"), "both delete and delete_after: imported as delete", "",
             unmapped=False)
        days = 0
    if not delete and not days:
        note(rc.line("options"), "getmail left mail on the server (no delete = true): imported with "
             "leave_on_server = true", "Turn it off in the account if the server should be emptied.",
             unmapped=False)
    if not flag(opts.get("read_all", ""), True):
        note(rc.line("options", "read_all"), "read_all = false: pop3gui likewise fetches only messages it has "
             "not delivered", "", unmapped=False)
    size = opts.get("max_message_size", "").strip()
    kb = 0
    if size:
        try:
            kb = math.ceil(int(size) / 1024) if int(size) > 0 else 0
        except ValueError:
            note(rc.line("options", "max_message_size"), "max_message_size is not a number", "Set [delivery] "
                 "max_message_kb.")
    for key, fix in _RETRIEVER_UNMAPPED.items():
        value = rc.get(r, key).strip()
        if value and not (key.startswith("use_") and not flag(value, False)):
            note(rc.line(r, key), f"{key} is not mapped", fix)
    for key in rc.sections.get(r, {}):
        if key not in _RETRIEVER_UNMAPPED and key not in _QUIET_RETRIEVER:
            note(rc.line(r, key), f"[retriever] {key} is not known to the import", "Check whether the account "
                 "needs it.")
    for key in opts:
        if key in _OPTIONS_UNMAPPED:
            note(rc.line("options", key), f"[options] {key} is not mapped", _OPTIONS_UNMAPPED[key])
        elif key not in _QUIET_OPTIONS:
            note(rc.line("options", key), f"[options] {key} is not known to the import", "Check whether the "
                 "account needs it.")
    if not password and auth != "oauth2" and not rc.get(r, "password_command").strip():
        note(rc.line(r), "no password in the file", "Store it with `pop3gui secret set ACCOUNT`.", unmapped=False)
    timeout = 0.0
    try:
        timeout = float(rc.get(r, "timeout") or 0)
    except ValueError:
        pass
    box = Mailbox(
        file=path, line=rc.line(r), host=host, username=username, protocol=protocol, port=port, security=security,
        verify_tls=True, ca_file=rc.get(r, "ca_certs").strip(), password=password,
        password_line=rc.line(r, "password"), auth=auth, sasl=sasl, deliver_to=deliver_to,
        envelope_headers=envelope, leave_on_server=leave, delete_after_days=days, folders=folders,
        max_message_kb=kb, timeout_s=timeout if 0 < timeout <= 3600 else 0, enabled=enabled,
    )
    return ImportPlan(kind="getmail", files=(path,), mailboxes=(box,), notes=tuple(notes))


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"
