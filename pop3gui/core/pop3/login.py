"""Logging in to a POP3 server: SASL PLAIN (RFC 5034), USER/PASS and APOP (RFC 1939),
and an OAuth2 access token with SASL XOAUTH2 or OAUTHBEARER (RFC 7628).

The password or token only goes out over an encrypted connection unless the
account says security = "none", it never appears in the transcript, and the
command that logs in always goes out alone.  CAPA is asked again once logged
in, because RFC 2449 lets a server announce more then.
"""

from __future__ import annotations

import base64

from pop3gui.core.errors import (
    ConfigError,
    OAuthError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxInsecureError,
    MailboxProtocolError,
    MailboxTokenRefused,
)
from pop3gui.core.pop3.replies import (
    Reply,
    apop_digest,
    check_argument,
    error_for,
    greeting_timestamp,
    parse_capa_lines,
    parse_status,
    strip_eol,
)
from pop3gui.core.pop3.stream import Pop3Stream, printable
from pop3gui.core.sasl import bearer_error
from pop3gui.core.pop3.transport import require_secure

#: RFC 2449: a command line including CRLF is at most 255 octets, so a longer
#: AUTH initial response is sent after the server's "+ " continuation instead.
MAX_COMMAND_LINE = 255

Capabilities = dict[str, list[str]]

#: The SASL mechanisms that carry an OAuth2 bearer token, by the name an account gives them.
OAUTH_MECHANISMS = {"xoauth2": "XOAUTH2", "oauthbearer": "OAUTHBEARER"}

#: What answers a server's error challenge so that it sends its final -ERR:
#: an empty response for XOAUTH2, a lone %x01 for OAUTHBEARER (RFC 7628, 3.2.3).
_CHALLENGE_ANSWER = {"XOAUTH2": "", "OAUTHBEARER": base64.b64encode(b"\x01").decode()}

#: The longest value of an error challenge's JSON that is kept (status, scope).


async def ask_capa(stream: Pop3Stream) -> Capabilities:
    """The server's CAPA listing; empty when it does not know CAPA."""
    await stream.send("CAPA")
    reply = await stream.read_status("CAPA")
    if not reply.ok:
        return {}
    return parse_capa_lines(await stream.read_lines())


async def password_login(
    stream: Pop3Stream, *, security: str, capabilities: Capabilities, user: str, password: str
) -> Capabilities:
    """Log in with SASL PLAIN when CAPA offers it, else with USER/PASS; the capabilities after."""
    check_argument("user name", user)
    check_argument("password", password)
    require_secure(stream, security)
    mechanisms = [m.upper() for m in capabilities.get("SASL", [])]
    if "PLAIN" in mechanisms:
        await _auth_plain(stream, user, password)
    else:
        await stream.expect(f"USER {user}", "USER", login=True)
        await _login_step(stream, f"PASS {password}", "PASS", redacted="PASS ****")
    return await _after_login(stream, capabilities)


async def apop_login(
    stream: Pop3Stream,
    *,
    security: str,
    capabilities: Capabilities,
    greeting: str,
    user: str,
    password: str,
) -> Capabilities:
    """Log in with APOP, using the timestamp from the server's greeting; the capabilities after."""
    check_argument("user name", user)
    check_argument("password", password)
    require_secure(stream, security)
    stamp = greeting_timestamp(greeting)
    if stamp is None:
        raise MailboxCommandError(
            f"The POP3 server {stream.where} does not offer APOP",
            cause="Its greeting carries no <timestamp>, which APOP needs.",
            fix="Use the normal login (USER/PASS or SASL) for this account.",
            reply=f"+OK {greeting}",
        )
    digest = apop_digest(stamp, password)
    await _login_step(stream, f"APOP {user} {digest}", "APOP", redacted=f"APOP {user} ****")
    return await _after_login(stream, capabilities)


async def oauth_login(
    stream: Pop3Stream,
    *,
    security: str,
    capabilities: Capabilities,
    host: str,
    port: int,
    user: str,
    token: str,
    mechanism: str = "xoauth2",
) -> Capabilities:
    """Log in with an OAuth2 access token; the capabilities after.

    Always the two-line form (``AUTH XOAUTH2``, the server's ``+``, then the
    response): Exchange Online wants it, and a token of a thousand characters
    would not fit RFC 2449's 255-octet command line anyway.  The mechanism is
    tried even when CAPA does not list it, because Exchange does not always.
    A refused token usually comes back as a ``+`` challenge holding the
    server's error as base64 JSON; it is answered as the mechanism says, so
    that the server ends the exchange with its -ERR instead of waiting.
    """
    name = OAUTH_MECHANISMS.get(mechanism.lower())
    if name is None:
        raise ConfigError(
            f"unknown OAuth2 sign-in mechanism {mechanism!r}",
            key="mechanism",
            cause="POP3 carries an OAuth2 access token with SASL XOAUTH2 or OAUTHBEARER.",
            fix='Use "xoauth2" (Microsoft 365, Outlook.com, Google) or "oauthbearer".',
        )
    _check_oauth_user(user)
    _check_token(token)
    _require_secure_token(stream, security)
    if name == "XOAUTH2":
        secret = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:
        secret = f"n,a={_saslname(user)},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    response = base64.b64encode(secret.encode("utf-8")).decode("ascii")
    listed = name in [m.upper() for m in capabilities.get("SASL", [])]

    line = await _command_raw(stream, f"AUTH {name}")
    if not _is_continuation(line):
        reply = await _status_of(stream, line)
        if reply.ok:
            await stream.close()
            raise MailboxProtocolError(
                f"The POP3 server {stream.where} accepted AUTH {name} without a token",
                reply=reply.line,
            )
        raise _token_refused(stream.where, reply, name, user, listed=listed, before_token=True)

    stream.write(response, redacted=f"**** ({name} token, redacted)")
    await stream.drain()
    line = await stream.read_line(f"waiting for the reply to AUTH {name}")
    stream.transcript.append("S: " + printable(line))
    status = scope = ""
    challenged = _is_continuation(line)  # after the response, a challenge only ever carries an error
    if challenged:
        status, scope, said = token_challenge(line)
        if said:
            stream.transcript.append(f"-- the server's error: {said}")
        stream.write(_CHALLENGE_ANSWER[name])
        await stream.drain()
        line = await stream.read_line(f"waiting for the reply to AUTH {name}")
        stream.transcript.append("S: " + printable(line))
        if _is_continuation(line):
            await stream.close()
            raise MailboxProtocolError(
                f"The POP3 server {stream.where} kept challenging after a refused access token",
                cause="After its error challenge the server must end the sign-in with -ERR.",
                fix="Report this to the mail provider.",
                reply=printable(line),
            )
    reply = await _status_of(stream, line)
    if reply.ok:
        if challenged:
            await stream.close()
            raise MailboxProtocolError(
                f"The POP3 server {stream.where} reported an error for the access token, then accepted it",
                cause="A server that refuses a token in its challenge must end the sign-in with -ERR.",
                fix="Report this to the mail provider.",
                reply=reply.line,
            )
        return await _after_login(stream, capabilities)
    raise _token_refused(stream.where, reply, name, user, listed=listed, status=status, scope=scope)


def token_challenge(line: bytes) -> tuple[str, str, str]:
    """``(status, scope, text)`` of a ``+ base64(JSON)`` error challenge; empty what it does not say.

    Servers word it as they like ({"status":"401","schemes":"bearer",
    "scope":"mail"} from Dovecot and Google, {"status":"invalid_token"} for
    OAUTHBEARER), so anything that is not base64 of a JSON object is kept
    only as text for the transcript, never an error of its own.
    """
    return bearer_error(strip_eol(line)[1:])


def _is_continuation(line: bytes) -> bool:
    """A SASL continuation ('+ ...' or a bare '+'), not a +OK."""
    return line.startswith(b"+ ") or strip_eol(line) == b"+"


async def _status_of(stream: Pop3Stream, line: bytes) -> Reply:
    """A line already read, as a status; one that is not +OK/-ERR closes the connection."""
    try:
        return parse_status(line, stream.where)
    except MailboxProtocolError:
        await stream.close()
        raise


def _token_refused(
    where: str,
    reply: Reply,
    mechanism: str,
    user: str,
    *,
    listed: bool,
    before_token: bool = False,
    status: str = "",
    scope: str = "",
) -> MailboxCommandError:
    """The error a -ERR to an OAuth2 sign-in means.

    [IN-USE], [LOGIN-DELAY] and [SYS/TEMP] keep their meanings (retrying
    later helps); anything else is the token, or OAuth2 itself, refused.
    """
    err = error_for(f"AUTH {mechanism}", reply, where, login=True)
    if not isinstance(err, MailboxAuthError):
        return err
    if before_token:
        message = f"The POP3 server {where} refused OAuth2 sign-in (AUTH {mechanism}): {reply.line}"
        if listed:
            cause = f"The server announces {mechanism} but refused it before the access token was sent."
        else:
            cause = (
                f"The server does not list {mechanism} among its sign-in methods and refused it:"
                " it may not offer OAuth2 sign-in for POP3."
            )
        fix = (
            "Check the host and port the provider documents for OAuth2 POP3 (for Microsoft 365:"
            " outlook.office365.com, with POP enabled for the mailbox), or try the other"
            " mechanism (xoauth2 or oauthbearer)."
        )
    else:
        message = f"The POP3 server {where} refused the OAuth2 access token for {user}: {reply.line}"
        said = ", ".join(
            part for part in (f"status {status}" if status else "", f"scope {scope}" if scope else "") if part
        )
        cause = (
            "The server refused the access token: it has expired or been revoked, it lacks the"
            " mail permission (scope) the server asks for, or it was issued for another user"
            f" than {user}." + (f" The server said: {said}." if said else "")
        )
        fix = (
            "Sign in again, or check that the app has been granted the mail (POP) permission"
            " and that the user name is the mailbox's address."
        )
    if before_token:  # no token was judged: the way of signing in was, and a new token would not help
        return MailboxAuthError(message, cause=cause, fix=fix, reply=reply.line, resp_code=reply.resp_code)
    return MailboxTokenRefused(
        message, cause=cause, fix=fix, reply=reply.line, resp_code=reply.resp_code, status=status, scope=scope
    )


def _check_oauth_user(user: str) -> None:
    """The user goes into a SASL response whose fields end with %x01: it may hold none."""
    check_argument("user name", user)
    if "\x01" in user or not user:
        raise ConfigError(
            "is empty or contains a control character and cannot be sent to the POP3 server",
            key="user name",
            cause="OAuth2 sign-in names the mailbox by its address.",
            fix="Set the user name to the mailbox's address.",
        )


def _check_token(token: str) -> None:
    """A bearer token is printable ASCII without spaces (RFC 6750); anything else is not sent."""
    if not token or any(not "\x21" <= c <= "\x7e" for c in token):
        raise OAuthError(
            "The OAuth2 access token is empty or malformed; it was not sent to the POP3 server",
            cause="An access token is printable text without spaces or line breaks; this one is not,"
            " so the sign-in that produced it went wrong.",
            fix="Sign in again.",
        )


def _require_secure_token(stream: Pop3Stream, security: str) -> None:
    """A token lets anyone read the mailbox until it expires: not over plaintext unless the account allows it."""
    stream.live_writer()
    if not stream.encrypted and security != "none":
        raise MailboxInsecureError(
            f"Refusing to send the OAuth2 access token to {stream.where} without encryption",
            cause=f"The account uses security = {security}, but the connection is not encrypted.",
            fix='Keep TLS on. Only if you trust the whole network, set security = "none".',
        )


def _saslname(user: str) -> str:
    """RFC 5801's saslname: ',' and '=' in an authorization identity escaped as =2C and =3D."""
    return user.replace("=", "=3D").replace(",", "=2C")


async def _auth_plain(stream: Pop3Stream, user: str, password: str) -> None:
    """RFC 5034 AUTH PLAIN, with the initial response when it fits in one line."""
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    command = f"AUTH PLAIN {token}"
    if len(command) + 2 <= MAX_COMMAND_LINE:
        await _login_step(stream, command, "AUTH", redacted="AUTH PLAIN ****")
        return
    reply_line = await _command_raw(stream, "AUTH PLAIN")
    if not reply_line.startswith(b"+ ") and reply_line.rstrip(b"\r\n") != b"+":
        reply = parse_status(reply_line, stream.where)
        if reply.ok:
            raise MailboxProtocolError(
                f"The POP3 server {stream.where} accepted AUTH PLAIN without credentials",
                reply=reply.line,
            )
        raise error_for("AUTH", reply, stream.where, login=True)
    await _login_step(stream, token, "AUTH", redacted="****")


async def _command_raw(stream: Pop3Stream, command: str) -> bytes:
    """Send a command and return its raw reply line (for SASL '+ ' continuations)."""
    stream.write(command)
    await stream.drain()
    line = await stream.read_line("waiting for the reply to AUTH")
    stream.transcript.append("S: " + printable(line))
    return line


async def _login_step(stream: Pop3Stream, command: str, name: str, *, redacted: str) -> None:
    """The command that logs in, or -ERR as the matching login error.

    It always goes out alone, as the last command of a pipelined group
    (like SMTP's state-changing commands, RFC 2920): some servers (Courier
    among them) hand the connection to a mailbox process after a
    successful login and lose whatever the client sent with it, even
    though they announce PIPELINING.
    """
    await stream.expect(command, name, login=True, redacted=redacted)


async def _after_login(stream: Pop3Stream, capabilities: Capabilities) -> Capabilities:
    """Ask CAPA again: RFC 2449 lets a server announce more once logged in."""
    if capabilities:
        caps = await ask_capa(stream)
        if caps:
            return caps
    return capabilities
