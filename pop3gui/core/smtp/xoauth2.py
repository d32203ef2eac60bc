"""Logging in to the local mail server with an OAuth2 access token: SASL XOAUTH2 over aiosmtplib.

Exchange Online and Gmail take ``AUTH XOAUTH2 base64("user=" U "\\x01auth=Bearer " T "\\x01\\x01")``.
A refused token usually comes back as ``334 base64(JSON)``, answered with an
empty line before the final refusal.  The token never reaches the transcript.
"""

from __future__ import annotations

import base64

import aiosmtplib

from pop3gui.core.errors import ConfigError, OAuthError, SmtpAuthError, SmtpTokenRefused
from pop3gui.core.sasl import bearer_error
from pop3gui.core.smtp.transcript import Transcript


def check_xoauth2(username: str, token: str) -> None:
    """What goes into AUTH XOAUTH2 must not break its line or its \\x01-separated fields."""
    if not username or any(c in username for c in "\r\n\0\x01"):
        raise ConfigError(
            "is empty or contains a control character, so it cannot name the mailbox for OAuth2 sign-in",
            key="smtp.username",
            cause="AUTH XOAUTH2 names the mailbox whose access token it carries.",
            fix="Set smtp.username to the mailbox's address.",
        )
    if not token or any(not "\x21" <= c <= "\x7e" for c in token):
        raise OAuthError(
            "The OAuth2 access token for SMTP is empty or malformed; it was not sent",
            cause="An access token is printable text without spaces or line breaks; this one is not,"
            " so the sign-in that produced it went wrong.",
            fix="Sign in again.",
        )



async def login_xoauth2(smtp: aiosmtplib.SMTP, username: str, token: str, log: Transcript, *, where: str) -> None:
    """AUTH XOAUTH2 with the access token; a refusal raises with the server's words.

    Driven with ``execute_command`` rather than aiosmtplib's own login:
    the aiosmtplib releases this package accepts do not all know XOAUTH2,
    and the transcript needs each step (the token redacted) and the
    server's error challenge.  The one-line form goes first (Exchange
    Online, Gmail); a server whose line limit it breaks (500/501) gets
    the response after its ``334`` instead.  A refused token usually comes
    back as ``334 base64(JSON)``; an empty line answers it, and the
    server then sends its final refusal.
    """
    response = base64.b64encode(f"user={username}\x01auth=Bearer {token}\x01\x01".encode()).decode()
    offered = "xoauth2" in smtp.server_auth_methods
    log.client("AUTH XOAUTH2 **** (redacted)")
    reply = await smtp.execute_command(b"AUTH", b"XOAUTH2", response.encode())
    log.server(reply.code, reply.message)
    if reply.code in (500, 501):
        log.client("AUTH XOAUTH2")
        reply = await smtp.execute_command(b"AUTH", b"XOAUTH2")
        log.server(reply.code, reply.message)
        if reply.code == 334:
            log.client("**** (redacted)")
            reply = await smtp.execute_command(response.encode())
            log.server(reply.code, reply.message)
    said = ""
    if reply.code == 334:
        status, scope, text = bearer_error(reply.message.encode("utf-8", errors="replace"))
        if text:
            log.lines.append(f"-- the server's error: {text}")
        said = ", ".join(part for part in (f"status {status}" if status else "",
                                           f"scope {scope}" if scope else "") if part)
        log.client("")
        reply = await smtp.execute_command(b"")
        log.server(reply.code, reply.message)
    if reply.code == 235:
        return
    raise _refused(reply.code, reply.message, log, username=username, where=where, offered=offered, said=said)

def _refused(code: int, message: str, log: Transcript, *, username: str, where: str, offered: bool,
         said: str) -> SmtpAuthError:
    """A 5xx: the token (or OAuth2 itself) refused; a 4xx: the server's trouble, retried later."""
    if 400 <= code < 500:
        err = SmtpAuthError(
            f"the local mail server {where} could not check the OAuth2 sign-in for {username}"
            f" now: {code} {message}",
            cause=f"The server reports a temporary problem with signing in (reply {code}).",
            fix="Nothing to do if it passes; the mail stays on the POP3 server and is retried next cycle.",
            code=code, reply=message, transcript=log.text(),
        )
        err.temporary = True
        return err
    if not offered and code in (500, 502, 504):
        cause = (f"The server does not list XOAUTH2 among its login methods and refused it (reply {code}"
                 f" {message}): it may not offer OAuth2 sign-in.")
        fix = ("Check the SMTP host and port the provider documents for OAuth2 (for Microsoft 365:"
               " smtp.office365.com port 587), or sign in to this server with a password.")
    else:
        cause = (f"The server refused the access token (reply {code} {message}): it has expired or been"
                 " revoked, or it lacks the permission to send mail."
                 + (f" The server said: {said}." if said else ""))
        fix = ("Sign in again, or check that the app has been granted the permission to send mail (for"
               " Microsoft 365: SMTP.Send, with SMTP AUTH allowed for the mailbox).")
    return SmtpTokenRefused(
        f"the local mail server {where} refused the OAuth2 sign-in for {username}",
        cause=cause, fix=fix, code=code, reply=message, transcript=log.text(),
    )
