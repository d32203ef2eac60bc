"""Logging in to an IMAP server: AUTHENTICATE PLAIN or LOGIN with a password, and an
OAuth2 access token with AUTHENTICATE XOAUTH2 or OAUTHBEARER (RFC 7628).

The password or token only goes out over an encrypted connection unless the
account says security = "none", and never appears in the transcript.  What a
refusal means is read from the response code (RFC 5530): a wrong password, a
mailbox in use, a server that is temporarily unavailable.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from pop3gui.core.errors import (
    ConfigError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxError,
    MailboxInsecureError,
    MailboxInUseError,
    MailboxProtocolError,
    MailboxTokenRefused,
    OAuthError,
)
from pop3gui.core.imap.parse import Response, quoted
from pop3gui.core.imap.stream import ImapStream
from pop3gui.core.sasl import bearer_error

#: The SASL mechanisms that carry an OAuth2 bearer token, by the name an account gives them.
OAUTH_MECHANISMS = {"xoauth2": "XOAUTH2", "oauthbearer": "OAUTHBEARER"}

#: What answers an error challenge so that the server sends its final NO (RFC 7628, 3.2.3).
_CHALLENGE_ANSWER = {"XOAUTH2": "", "OAUTHBEARER": base64.b64encode(b"\x01").decode()}

#: Response codes (RFC 5530) that say "try again later", not "wrong password".
_TEMPORARY = {"UNAVAILABLE", "SERVERBUG", "LIMIT", "CONTACTADMIN"}

#: Sends one tagged command line and returns its tag; the caller reads the responses.
Sender = Callable[[str, str | None], Awaitable[str]]
#: Reads responses until the tagged one for a tag (collecting untagged data on the way).
Finisher = Callable[[str, str], Awaitable[Response]]


def check_secret_text(what: str, value: str) -> None:
    """A user name or password must not hold a line break or NUL: it could not be sent as one argument."""
    if any(c in value for c in "\r\n\0"):
        raise ConfigError(
            "contains a line break or NUL and cannot be sent to the IMAP server",
            key=what,
            cause="IMAP sends the user name and password as arguments of one command line.",
            fix=f"Re-enter the {what} without line breaks.",
        )


def require_secure(stream: ImapStream, security: str, what: str = "the password") -> None:
    """Refuse to let a secret out unless the connection is encrypted or the account allows plaintext."""
    stream.live_writer()
    if not stream.encrypted and security != "none":
        raise MailboxInsecureError(
            f"Refusing to send {what} to {stream.where} without encryption",
            cause=f"The account uses security = {security}, but the connection is not encrypted.",
            fix='Keep TLS on. Only if you trust the whole network, set security = "none".',
        )


def login_refused(where: str, response: Response, command: str) -> MailboxError:
    """What a NO or BAD to a login command means, from its response code."""
    said = f"{response.kind} " + (f"[{response.code}] " if response.code else "") + response.text
    if response.code == "INUSE":
        return MailboxInUseError(
            f"The IMAP server {where} says the mailbox is in use: {said}",
            cause="Another program holds the mailbox, or an earlier session has not ended yet.",
            fix="Nothing to do if it happens once; the next cycle retries. Otherwise close the other program.",
            reply=said, resp_code=response.code)
    if response.code in _TEMPORARY:
        return MailboxCommandError(
            f"The IMAP server {where} cannot log in now: {said}",
            cause="The server reports a temporary problem on its side.",
            fix="Nothing to do: the next cycle retries. If it lasts, ask the provider.",
            reply=said, resp_code=response.code)
    if response.kind == "BAD":
        return MailboxProtocolError(
            f"The IMAP server {where} did not understand {command}: {said}",
            cause="The server refused the login command itself, not the password.",
            fix="Check the port and security settings; report it if another mail client works.",
            reply=said, resp_code=response.code)
    return MailboxAuthError(
        f"The IMAP server {where} refused the login: {said}",
        cause="The user name or password is wrong, the account is locked, or IMAP access is turned off for "
        "this mailbox." + (" The server asks for an app password or OAuth2 sign-in." if
                           "app" in response.text.lower() or "web" in response.text.lower() else ""),
        fix="Check the user name and password (many providers need an app password, or OAuth2), and that IMAP "
        "is enabled for the mailbox.",
        reply=said, resp_code=response.code)


async def password_login(stream: ImapStream, send: Sender, finish: Finisher, *, capabilities: set[str],
                         security: str, user: str, password: str) -> Response:
    """AUTHENTICATE PLAIN when offered (UTF-8 safe), else LOGIN; the tagged OK."""
    check_secret_text("user name", user)
    check_secret_text("password", password)
    require_secure(stream, security)
    if "LOGINDISABLED" in capabilities:
        raise MailboxInsecureError(
            f"The IMAP server {stream.where} does not allow a password login on this connection",
            cause="The server announced LOGINDISABLED: it wants TLS (or another way of signing in) first.",
            fix='Use security = "tls" (port 993) or "starttls" (port 143).')
    if "AUTH=PLAIN" in capabilities:
        secret = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
        return await _authenticate(stream, send, finish, "PLAIN", secret, capabilities, "AUTHENTICATE PLAIN ****")
    if user.isascii() and password.isascii():
        tag = await send(f"LOGIN {quoted(user)} {quoted(password)}", f"LOGIN {quoted(user)} ****")
        response = await finish(tag, "LOGIN")
        if response.kind != "OK":
            raise login_refused(stream.where, response, "LOGIN")
        return response
    raise MailboxAuthError(
        f"The IMAP server {stream.where} offers only LOGIN, which cannot carry a non-ASCII user name or password",
        cause="IMAP's LOGIN command takes ASCII text; the server does not offer AUTHENTICATE PLAIN.",
        fix="Use an ASCII password (or an app password) for this mailbox.")


async def oauth_login(stream: ImapStream, send: Sender, finish: Finisher, *, capabilities: set[str],
                      security: str, host: str, port: int, user: str, token: str,
                      mechanism: str = "xoauth2") -> Response:
    """AUTHENTICATE with an OAuth2 access token; a refused token is MailboxTokenRefused."""
    name = OAUTH_MECHANISMS.get(mechanism.lower())
    if name is None:
        raise ConfigError(f"unknown OAuth2 sign-in mechanism {mechanism!r}", key="sasl",
                          cause="IMAP carries an OAuth2 access token with SASL XOAUTH2 or OAUTHBEARER.",
                          fix='Use "xoauth2" (Microsoft 365, Outlook.com, Google) or "oauthbearer".')
    check_secret_text("user name", user)
    if "\x01" in user or not user:
        raise ConfigError("is empty or contains a control character", key="user name",
                          cause="OAuth2 sign-in names the mailbox by its address.",
                          fix="Set the user name to the mailbox's address.")
    if not token or any(not "\x21" <= c <= "\x7e" for c in token):
        raise OAuthError("The OAuth2 access token is empty or malformed; it was not sent to the IMAP server",
                         cause="An access token is printable text without spaces or line breaks; this one is "
                         "not, so the sign-in that produced it went wrong.", fix="Sign in again.")
    require_secure(stream, security, "the OAuth2 access token")
    if name == "XOAUTH2":
        raw = f"user={user}\x01auth=Bearer {token}\x01\x01"
    else:
        saslname = user.replace("=", "=3D").replace(",", "=2C")
        raw = f"n,a={saslname},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    secret = base64.b64encode(raw.encode("utf-8")).decode("ascii")
    listed = f"AUTH={name}" in capabilities
    return await _authenticate(stream, send, finish, name, secret, capabilities,
                               f"AUTHENTICATE {name} **** (token, redacted)", user=user, listed=listed)


async def _authenticate(stream: ImapStream, send: Sender, finish: Finisher, name: str, secret: str,
                        capabilities: set[str], redacted: str, *, user: str = "", listed: bool = True) -> Response:
    """One AUTHENTICATE exchange: initial response inline (SASL-IR) or after the server's "+"."""
    bearer = name in _CHALLENGE_ANSWER
    if "SASL-IR" in capabilities and listed:  # an unannounced mechanism gets no token until it says "+"
        tag = await send(f"AUTHENTICATE {name} {secret}", redacted)
    else:
        tag = await send(f"AUTHENTICATE {name}", None)
        first = await stream.read_response(f"waiting for the reply to AUTHENTICATE {name}")
        if first.tag != "+":
            response = first if first.tag == tag else await finish(tag, f"AUTHENTICATE {name}")
            raise _refused(stream.where, response, name, user, bearer=bearer, listed=listed, before_token=True)
        await stream.send(secret, redacted=redacted)
    status = scope = ""
    challenged = False
    response = await stream.read_response(f"waiting for the reply to AUTHENTICATE {name}")
    if response.tag == "+":
        challenged = True
        status, scope, said = bearer_error(response.text.encode())
        if said:
            stream.transcript.append(f"-- the server's error: {said}")
        await stream.send(_CHALLENGE_ANSWER.get(name, "*"))
        response = await stream.read_response(f"waiting for the reply to AUTHENTICATE {name}")
        if response.tag == "+":
            await stream.close()
            raise MailboxProtocolError(
                f"The IMAP server {stream.where} kept challenging after a refused sign-in",
                cause="After its error challenge the server must end the sign-in with NO.",
                fix="Report this to the mail provider.")
    if response.tag != tag:
        response = await finish(tag, f"AUTHENTICATE {name}") if response.tag == "*" else response
    if response.tag != tag:
        await stream.close()
        raise MailboxProtocolError(f"The IMAP server {stream.where} answered AUTHENTICATE out of turn",
                                   cause="A response carried a tag no command had.",
                                   fix="Report this to the mail provider.")
    if response.kind == "OK":
        if challenged:
            await stream.close()
            raise MailboxProtocolError(
                f"The IMAP server {stream.where} reported an error for the sign-in, then accepted it",
                cause="A server that refuses a sign-in in its challenge must end it with NO.",
                fix="Report this to the mail provider.")
        return response
    raise _refused(stream.where, response, name, user, bearer=bearer, listed=listed, status=status, scope=scope)


def _refused(where: str, response: Response, name: str, user: str, *, bearer: bool, listed: bool,
             before_token: bool = False, status: str = "", scope: str = "") -> MailboxError:
    err = login_refused(where, response, f"AUTHENTICATE {name}")
    if not bearer or not isinstance(err, MailboxAuthError):
        return err
    said = f"{response.kind} " + (f"[{response.code}] " if response.code else "") + response.text
    if before_token:
        cause = (f"The server announces {name} but refused it before the access token was sent." if listed else
                 f"The server does not list {name} among its sign-in methods and refused it: it may not offer "
                 "OAuth2 sign-in for IMAP.")
        return MailboxAuthError(
            f"The IMAP server {where} refused OAuth2 sign-in (AUTHENTICATE {name}): {said}", cause=cause,
            fix="Check the host and port the provider documents for OAuth2 IMAP (for Microsoft 365: "
            "outlook.office365.com port 993, with IMAP enabled for the mailbox), or try the other mechanism "
            "(xoauth2 or oauthbearer).", reply=said, resp_code=response.code)
    detail = ", ".join(p for p in (f"status {status}" if status else "", f"scope {scope}" if scope else "") if p)
    return MailboxTokenRefused(
        f"The IMAP server {where} refused the OAuth2 access token for {user}: {said}",
        cause="The server refused the access token: it has expired or been revoked, it lacks the mail "
        f"permission (scope) the server asks for, or it was issued for another user than {user}."
        + (f" The server said: {detail}." if detail else ""),
        fix="Sign in again, or check that the app has been granted the mail (IMAP) permission and that the "
        "user name is the mailbox's address.",
        reply=said, resp_code=response.code, status=status, scope=scope)
