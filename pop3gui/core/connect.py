"""Opening a connection to a mailbox server (POP3 or IMAP), and what each failure means.

Both protocols connect the same way (TCP, implicit TLS or a STARTTLS-style
upgrade) and fail the same ways; only the server's name and its usual ports
differ, so the explanations live here once and name the protocol they are for.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
from dataclasses import dataclass

from pop3gui.core.errors import MailboxConnectionError, MailboxTimeoutError, MailboxTlsError
from pop3gui.core.tls import client_context


@dataclass(frozen=True)
class Service:
    """A mailbox protocol as the error messages name it: "POP3" with its usual ports."""

    name: str
    tls_port: int
    plain_port: int
    upgrade: str  # the command that starts TLS on the plain port

    def ports_hint(self) -> str:
        return f"{self.tls_port} for TLS, {self.plain_port} for plain or {self.upgrade}"


POP3 = Service("POP3", 995, 110, "STLS")
IMAP = Service("IMAP", 993, 143, "STARTTLS")


def tls_context(ssl_context: ssl.SSLContext | None, *, verify: bool) -> ssl.SSLContext:
    """The context the caller gave, else the shared rule for every mail server connection."""
    if ssl_context is not None:
        return ssl_context
    return client_context(verify=verify)


async def open_connection(
    host: str, port: int, *, tls: ssl.SSLContext | None, timeout: float, max_line: int, service: Service = POP3
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
        raise tls_error(exc, host, port, service) from exc
    except TimeoutError as exc:
        raise MailboxTimeoutError(
            f"Connecting to the {service.name} server {host}:{port} timed out after {timeout:g} s",
            cause="The server did not answer; it may be down, or a firewall drops the traffic.",
            fix="Check the host name and port, and that this computer can reach the internet.",
        ) from exc
    except OSError as exc:
        raise connect_error(exc, host, port, service) from exc


def tls_error(exc: ssl.SSLError, host: str, port: int, service: Service = POP3) -> MailboxTlsError:
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
        return MailboxTlsError(
            f"The TLS certificate of {host} (port {port}) did not verify: {reason}",
            cause=cause,
            fix=fix + " Setting verify_tls = false is safe only on a network you trust.",
        )
    return MailboxTlsError(
        f"TLS with {host}:{port} failed: {exc.reason or exc}",
        cause="The TLS handshake failed; the port may not speak TLS, or the server"
        " uses old, insecure TLS settings.",
        fix=f'Check the port ({service.tls_port} for security = "tls", {service.plain_port} for "starttls").',
    )


def connect_error(exc: OSError, host: str, port: int, service: Service = POP3) -> MailboxConnectionError:
    """A failed TCP connection in words: refused, unknown host, or what the network said."""
    if isinstance(exc, ConnectionRefusedError):
        cause = "Nothing accepts connections on that port, or a firewall rejects them."
    elif isinstance(exc, socket.gaierror):
        cause = f"The host name {host!r} could not be resolved."
    else:
        cause = f"The network reported: {exc.strerror or exc}."
    return MailboxConnectionError(
        f"Cannot connect to the {service.name} server {host}:{port}: {exc.strerror or exc}",
        cause=cause,
        fix=f"Check the host name and port ({service.ports_hint()}) and the internet connection.",
    )


#: How many lines of a session the transcript keeps (shown with a failure's event).
TRANSCRIPT_LINES = 200


class ServerConnection:
    """The reader and writer of one mailbox-server connection, and the transcript of what went over it.

    What the POP3 and IMAP byte streams share: attaching a freshly opened
    connection, asking the live transport whether it is encrypted, and
    dropping it without a word.
    """

    service = POP3
    ending = "QUIT"  # the command that ends a session politely, for the not-connected error

    def __init__(self, where: str, *, timeout: float, max_line: int) -> None:
        self.where = where
        self.timeout = timeout
        self.max_line = max_line
        self.transcript: collections.deque[str] = collections.deque(maxlen=TRANSCRIPT_LINES)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Start using a freshly opened connection."""
        self._reader, self._writer = reader, writer

    @property
    def connected(self) -> bool:
        """Whether a connection is open (not yet closed by an error, the session's end or close())."""
        return self._writer is not None

    @property
    def encrypted(self) -> bool:
        """Whether the live connection runs over TLS (asked of the transport itself)."""
        if self._writer is None:
            return False
        return self._writer.get_extra_info("ssl_object") is not None

    def buffered_bytes(self) -> int:
        """How many received bytes the reader holds that nobody has read yet."""
        return len(getattr(self._reader, "_buffer", b""))

    def live_writer(self) -> asyncio.StreamWriter:
        """The writer of the open connection; not being connected is an error."""
        if self._writer is None:
            raise self.not_connected()
        return self._writer

    async def close(self) -> None:
        """Drop the connection at once, without a word to the server."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        self.transcript.append("-- connection closed")
        writer.transport.abort()
        try:
            await asyncio.wait_for(writer.wait_closed(), 5)
        except (OSError, TimeoutError, ssl.SSLError):
            pass

    def not_connected(self) -> MailboxConnectionError:
        """The error for a command on a connection that is already closed."""
        return MailboxConnectionError(
            f"Not connected to the {self.service.name} server {self.where}",
            cause=f"The connection was closed earlier (after an error, {self.ending} or close()).",
            fix="Connect again.",
        )
