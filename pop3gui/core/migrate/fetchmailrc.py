"""Parsing a fetchmail run control file (~/.fetchmailrc) as fetchmail 6.4 parses it.

The grammar is fetchmail's own (rcfile_y.y): ``set`` statements, then server
entries (``poll``/``skip``/``defaults`` NAME, server options, then users
with their options).  A ``defaults`` entry must come first and fills what a
later entry leaves unset, option by option, as fetchmail's optmerge() does.
Every value keeps the line it was written on, so the import report can point
at it.  A syntax error is a :class:`ConfigError` naming file:line, what was
expected there and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pop3gui.core.errors import ConfigError
from pop3gui.core.migrate.fetchmail_lexer import Token, tokenize

__all__ = ["RcFile", "RcServer", "RcUser", "Value", "parse_fetchmailrc", "read_fetchmailrc"]


@dataclass(frozen=True)
class Value:
    value: Any
    line: int


class _Options:
    """Lookups shared by server and user entries: a value, or the line to point at for it."""

    line: int
    options: dict[str, Value]

    def get(self, key: str, default: Any = None) -> Any:
        v = self.options.get(key)
        return default if v is None else v.value

    def line_of(self, key: str) -> int:
        """The option's own line, else the entry's (where a missing option would go)."""
        v = self.options.get(key)
        return v.line if v is not None else self.line


@dataclass
class RcUser(_Options):
    """One user entry of a server, its options merged with the ``defaults`` entry's."""

    line: int
    options: dict[str, Value] = field(default_factory=dict)


@dataclass
class RcServer(_Options):
    name: str
    skip: bool
    line: int
    options: dict[str, Value] = field(default_factory=dict)
    users: list[RcUser] = field(default_factory=list)


@dataclass
class RcFile:
    path: str
    settings: dict[str, Value] = field(default_factory=dict)  # the ``set`` statements
    servers: list[RcServer] = field(default_factory=list)  # ``defaults`` already merged in


# -- what each option takes --------------------------------------------------------

_SERVER_STRING = {"VIA": "via", "PRINCIPAL": "principal", "ESMTPNAME": "esmtpname", "ESMTPPASSWORD": "esmtppassword",
                  "QVIRTUAL": "qvirtual", "INTERFACE": "interface", "MONITOR": "monitor", "PLUGIN": "plugin",
                  "PLUGOUT": "plugout"}
_SERVER_LISTS = {"AKA": "aka", "LOCALDOMAINS": "localdomains"}
_SERVER_NUMBER = {"INTERVAL": "interval", "TIMEOUT": "timeout"}
_SERVER_FLAGS = {"UIDL": "uidl", "CHECKALIAS": "checkalias", "DNS": "dns", "TRACEPOLLS": "tracepolls"}
_SERVER_NO_ONLY = {"ENVELOPE"}
_SERVER_START = (set(_SERVER_STRING) | set(_SERVER_LISTS) | set(_SERVER_NUMBER) | set(_SERVER_FLAGS)
                 | {"PROTOCOL", "SERVICE", "PORT", "AUTHENTICATE", "ENVELOPE", "BADHEADER"})

_USER_STRING = {"PASSWORD": "password", "SMTPADDRESS": "smtpaddress", "SMTPNAME": "smtpname", "MDA": "mda",
                "BSMTP": "bsmtp", "PRECONNECT": "preconnect", "POSTCONNECT": "postconnect", "SSLKEY": "sslkey",
                "SSLCERT": "sslcert", "SSLPROTO": "sslproto", "SSLCERTFILE": "sslcertfile",
                "SSLCERTPATH": "sslcertpath", "SSLCOMMONNAME": "sslcommonname",
                "SSLFINGERPRINT": "sslfingerprint", "PROPERTIES": "properties"}
_USER_LISTS = {"FOLDER": "mailboxes", "SMTPHOST": "smtphunt", "FETCHDOMAINS": "fetchdomains"}
_USER_NUMBER = {"LIMIT": "limit", "WARNINGS": "warnings", "FETCHLIMIT": "fetchlimit",
                "FETCHSIZELIMIT": "fetchsizelimit", "FASTUIDL": "fastuidl", "BATCHLIMIT": "batchlimit",
                "EXPUNGE": "expunge"}
_USER_FLAGS = {"KEEP": "keep", "FLUSH": "flush", "LIMITFLUSH": "limitflush", "FETCHALL": "fetchall",
               "REWRITE": "rewrite", "FORCECR": "forcecr", "STRIPCR": "stripcr", "PASS8BITS": "pass8bits",
               "DROPSTATUS": "dropstatus", "DROPDELIVERED": "dropdelivered", "MIMEDECODE": "mimedecode",
               "IDLE": "idle", "SSL": "ssl", "SSLCERTCK": "sslcertck"}
_USER_START = (set(_USER_STRING) | set(_USER_LISTS) | set(_USER_NUMBER) | set(_USER_FLAGS)
               | {"TO", "IS", "SPAMRESPONSE", "LMTP"})

_SET_STRING = {"LOGFILE": "logfile", "IDFILE": "idfile", "PIDFILE": "pidfile", "POSTMASTER": "postmaster",
               "PROPERTIES": "properties"}
_SET_FLAGS = {"BOUNCEMAIL": "bouncemail", "SPAMBOUNCE": "spambounce", "SOFTBOUNCE": "softbounce",
              "SYSLOG": "syslog", "INVISIBLE": "invisible", "SHOWDOTS": "showdots"}

_FIX = ("Correct the line so fetchmail itself accepts it (`fetchmail --configdump -f FILE` shows fetchmail's "
        "reading), then import again. Remember: server options come before the first `user`, user options after it.")


class _Parser:
    def __init__(self, tokens: list[Token], path: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.path = path

    # -- token helpers --

    def peek(self, ahead: int = 0) -> Token | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def kind(self, ahead: int = 0) -> str:
        tok = self.peek(ahead)
        return tok.kind if tok else "EOF"

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def error(self, expected: str, message: str = "syntax error") -> ConfigError:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1].line if self.tokens else 1
            return ConfigError(f"{message} at end of input: expected {expected}", path=f"{self.path}:{last}",
                               fix=_FIX)
        return ConfigError(f"{message} at {tok.text!r}: expected {expected}", path=f"{self.path}:{tok.line}",
                           fix=_FIX)

    def expect(self, kind: str, what: str) -> Token:
        if self.kind() != kind:
            raise self.error(what)
        return self.take()

    def string(self, what: str) -> str:
        return str(self.expect("STRING", what).value)

    def number(self, what: str) -> int:
        return int(self.expect("NUMBER", what).value)

    def strings(self, what: str) -> list[str]:
        out = [self.string(what)]
        while self.kind() == "STRING":
            out.append(str(self.take().value))
        return out

    # -- grammar --

    def parse(self, rc: RcFile) -> list[tuple[RcServer, bool]]:
        entries: list[tuple[RcServer, bool]] = []  # (server, written with `defaults`)
        while self.peek() is not None:
            kind = self.kind()
            if kind == "SET":
                self.set_statement(rc)
            elif kind in ("POLL", "SKIP", "DEFAULTS"):
                entries.append(self.server_entry())
            else:
                raise self.error("`poll`, `skip`, `defaults` or `set` to start a statement")
        return entries

    def set_statement(self, rc: RcFile) -> None:
        self.take()
        tok = self.peek()
        kind = self.kind()
        if tok is None:
            raise self.error("a global option after `set`")
        if kind in _SET_STRING:
            self.take()
            if self.kind() == "MAP":
                self.take()
            rc.settings[_SET_STRING[kind]] = Value(self.string(f"a value after `set {tok.text}`"), tok.line)
        elif kind == "DAEMON":
            self.take()
            if self.kind() == "MAP":
                self.take()
            rc.settings["daemon"] = Value(self.number("a number of seconds after `set daemon`"), tok.line)
        elif kind in _SET_FLAGS:
            self.take()
            rc.settings[_SET_FLAGS[kind]] = Value(True, tok.line)
        elif kind == "NO" and self.kind(1) in _SET_FLAGS:
            self.take()
            flag = self.take()
            rc.settings[_SET_FLAGS[flag.kind]] = Value(False, tok.line)
        else:
            raise self.error("a global option (daemon, postmaster, logfile, idfile, pidfile, syslog, bouncemail, "
                             "spambounce, softbounce, invisible, showdots, properties) after `set`")

    def server_entry(self) -> tuple[RcServer, bool]:
        head = self.take()
        if head.kind == "DEFAULTS":
            server = RcServer("defaults", False, head.line)
        else:
            server = RcServer(self.string(f"a server name after `{head.text}`"), head.kind == "SKIP", head.line)
        while self.starts_server_option():
            self.server_option(server)
        if self.kind() == "USERNAME":
            while self.kind() == "USERNAME":
                user = self.user_definition()
                while self.starts_user_option():
                    self.user_option(user)
                server.users.append(user)
        elif self.starts_user_option():
            user = RcUser(self.peek().line if self.peek() else head.line)  # type: ignore[union-attr]
            while self.starts_user_option():
                self.user_option(user)
            server.users.append(user)
        if self.starts_server_option():
            raise self.error("a user option or the next `poll`", "server option after user options")
        if self.peek() is not None and self.kind() not in ("POLL", "SKIP", "DEFAULTS", "SET"):
            raise self.error("a server option, `user`, a user option, or the next `poll`")
        if not server.users:
            server.users.append(RcUser(head.line))
        return server, head.kind == "DEFAULTS"

    def starts_server_option(self) -> bool:
        kind = self.kind()
        if kind == "NO":
            return self.kind(1) in set(_SERVER_FLAGS) | _SERVER_NO_ONLY
        return kind in _SERVER_START

    def starts_user_option(self) -> bool:
        kind = self.kind()
        if kind == "NO":
            return self.kind(1) in _USER_FLAGS
        return kind in _USER_START

    def server_option(self, server: RcServer) -> None:
        tok = self.take()
        kind, opts = tok.kind, server.options
        if kind == "NO":
            flag = self.take()
            if flag.kind == "ENVELOPE":
                opts["envelope"] = Value(None, tok.line)  # fetchmail's STRING_DISABLED
                opts["envskip"] = Value(0, tok.line)
            else:
                opts[_SERVER_FLAGS[flag.kind]] = Value(False, tok.line)
        elif kind in _SERVER_FLAGS:
            opts[_SERVER_FLAGS[kind]] = Value(True, tok.line)
        elif kind in _SERVER_STRING:
            opts[_SERVER_STRING[kind]] = Value(self.string(f"a value after `{tok.text}`"), tok.line)
        elif kind in _SERVER_LISTS:
            opts[_SERVER_LISTS[kind]] = Value(self.strings(f"one or more names after `{tok.text}`"), tok.line)
        elif kind in _SERVER_NUMBER:
            opts[_SERVER_NUMBER[kind]] = Value(self.number(f"a number after `{tok.text}`"), tok.line)
        elif kind == "PROTOCOL":
            proto = self.expect("PROTO", "a protocol (pop3, imap, apop, auto, ...; all lower or all upper case)")
            opts["protocol"] = Value(proto.text.upper(), tok.line)
        elif kind == "PORT":
            opts["service"] = Value(str(self.number("a port number after `port`")), tok.line)
        elif kind == "SERVICE":
            if self.kind() == "NUMBER":
                opts["service"] = Value(str(self.take().value), tok.line)
            else:
                opts["service"] = Value(self.string("a service name or port number after `service`"), tok.line)
        elif kind == "AUTHENTICATE":
            auth = self.expect("AUTHTYPE", "an authentication type (any, password, kerberos, gssapi, cram-md5, "
                               "ntlm, otp, msn, ssh, external)")
            opts["auth"] = Value(auth.text, tok.line)
        elif kind == "ENVELOPE":
            if self.kind() == "NUMBER":
                skip = self.number("a number")
                opts["envelope"] = Value(self.string("a header name after `envelope N`"), tok.line)
                opts["envskip"] = Value(skip, tok.line)
            else:
                opts["envelope"] = Value(self.string("a header name after `envelope`"), tok.line)
                opts["envskip"] = Value(0, tok.line)
        elif kind == "BADHEADER":
            answer = self.take() if self.kind() in ("ACCEPT", "REJECT") else None
            if answer is None:
                self.pos -= 0
                raise self.error("`accept` or `reject` after `bad-header`")
            opts["badheader"] = Value(answer.kind == "ACCEPT", tok.line)

    def user_definition(self) -> RcUser:
        tok = self.take()  # USERNAME
        user = RcUser(tok.line)
        first = self.expect("STRING", "a user name after `user`")
        if self.kind() == "THERE":
            self.take()
            user.options["remote"] = Value(str(first.value), first.line)
        elif self.kind() in ("HERE", "STRING", "MAP"):
            self.pos -= 1
            names, wildcard = self.mapping_list()
            self.expect("HERE", "`here` after the local user names of `user`")
            self.set_local(user, names, wildcard, tok.line)
        else:
            user.options["remote"] = Value(str(first.value), first.line)
        return user

    def mapping_list(self) -> tuple[list[tuple[str, str | None]], bool]:
        names: list[tuple[str, str | None]] = []
        wildcard = False
        while self.kind() == "STRING":
            name = str(self.take().value)
            if self.kind() == "MAP":
                self.take()
                names.append((name, self.string("a local name after `=`")))
            elif name == "*":
                wildcard = True
            else:
                names.append((name, None))
        return names, wildcard

    @staticmethod
    def set_local(user: RcUser, names: list[tuple[str, str | None]], wildcard: bool, line: int) -> None:
        old = user.get("localnames", [])
        user.options["localnames"] = Value([*old, *names], line)
        if wildcard:
            user.options["wildcard"] = Value(True, line)

    def user_option(self, user: RcUser) -> None:
        tok = self.take()
        kind, opts = tok.kind, user.options
        if kind == "NO":
            flag = self.take()
            opts[_USER_FLAGS[flag.kind]] = Value(False, tok.line)
        elif kind in _USER_FLAGS:
            opts[_USER_FLAGS[kind]] = Value(True, tok.line)
        elif kind in _USER_STRING:
            opts[_USER_STRING[kind]] = Value(self.string(f"a value after `{tok.text}`"), tok.line)
        elif kind in _USER_LISTS:
            opts[_USER_LISTS[kind]] = Value(self.strings(f"one or more names after `{tok.text}`"), tok.line)
        elif kind in _USER_NUMBER:
            opts[_USER_NUMBER[kind]] = Value(self.number(f"a number after `{tok.text}`"), tok.line)
        elif kind == "LMTP":
            opts["lmtp"] = Value(True, tok.line)
        elif kind == "SPAMRESPONSE":
            codes = [self.number("an SMTP reply code after `antispam`")]
            while self.kind() == "NUMBER":
                codes.append(int(self.take().value))
            opts["antispam"] = Value(codes, tok.line)
        elif kind in ("IS", "TO"):
            if self.kind() == "STRING" and self.kind(1) == "THERE" and kind == "IS":
                opts["remote"] = Value(str(self.take().value), tok.line)
                self.take()
                return
            if self.kind() != "STRING":
                raise self.error(f"a local user name after `{tok.text}`")
            names, wildcard = self.mapping_list()
            if self.kind() == "HERE":
                self.take()
            self.set_local(user, names, wildcard, tok.line)


def parse_fetchmailrc(text: str, path: str = "~/.fetchmailrc") -> RcFile:
    """Parse the text of an rc file; ConfigError naming path:line on a syntax error."""
    rc = RcFile(path)
    entries = _Parser(tokenize(text), path).parse(rc)
    defaults: RcServer | None = None
    for i, (server, is_defaults) in enumerate(entries):
        if is_defaults:
            if i != 0:
                raise ConfigError('a "defaults" entry that is not the first entry, or a second one',
                                  path=f"{path}:{server.line}",
                                  cause="fetchmail reads defaults only from the first entry and refuses the file "
                                  "otherwise.",
                                  fix="Move the defaults entry before every poll entry, or merge the two.")
            defaults = server
            continue
        rc.servers.append(_merged(server, defaults) if defaults else server)
    return rc


def _merged(server: RcServer, defaults: RcServer) -> RcServer:
    """What the entry leaves unset comes from ``defaults`` (fetchmail's optmerge: whole values, lists too)."""
    base_user = defaults.users[0] if defaults.users else RcUser(defaults.line)
    options = {**defaults.options, **server.options}
    users = [RcUser(u.line, {**base_user.options, **u.options}) for u in server.users]
    return RcServer(server.name, server.skip, server.line, options, users)


def read_fetchmailrc(path: Path) -> RcFile:
    """Read and parse a file; a file that cannot be read is a ConfigError with the fix."""
    try:
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise ConfigError("the fetchmail configuration file does not exist", path=str(path),
                          fix="Name the file to import: `pop3gui import fetchmailrc PATH`.") from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(path),
                          fix="Check the file's permissions (run the import as the file's owner).") from None
    return parse_fetchmailrc(text, str(path))
