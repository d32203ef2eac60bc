"""Opening a POP3 connection: TCP, implicit TLS or STLS (RFC 2595), and what each failure means.

Anything short of a verified TLS session is an error unless the account says
security = "none", and the password guard asks the live transport itself
whether it is encrypted rather than trusting how the session was set up.
"""

from __future__ import annotations

import asyncio
import ssl

from pop3gui.core.connect import open_connection, tls_context, tls_error
from pop3gui.core.errors import MailboxInsecureError, MailboxTlsError
from pop3gui.core.pop3.stream import Pop3Stream

SECURITY_MODES = ("tls", "starttls", "none")

__all__ = ["SECURITY_MODES", "open_connection", "require_secure", "starttls", "tls_context"]


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
        raise MailboxTlsError(
            f"The POP3 server {where} does not offer STLS",
            cause="The account is set to security = starttls, but the server did not"
            " announce STLS, so the password would travel unencrypted.",
            fix='Use security = "tls" (usually port 995) if the provider offers it;'
            " never fall back to plaintext on an untrusted network.",
        )
    reply = await stream.command("STLS", "STLS")
    if not reply.ok:
        raise MailboxTlsError(
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
        raise MailboxTlsError(
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
        raise MailboxTlsError(
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
        raise MailboxInsecureError(
            f"Refusing to send the password to {stream.where} without encryption",
            cause=f"The account uses security = {security}, but the connection"
            " is not encrypted.",
            fix='Keep TLS on. Only if you trust the whole network, set security = "none".',
        )
