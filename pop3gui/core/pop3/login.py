"""Logging in to a POP3 server: SASL PLAIN (RFC 5034), USER/PASS and APOP (RFC 1939).

The password only goes out over an encrypted connection unless the account
says security = "none", it never appears in the transcript, and the command
that logs in always goes out alone.  CAPA is asked again once logged in,
because RFC 2449 lets a server announce more then.
"""

from __future__ import annotations

import base64

from pop3gui.core.errors import Pop3CommandError, Pop3ProtocolError
from pop3gui.core.pop3.replies import (
    apop_digest,
    check_argument,
    error_for,
    greeting_timestamp,
    parse_capa_lines,
    parse_status,
)
from pop3gui.core.pop3.stream import Pop3Stream, printable
from pop3gui.core.pop3.transport import require_secure

#: RFC 2449: a command line including CRLF is at most 255 octets, so a longer
#: AUTH initial response is sent after the server's "+ " continuation instead.
MAX_COMMAND_LINE = 255

Capabilities = dict[str, list[str]]


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
        raise Pop3CommandError(
            f"The POP3 server {stream.where} does not offer APOP",
            cause="Its greeting carries no <timestamp>, which APOP needs.",
            fix="Use the normal login (USER/PASS or SASL) for this account.",
            reply=f"+OK {greeting}",
        )
    digest = apop_digest(stamp, password)
    await _login_step(stream, f"APOP {user} {digest}", "APOP", redacted=f"APOP {user} ****")
    return await _after_login(stream, capabilities)


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
            raise Pop3ProtocolError(
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
