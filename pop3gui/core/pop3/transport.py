"""Opening a POP3 connection: TCP, implicit TLS or STLS (RFC 2595), and what each failure means.

Anything short of a verified TLS session is an error unless the account says
security = "none", and the password guard asks the live transport itself
whether it is encrypted rather than trusting how the session was set up.
"""

from __future__ import annotations

import asyncio
import socket
import ssl

from pop3gui.core.errors import (
    Pop3ConnectionError,
    Pop3InsecureError,
    Pop3TimeoutError,
    Pop3TlsError,
)
from pop3gui.core.pop3.stream import Pop3Stream
from pop3gui.core.tls import client_context

SECURITY_MODES = ("tls", "starttls", "none")


def tls_context(ssl_context: ssl.SSLContext | None, *, verify: bool) -> ssl.SSLContext:
    """The context the caller gave, else the shared rule for every mail server connection."""
    if ssl_context is not None:
        return ssl_context
    return client_context(verify=verify)


async def open_connection(
    host: str, port: int, *, tls: ssl.SSLContext | None, timeout: float, max_line: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP, and TLS at once when *tls* is given; every failure explained."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(
                host,
                port,
                ssl=tls,
                server_hostname=host if tls else None,
                limit=max_line,
                ssl_handshake_timeout=timeout if tls else None,
            ),
            timeout,
        )
    except ssl.SSLError as exc:
        raise tls_error(exc, host, port) from exc
    except TimeoutError as exc:
        raise Pop3TimeoutError(
            f"Connecting to the POP3 server {host}:{port} timed out after {timeout:g} s",
            cause="The server did not answer; it may be down, or a firewall drops the traffic.",
            fix="Check the host name and port, and that this computer can reach the internet.",
        ) from exc
    except OSError as exc:
        raise connect_error(exc, host, port) from exc


async def starttls(
    stream: Pop3Stream,
    *,
    host: str,
    port: int,
    capabilities: dict[str, list[str]],
    context: ssl.SSLContext,
) -> None:
    """RFC 2595 STLS; anything short of a verified TLS session is an error."""
    where = stream.where
    if "STLS" not in capabilities:
        raise Pop3TlsError(
            f"The POP3 server {where} does not offer STLS",
            cause="The account is set to security = starttls, but the server did not"
            " announce STLS, so the password would travel unencrypted.",
            fix='Use security = "tls" (usually port 995) if the provider offers it;'
            " never fall back to plaintext on an untrusted network.",
        )
    reply = await stream.command("STLS", "STLS")
    if not reply.ok:
        raise Pop3TlsError(
            f"The POP3 server {where} refused STLS: {reply.line}",
            cause="The server would not start TLS, so the password would travel unencrypted.",
            fix='Use security = "tls" (usually port 995) if the provider offers it.',
            reply=reply.line,
            resp_code=reply.resp_code,
        )
    writer = stream.live_writer()
    # Bytes already buffered were sent before TLS but would be read as if
    # protected by it (STARTTLS response injection): refuse them.
    if stream.unread_bytes():
        raise Pop3TlsError(
            f"The POP3 server {where} sent unexpected data right after STLS",
            cause="Data arrived before TLS started; someone on the network may be"
            " tampering with the connection.",
            fix='Use security = "tls" (port 995), or check the network.',
        )
    try:
        await asyncio.wait_for(
            writer.start_tls(context, server_hostname=host, ssl_handshake_timeout=stream.timeout),
            stream.timeout,
        )
    except ssl.SSLError as exc:
        raise tls_error(exc, host, port) from exc
    except TimeoutError as exc:
        raise Pop3TlsError(
            f"The TLS handshake with {where} timed out",
            cause="The server accepted STLS but did not complete TLS.",
            fix="Retry later; if it persists, contact the provider.",
        ) from exc
    except OSError as exc:
        raise stream.dropped(exc) from exc
    stream.transcript.append("-- TLS started")


def require_secure(stream: Pop3Stream, security: str) -> None:
    """Refuse to let a password out unless the connection is encrypted or the account allows plaintext."""
    stream.live_writer()
    if not stream.encrypted and security != "none":
        raise Pop3InsecureError(
            f"Refusing to send the password to {stream.where} without encryption",
            cause=f"The account uses security = {security}, but the connection"
            " is not encrypted.",
            fix='Keep TLS on. Only if you trust the whole network, set security = "none".',
        )


def tls_error(exc: ssl.SSLError, host: str, port: int) -> Pop3TlsError:
    """A failed TLS handshake in words: which check failed, and what fixes it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or str(exc)
        low = reason.lower()
        if "mismatch" in low:
            cause = f"The certificate does not name the host {host!r} ({reason})."
            fix = "Use the host name the provider documents (the one in its certificate)."
        elif "expired" in low or "not yet valid" in low:
            cause = f"The certificate of {host} is out of date ({reason})."
            fix = (
                "Check this computer's date and time; otherwise the provider must renew"
                " its certificate."
            )
        else:
            cause = (
                f"The certificate of {host} is not signed by an authority this"
                f" computer trusts ({reason})."
            )
            fix = (
                "Install the provider's CA certificate, or set verify_tls = false only"
                " if you trust the network."
            )
        return Pop3TlsError(
            f"The TLS certificate of {host} (port {port}) did not verify: {reason}",
            cause=cause,
            fix=fix + " Setting verify_tls = false is safe only on a network you trust.",
        )
    return Pop3TlsError(
        f"TLS with {host}:{port} failed: {exc.reason or exc}",
        cause="The TLS handshake failed; the port may not speak TLS, or the server"
        " uses old, insecure TLS settings.",
        fix='Check the port (995 for security = "tls", 110 for "starttls").',
    )


def connect_error(exc: OSError, host: str, port: int) -> Pop3ConnectionError:
    """A failed TCP connection in words: refused, unknown host, or what the network said."""
    if isinstance(exc, ConnectionRefusedError):
        cause = "Nothing accepts connections on that port, or a firewall rejects them."
    elif isinstance(exc, socket.gaierror):
        cause = f"The host name {host!r} could not be resolved."
    else:
        cause = f"The network reported: {exc.strerror or exc}."
    return Pop3ConnectionError(
        f"Cannot connect to the POP3 server {host}:{port}: {exc.strerror or exc}",
        cause=cause,
        fix="Check the host name and port (995 for TLS, 110 for plain or STLS)"
        " and the internet connection.",
    )
