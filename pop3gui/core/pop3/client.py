"""A small, strict asyncio POP3 client (RFC 1939, 2449, 2595, 5034).

Written for one job: downloading a mailbox without ever losing or corrupting
a message. So every read has a timeout, every line has a length bound, a
broken stream closes the connection instead of guessing, passwords never
travel in plaintext unless the account says so, and deletions only commit on
a QUIT the server acknowledged.

Commands are split into "send" and "read the reply" so that they can be
pipelined (RFC 2449 PIPELINING) in the transaction state: send N commands,
then read N replies. A login command is always the last of its group.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import re
import contextlib
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import BinaryIO, Protocol, Self, TypeVar

from pop3gui.core.errors import (
    ConfigError,
    Pop3CommandError,
    Pop3ConnectionError,
    Pop3Error,
    Pop3InsecureError,
    Pop3ProtocolError,
    Pop3TimeoutError,
    Pop3TlsError,
)
from pop3gui.core.pop3.replies import (
    Reply,
    apop_digest,
    check_argument,
    end_of_long_line,
    error_for,
    greeting_timestamp,
    parse_capa_lines,
    parse_list_line,
    parse_stat,
    parse_status,
    parse_uidl_line,
    show,
    unstuff,
)

SECURITY_MODES = ("tls", "starttls", "none")

#: RFC 2449: a command line including CRLF is at most 255 octets, so a longer
#: AUTH initial response is sent after the server's "+ " continuation instead.
MAX_COMMAND_LINE = 255

TRANSCRIPT_LINES = 200

_T = TypeVar("_T")
# The class defines list(), which hides the builtin inside its body.
_Lines = list[bytes]
_Caps = dict[str, list[str]]


class DataSink(Protocol):
    """Where message data goes: a file, or anything else with ``write``."""

    def write(self, data: bytes, /) -> object: ...


_BARE_LF = re.compile(rb"(?<!\r)\n")


def _find_end(block: bytes | bytearray, at_line_start: bool) -> tuple[int, int]:
    """Where the terminating "." line starts in a block, and its length; (-1, 0) if absent."""
    if at_line_start:
        if block.startswith(b".\r\n"):
            return 0, 3
        if block.startswith(b".\n"):
            return 0, 2
    crlf = block.find(b"\n.\r\n")
    lf = block.find(b"\n.\n", 0, crlf + 3 if crlf >= 0 else len(block))
    if lf >= 0:
        return lf + 1, 2
    if crlf >= 0:
        return crlf + 1, 3
    return -1, 0


def _data_lines(block: bytes, at_line_start: bool) -> bytes:
    """Whole lines of message data: every line ending CRLF, one leading dot removed per line.

    With ``at_line_start`` False the first line continues an over-long line,
    so its start is data, not a line start.
    """
    if block.count(b"\n") != block.count(b"\r\n"):
        block = _BARE_LF.sub(b"\r\n", block)
    if at_line_start and block.startswith(b"."):
        block = block[1:]
    return block.replace(b"\n.", b"\n")


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)


class Pop3Client:
    """One POP3 session; use as ``async with Pop3Client(...) as pop:``.

    Leaving the block normally sends QUIT (which commits DELEs); leaving it
    with an exception aborts the connection so the server rolls DELEs back.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str,
        verify_tls: bool = True,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        max_line: int = 64 * 1024,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ConfigError(
                f"unknown POP3 security {security!r}",
                key="security",
                cause="security must be one of: tls, starttls, none.",
                fix='Use "tls" for port 995, "starttls" for port 110 with STLS,'
                ' or "none" only on a network you trust.',
            )
        self.host = host
        self.port = port
        self.security = security
        self.verify_tls = verify_tls
        self.timeout = timeout
        self.max_line = max_line
        self._ssl_context = ssl_context
        self.greeting = ""
        self.capabilities: dict[str, list[str]] = {}
        self.transcript: collections.deque[str] = collections.deque(
            maxlen=TRANSCRIPT_LINES
        )
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._quit_done = False
        # RETR replies still on the wire after a pipelined download stopped early.
        self._unread_retr = 0
        # Bytes read past the end of a message (the start of the next reply), read before the socket.
        self._head = bytearray()

    # ------------------------------------------------------------------ public

    @property
    def where(self) -> str:
        """host:port, as every error message names it."""
        return f"{self.host}:{self.port}"

    @property
    def supports_pipelining(self) -> bool:
        """Whether CAPA announced PIPELINING (RFC 2449)."""
        return "PIPELINING" in self.capabilities

    @property
    def encrypted(self) -> bool:
        """Whether the live connection runs over TLS (asked of the transport itself)."""
        if self._writer is None:
            return False
        return self._writer.get_extra_info("ssl_object") is not None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.quit()
        else:
            await self.close()

    async def connect(self) -> None:
        """Open TCP (and TLS), read the greeting, ask CAPA, run STLS if asked to."""
        self._quit_done = False
        tls = self._tls_context() if self.security == "tls" else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=tls,
                    server_hostname=self.host if tls else None,
                    limit=self.max_line,
                    ssl_handshake_timeout=self.timeout if tls else None,
                ),
                self.timeout,
            )
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from exc
        except TimeoutError as exc:
            raise Pop3TimeoutError(
                f"Connecting to the POP3 server {self.where} timed out after {self.timeout:g} s",
                cause="The server did not answer; it may be down, or a firewall drops the traffic.",
                fix="Check the host name and port, and that this computer can reach the internet.",
            ) from exc
        except OSError as exc:
            raise self._connect_error(exc) from exc
        self._reader, self._writer = reader, writer
        try:
            reply = await self._read_status("greeting")
            self.greeting = reply.text
            if not reply.ok:
                raise error_for("the connection", reply, self.where)
            self.capabilities = await self._capa()
            if self.security == "starttls":
                await self._starttls()
                self.capabilities = await self._capa()
        except BaseException:
            await self.close()
            raise

    async def login(self, user: str, password: str) -> None:
        """Log in with SASL PLAIN when CAPA offers it, else with USER/PASS."""
        check_argument("user name", user)
        check_argument("password", password)
        self._require_secure()
        mechanisms = [m.upper() for m in self.capabilities.get("SASL", [])]
        if "PLAIN" in mechanisms:
            await self._auth_plain(user, password)
        else:
            await self._expect(f"USER {user}", "USER", login=True)
            await self._login_step(f"PASS {password}", "PASS", redacted="PASS ****")
        await self._after_login()

    async def apop(self, user: str, password: str) -> None:
        """Log in with APOP, using the timestamp from the server's greeting."""
        check_argument("user name", user)
        check_argument("password", password)
        self._require_secure()
        stamp = greeting_timestamp(self.greeting)
        if stamp is None:
            raise Pop3CommandError(
                f"The POP3 server {self.where} does not offer APOP",
                cause="Its greeting carries no <timestamp>, which APOP needs.",
                fix="Use the normal login (USER/PASS or SASL) for this account.",
                reply=f"+OK {self.greeting}",
            )
        digest = apop_digest(stamp, password)
        await self._login_step(f"APOP {user} {digest}", "APOP", redacted=f"APOP {user} ****")
        await self._after_login()

    async def stat(self) -> tuple[int, int]:
        """(message count, mailbox size in octets)."""
        reply = await self._expect("STAT", "STAT")
        async with self._closing_on_protocol_error():
            return parse_stat(reply, self.where)

    async def list(self) -> dict[int, int]:
        """Message number -> size in octets, as the server reports it."""
        await self._expect("LIST", "LIST")
        return await self._list_lines()

    async def listing(self) -> tuple[dict[int, int], dict[int, str] | None]:
        """LIST and UIDL together, in one round trip when the server pipelines."""
        if not self.supports_pipelining or "UIDL" not in self.capabilities:
            return await self.list(), await self.uidl()
        await self._skip_unread()
        self._send("LIST", "UIDL")
        await self._drain()
        reply = await self._read_status("LIST")
        if not reply.ok:
            raise error_for("LIST", reply, self.where)
        sizes = await self._list_lines()
        return sizes, await self._uidl_answer()

    async def _list_lines(self) -> dict[int, int]:
        lines = await self._read_lines()
        sizes: dict[int, int] = {}
        async with self._closing_on_protocol_error():
            for line in lines:
                number, size = parse_list_line(line, self.where)
                if number in sizes:
                    raise self._duplicate("LIST", line)
                sizes[number] = size
        return sizes

    async def uidl(self) -> dict[int, str] | None:
        """Message number -> unique id, or None when the server has no UIDL."""
        if self.capabilities and "UIDL" not in self.capabilities:
            return None
        await self._skip_unread()
        self._send("UIDL")
        await self._drain()
        return await self._uidl_answer()

    async def _uidl_answer(self) -> dict[int, str] | None:
        reply = await self._read_status("UIDL")
        if not reply.ok:
            if reply.resp_code:
                raise error_for("UIDL", reply, self.where)
            return None
        lines = await self._read_lines()
        uids: dict[int, str] = {}
        async with self._closing_on_protocol_error():
            for line in lines:
                number, uid = parse_uidl_line(line, self.where)
                if number in uids:
                    raise self._duplicate("UIDL", line)
                uids[number] = uid
        return uids

    async def retr_to(self, number: int, out: BinaryIO | DataSink) -> int:
        """Stream message *number* into *out*, one line at a time; returns bytes written.

        On any failure part of the message may already be in *out*; the caller
        must discard it.
        """
        await self._expect(f"RETR {_msg(number)}", "RETR")
        return await self._read_multiline(out)

    async def retr_many(
        self,
        numbers: Sequence[int],
        open_out: Callable[[int], contextlib.AbstractContextManager[DataSink]],
        *,
        window: int = 32,
    ) -> AsyncGenerator[tuple[int, int], None]:
        """RETR each message in turn, yielding ``(number, bytes written)`` as each is complete.

        With RFC 2449 PIPELINING up to ``window`` RETR commands are on the wire at
        once, so a distant server's round trip is paid once per window instead of
        once per message; without it, one at a time.  ``open_out(number)`` gives
        the file each message streams into (closed here).  A consumer that stops
        early must close the generator (``contextlib.aclosing``); replies still
        on the wire are read and dropped before the next command.
        """
        window = max(1, window) if self.supports_pipelining else 1
        queued: collections.deque[int] = collections.deque()
        upcoming = iter(numbers)

        def fill() -> None:
            """Top the window up once it is half empty: several RETRs in one write, not one each."""
            if len(queued) > window // 2:
                return
            commands = []
            while len(queued) < window:
                number = next(upcoming, None)
                if number is None:
                    break
                commands.append(f"RETR {_msg(number)}")
                queued.append(number)
            if commands:
                self._send(*commands)

        try:
            fill()
            await self._drain()
            while queued:
                number = queued.popleft()
                if window > 1:  # pipelined: top the window up while this message is read
                    fill()
                    await self._drain()
                reply = await self._read_status("RETR")
                if not reply.ok:
                    raise error_for("RETR", reply, self.where)
                with open_out(number) as out:
                    size = await self._read_multiline(out)
                if window == 1:  # one command at a time: the next RETR only once this reply is read
                    fill()
                    await self._drain()
                yield number, size
        finally:
            self._unread_retr += len(queued)

    async def dele_many(self, numbers: Sequence[int], *, then_quit: bool = False) -> None:
        """DELE several messages (and QUIT, which commits them), all on the wire at once
        when the server pipelines."""
        if not self.supports_pipelining:
            for number in numbers:
                await self.dele(number)
            if then_quit:
                await self.quit()
            return
        await self._skip_unread()
        self._send(*[f"DELE {_msg(number)}" for number in numbers], *(["QUIT"] if then_quit else []))
        await self._drain()
        failure: Pop3Error | None = None
        for _ in numbers:
            reply = await self._read_status("DELE")
            if not reply.ok and failure is None:
                failure = error_for("DELE", reply, self.where)
        if then_quit:
            await self._quit_answer()
        if failure is not None:
            raise failure

    async def _skip_unread(self) -> None:
        """Read and drop the replies of RETRs sent ahead but no longer wanted."""
        while self._unread_retr:
            self._unread_retr -= 1
            reply = await self._read_status("RETR")
            if reply.ok:
                await self._read_multiline(_Discard())

    async def top(self, number: int, lines: int) -> bytes:
        """Headers plus the first *lines* body lines of message *number*."""
        if lines < 0:
            raise ValueError("TOP line count must be >= 0")
        await self._expect(f"TOP {_msg(number)} {lines}", "TOP")
        chunks: list[bytes] = []

        class _Collect:
            def write(self, data: bytes, /) -> int:
                chunks.append(data)
                return len(data)

        await self._read_multiline(_Collect())
        return b"".join(chunks)

    async def dele(self, number: int) -> None:
        """Mark a message deleted; it only goes away on a successful QUIT."""
        await self._expect(f"DELE {_msg(number)}", "DELE")

    async def rset(self) -> None:
        """Unmark every message marked deleted in this session."""
        await self._expect("RSET", "RSET")

    async def noop(self) -> None:
        """Ask the server for a +OK, to check the session is alive."""
        await self._expect("NOOP", "NOOP")

    async def quit(self) -> None:
        """Send QUIT, which commits DELEs, and close; raise unless the server said +OK."""
        if self._quit_done and self._writer is None:
            return
        await self._quit_answer(send=True)

    async def _quit_answer(self, *, send: bool = False) -> None:
        """(Send QUIT and) read its reply and close; raise unless the server committed the session."""
        try:
            if send:
                await self._skip_unread()
                self._send("QUIT")
                await self._drain()
            reply = await self._read_status("QUIT")
        except Pop3ConnectionError as exc:
            exc.cause = (
                exc.cause + " Messages marked for deletion may not have been deleted;"
                " they are downloaded again only if not yet recorded as delivered."
            ).strip()
            raise
        finally:
            self._quit_done = True
            await self.close()
        if not reply.ok:
            err = error_for("QUIT", reply, self.where)
            err.cause = "The server could not finish the session; messages marked for"
            err.cause += " deletion may still be on the server."
            raise err

    async def close(self) -> None:
        """Drop the connection without QUIT, so the server rolls back DELEs."""
        writer, self._writer, self._reader = self._writer, None, None
        self._head.clear()
        if writer is None:
            return
        self.transcript.append("-- connection closed")
        writer.transport.abort()
        try:
            await asyncio.wait_for(writer.wait_closed(), 5)
        except (OSError, TimeoutError, ssl.SSLError):
            pass

    # ------------------------------------------------------- send / receive

    def _send(self, *commands: str, redacted: str | None = None) -> None:
        """Queue command lines in one write; pair each with a _read_status() to get its reply."""
        writer = self._live_writer()
        if redacted is not None:
            self.transcript.append(f"C: {redacted}")
        else:
            self.transcript.extend(f"C: {command}" for command in commands)
        writer.write(b"".join(command.encode("utf-8") + b"\r\n" for command in commands))

    async def _drain(self) -> None:
        writer = self._live_writer()
        try:
            await self._timed(writer.drain(), "sending a command")
        except Pop3Error:
            raise
        except OSError as exc:
            await self.close()
            raise self._dropped(exc) from exc

    async def _read_line(self, what: str) -> bytes:
        """One line, bounded by max_line and the timeout; a failure closes the connection."""
        return await self._timed(self._read_line_untimed(what), what)

    async def _read_line_untimed(self, what: str, *, split_long: bool = False) -> bytes:
        """One line, bounded by max_line; the caller owns the timeout.

        With ``split_long`` (message data) a longer line comes back in pieces
        of at most max_line bytes, the last one ending in LF: a message with
        one enormous line is still mail.  Status and listing lines stay bounded.
        """
        reader = self._reader
        if reader is None:
            raise self._not_connected()
        prefix = b""
        if self._head:
            end = self._head.find(b"\n")
            if end >= 0 and end < self.max_line:
                line = bytes(self._head[:end + 1])
                del self._head[:end + 1]
                return line
            prefix = bytes(self._head)
            self._head.clear()
        try:
            try:
                line = prefix + await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                if not split_long:
                    raise
                line = await reader.readexactly(max(1, min(exc.consumed, self.max_line)))
        except asyncio.IncompleteReadError as exc:
            await self.close()
            raise self._dropped(None, partial=exc.partial) from exc
        except asyncio.LimitOverrunError as exc:
            await self.close()
            raise Pop3ProtocolError(
                f"The POP3 server {self.where} sent a reply line longer than {self.max_line} bytes"
                f" while {what}",
                cause="Status and listing lines are short in POP3; the server is misbehaving.",
                fix="Check the server with another POP3 client; report it to the provider.",
            ) from exc
        except Pop3Error:
            raise  # a timeout, already explained (TimeoutError is an OSError too)
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise self._dropped(exc) from exc
        return line

    async def _read_status(self, command: str) -> Reply:
        """Read and parse one status line; a malformed one closes the connection."""
        line = await self._read_line(f"waiting for the reply to {command}")
        self.transcript.append("S: " + _printable(line))
        try:
            return parse_status(line, self.where)
        except Pop3ProtocolError:
            await self.close()
            raise

    async def _read_multiline(self, out: BinaryIO | DataSink) -> int:
        """Stream dot-unstuffed, CRLF-normalised message data to *out* until the "." line.

        Data is read in large blocks and every complete line in a block is
        handled at once (a loop per line costs more than the rest of the
        connector together); bytes past the "." line are kept for the next
        reply.  Lines may be of any length: a line longer than max_line is
        passed on in pieces.  One deadline, moved forward as data arrives,
        bounds the silence.
        """
        what = "reading message data"
        pending, self._head = self._head, bytearray()  # bytearray drops a prefix without copying the rest
        written = 0
        at_line_start = True  # False while a line longer than max_line is passed on in pieces
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                while True:
                    last_lf = pending.rfind(b"\n")
                    if last_lf >= 0:
                        stop, end_len = _find_end(pending, at_line_start)  # an end is always before last_lf
                        if stop >= 0:
                            data = _data_lines(bytes(pending[:stop]), at_line_start)
                            del pending[:stop + end_len]
                            self._head = pending
                            out.write(data)
                            written += len(data)
                            break
                        block = bytes(pending[:last_lf + 1])
                        del pending[:last_lf + 1]
                        data = _data_lines(block, at_line_start)
                        at_line_start = True
                    elif len(pending) > self.max_line and not (at_line_start and bytes(pending[:3]) in (b".", b".\r")):
                        keep = 1 if pending.endswith(b"\r") else 0  # its LF may be in the next block
                        piece = bytes(pending[:len(pending) - keep])
                        del pending[:len(pending) - keep]
                        data = piece[1:] if at_line_start and piece.startswith(b".") else piece
                        at_line_start = False
                    else:
                        data = b""
                    if data:
                        out.write(data)
                        written += len(data)
                    if last_lf < 0 or not pending.endswith(b"\n"):
                        chunk = await self._read_chunk(what)
                        deadline.reschedule(loop.time() + self.timeout)
                        pending += chunk
        except TimeoutError as exc:
            if isinstance(exc, Pop3Error):
                raise
            raise await self._timeout_error(what) from exc
        self.transcript.append(f"S: [{written} bytes of message data]")
        self.transcript.append("S: .")
        return written

    async def _read_chunk(self, what: str) -> bytes:
        """Whatever the server sent next (up to 256 KiB); the caller owns the timeout."""
        reader = self._reader
        if reader is None:
            raise self._not_connected()
        try:
            chunk = await reader.read(256 * 1024)
        except Pop3Error:
            raise
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise self._dropped(exc) from exc
        if not chunk:
            await self.close()
            raise self._dropped(None)
        return chunk

    async def _read_lines(self) -> _Lines:
        """The lines of a short multi-line answer (LIST, UIDL, CAPA).

        One deadline for the whole answer, moved forward with every line, so a
        long listing costs no more than its lines.
        """
        what = "reading a listing"
        lines: _Lines = []
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                while True:
                    line = await self._read_line_untimed(what)
                    deadline.reschedule(loop.time() + self.timeout)
                    data = unstuff(line)
                    if data is None:
                        self.transcript.append("S: .")
                        return lines
                    self.transcript.append("S: " + _printable(data))
                    lines.append(data)
        except TimeoutError as exc:
            if isinstance(exc, Pop3Error):
                raise
            raise await self._timeout_error(what) from exc

    async def _command(
        self, command: str, name: str, *, redacted: str | None = None
    ) -> Reply:
        await self._skip_unread()
        self._send(command, redacted=redacted)
        await self._drain()
        return await self._read_status(name)

    async def _expect(
        self,
        command: str,
        name: str,
        *,
        login: bool = False,
        redacted: str | None = None,
    ) -> Reply:
        """Send a command and return its +OK reply; -ERR becomes the matching error."""
        reply = await self._command(command, name, redacted=redacted)
        if not reply.ok:
            raise error_for(name, reply, self.where, login=login)
        return reply

    async def _timed(self, awaitable: Awaitable[_T], what: str) -> _T:
        """Await with the session timeout; a timeout closes the (now out of step) connection.

        ``asyncio.timeout`` runs the awaitable in the current task; ``wait_for``
        would start a task for every reply line.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except TimeoutError as exc:
            if isinstance(exc, Pop3Error):
                raise
            raise await self._timeout_error(what) from exc

    async def _timeout_error(self, what: str) -> Pop3TimeoutError:
        await self.close()
        return Pop3TimeoutError(
            f"The POP3 server {self.where} did not answer within {self.timeout:g} s"
            f" while {what}",
            cause="The server or the network stalled; the connection was closed"
            " because the conversation is now out of step.",
            fix="Nothing to do if it happens rarely; the download is retried later."
            " If it keeps happening, raise the timeout or check the network.",
        )

    # ------------------------------------------------------------- helpers

    @contextlib.asynccontextmanager
    async def _closing_on_protocol_error(self) -> AsyncIterator[None]:
        """A server that sends invalid POP3 is not trusted with more commands."""
        try:
            yield
        except Pop3ProtocolError:
            await self.close()
            raise

    async def _capa(self) -> _Caps:
        await self._skip_unread()
        self._send("CAPA")
        await self._drain()
        return await self._capa_answer()

    async def _capa_answer(self) -> _Caps:
        reply = await self._read_status("CAPA")
        if not reply.ok:
            return {}
        return parse_capa_lines(await self._read_lines())

    async def _starttls(self) -> None:
        """RFC 2595 STLS; anything short of a verified TLS session is an error."""
        if "STLS" not in self.capabilities:
            raise Pop3TlsError(
                f"The POP3 server {self.where} does not offer STLS",
                cause="The account is set to security = starttls, but the server did not"
                " announce STLS, so the password would travel unencrypted.",
                fix='Use security = "tls" (usually port 995) if the provider offers it;'
                " never fall back to plaintext on an untrusted network.",
            )
        reply = await self._command("STLS", "STLS")
        if not reply.ok:
            raise Pop3TlsError(
                f"The POP3 server {self.where} refused STLS: {reply.line}",
                cause="The server would not start TLS, so the password would travel unencrypted.",
                fix='Use security = "tls" (usually port 995) if the provider offers it.',
                reply=reply.line,
                resp_code=reply.resp_code,
            )
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        # Bytes already buffered were sent before TLS but would be read as if
        # protected by it (STARTTLS response injection): refuse them.
        if len(getattr(reader, "_buffer", b"")):
            raise Pop3TlsError(
                f"The POP3 server {self.where} sent unexpected data right after STLS",
                cause="Data arrived before TLS started; someone on the network may be"
                " tampering with the connection.",
                fix='Use security = "tls" (port 995), or check the network.',
            )
        try:
            await asyncio.wait_for(
                writer.start_tls(
                    self._tls_context(),
                    server_hostname=self.host,
                    ssl_handshake_timeout=self.timeout,
                ),
                self.timeout,
            )
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from exc
        except TimeoutError as exc:
            raise Pop3TlsError(
                f"The TLS handshake with {self.where} timed out",
                cause="The server accepted STLS but did not complete TLS.",
                fix="Retry later; if it persists, contact the provider.",
            ) from exc
        except OSError as exc:
            raise self._dropped(exc) from exc
        self.transcript.append("-- TLS started")

    async def _auth_plain(self, user: str, password: str) -> None:
        """RFC 5034 AUTH PLAIN, with the initial response when it fits in one line."""
        token = base64.b64encode(
            b"\0" + user.encode() + b"\0" + password.encode()
        ).decode()
        command = f"AUTH PLAIN {token}"
        if len(command) + 2 <= MAX_COMMAND_LINE:
            await self._login_step(command, "AUTH", redacted="AUTH PLAIN ****")
            return
        reply_line = await self._command_raw("AUTH PLAIN")
        if not reply_line.startswith(b"+ ") and reply_line.rstrip(b"\r\n") != b"+":
            reply = parse_status(reply_line, self.where)
            if reply.ok:
                raise Pop3ProtocolError(
                    f"The POP3 server {self.where} accepted AUTH PLAIN without credentials",
                    reply=reply.line,
                )
            raise error_for("AUTH", reply, self.where, login=True)
        await self._login_step(token, "AUTH", redacted="****")

    async def _command_raw(self, command: str) -> bytes:
        """Send a command and return its raw reply line (for SASL '+ ' continuations)."""
        self._send(command)
        await self._drain()
        line = await self._read_line("waiting for the reply to AUTH")
        self.transcript.append("S: " + _printable(line))
        return line

    async def _login_step(self, command: str, name: str, *, redacted: str) -> None:
        """The command that logs in, or -ERR as the matching login error.

        It always goes out alone, as the last command of a pipelined group
        (like SMTP's state-changing commands, RFC 2920): some servers (Courier
        among them) hand the connection to a mailbox process after a
        successful login and lose whatever the client sent with it, even
        though they announce PIPELINING.
        """
        await self._skip_unread()
        self._send(command, redacted=redacted)
        await self._drain()
        reply = await self._read_status(name)
        if not reply.ok:
            raise error_for(name, reply, self.where, login=True)

    async def _after_login(self) -> None:
        """Ask CAPA again: RFC 2449 lets a server announce more once logged in."""
        if self.capabilities:
            caps = await self._capa()
            if caps:
                self.capabilities = caps

    def _require_secure(self) -> None:
        if self._writer is None:
            raise self._not_connected()
        if not self.encrypted and self.security != "none":
            raise Pop3InsecureError(
                f"Refusing to send the password to {self.where} without encryption",
                cause=f"The account uses security = {self.security}, but the connection"
                " is not encrypted.",
                fix='Keep TLS on. Only if you trust the whole network, set security = "none".',
            )

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is not None:
            return self._ssl_context
        ctx = ssl.create_default_context()
        if not self.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _tls_error(self, exc: ssl.SSLError) -> Pop3TlsError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or str(exc)
            low = reason.lower()
            if "mismatch" in low:
                cause = (
                    f"The certificate does not name the host {self.host!r} ({reason})."
                )
                fix = "Use the host name the provider documents (the one in its certificate)."
            elif "expired" in low or "not yet valid" in low:
                cause = f"The certificate of {self.host} is out of date ({reason})."
                fix = (
                    "Check this computer's date and time; otherwise the provider must renew"
                    " its certificate."
                )
            else:
                cause = (
                    f"The certificate of {self.host} is not signed by an authority this"
                    f" computer trusts ({reason})."
                )
                fix = (
                    "Install the provider's CA certificate, or set verify_tls = false only"
                    " if you trust the network."
                )
            return Pop3TlsError(
                f"The TLS certificate of {self.host} (port {self.port}) did not verify: {reason}",
                cause=cause,
                fix=fix
                + " Setting verify_tls = false is safe only on a network you trust.",
            )
        return Pop3TlsError(
            f"TLS with {self.where} failed: {exc.reason or exc}",
            cause="The TLS handshake failed; the port may not speak TLS, or the server"
            " uses old, insecure TLS settings.",
            fix='Check the port (995 for security = "tls", 110 for "starttls").',
        )

    def _connect_error(self, exc: OSError) -> Pop3ConnectionError:
        if isinstance(exc, ConnectionRefusedError):
            cause = (
                "Nothing accepts connections on that port, or a firewall rejects them."
            )
        elif isinstance(exc, socket.gaierror):
            cause = f"The host name {self.host!r} could not be resolved."
        else:
            cause = f"The network reported: {exc.strerror or exc}."
        return Pop3ConnectionError(
            f"Cannot connect to the POP3 server {self.where}: {exc.strerror or exc}",
            cause=cause,
            fix="Check the host name and port (995 for TLS, 110 for plain or STLS)"
            " and the internet connection.",
        )

    def _dropped(
        self, exc: BaseException | None, *, partial: bytes = b""
    ) -> Pop3ConnectionError:
        detail = f": {exc}" if exc is not None else ""
        return Pop3ConnectionError(
            f"The POP3 server {self.where} closed the connection in the middle of a reply{detail}",
            cause="The server or the network dropped the connection."
            + (f" Last bytes received: {show(partial)}." if partial else ""),
            fix="Nothing to do if it happens rarely; the download is retried later and"
            " nothing is lost.",
        )

    def _not_connected(self) -> Pop3ConnectionError:
        return Pop3ConnectionError(
            f"Not connected to the POP3 server {self.where}",
            cause="The connection was closed earlier (after an error, QUIT or close()).",
            fix="Connect again.",
        )

    def _duplicate(self, command: str, line: bytes) -> Pop3ProtocolError:
        return Pop3ProtocolError(
            f"The POP3 server {self.where} listed a message number twice in {command}:"
            f" {show(line)}",
            cause=f"Each message may appear once in a {command} listing.",
            fix="Report this to the mail provider.",
            reply=show(line),
        )

    def _live_writer(self) -> asyncio.StreamWriter:
        if self._writer is None:
            raise self._not_connected()
        return self._writer


def _msg(number: int) -> int:
    """A message number must be a positive int, so it cannot inject text."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(
            f"POP3 message number must be a positive integer, not {number!r}"
        )
    return number


def _printable(line: bytes) -> str:
    """A server line for the transcript: decoded, without its line ending, bounded."""
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    return text if len(text) <= 500 else text[:500] + "..."


__all__ = ["SECURITY_MODES", "Pop3Client", "Pop3Error"]
