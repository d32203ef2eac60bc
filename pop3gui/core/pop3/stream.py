"""The byte stream of one POP3 connection: command lines out, replies in.

Every read has a timeout and every status or listing line a length bound; a
broken stream closes the connection instead of guessing.  Message data
(RETR, TOP) is read in large blocks and dot-unstuffed a block at a time,
because a loop per line would cost more than the rest of the connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Awaitable
from typing import BinaryIO, Protocol, TypeVar

from pop3gui.core.connect import ServerConnection
from pop3gui.core.errors import MailboxConnectionError, MailboxError, MailboxProtocolError, MailboxTimeoutError
from pop3gui.core.pop3.replies import Reply, error_for, parse_status, show, unstuff

#: The most one read takes from the socket while message data streams in.
CHUNK_SIZE = 256 * 1024

_T = TypeVar("_T")


class DataSink(Protocol):
    """Where message data goes: a file, or anything else with ``write``."""

    def write(self, data: bytes, /) -> object: ...


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)


_BARE_LF = re.compile(rb"(?<!\r)\n")


def find_end(block: bytes | bytearray, at_line_start: bool) -> tuple[int, int]:
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


def data_lines(block: bytes, at_line_start: bool) -> bytes:
    """Whole lines of message data: every line ending CRLF, one leading dot removed per line.

    With ``at_line_start`` False the first line continues an over-long line,
    so its start is data, not a line start.
    """
    if block.count(b"\n") != block.count(b"\r\n"):
        block = _BARE_LF.sub(b"\r\n", block)
    if at_line_start and block.startswith(b"."):
        block = block[1:]
    return block.replace(b"\n.", b"\n")


def printable(line: bytes) -> str:
    """A server line for the transcript: decoded, without its line ending, bounded."""
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    return text if len(text) <= 500 else text[:500] + "..."


class Pop3Stream(ServerConnection):
    """The reader and writer of one connection, and the transcript of what went over it.

    Replies come back in the order the commands went out; replies nobody
    wants any more (RETRs sent ahead of a download that stopped early) are
    read and dropped before the next command goes out.
    """

    def __init__(self, where: str, *, timeout: float, max_line: int) -> None:
        super().__init__(where, timeout=timeout, max_line=max_line)
        # RETR replies still on the wire after a pipelined download stopped early.
        self._unread_retr = 0
        # Bytes read past the end of a message (the start of the next reply), read before the socket.
        self._head = bytearray()

    def unread_bytes(self) -> int:
        """How many received bytes no reply has consumed yet."""
        return len(self._head) + self.buffered_bytes()

    async def close(self) -> None:
        """Drop the connection at once, without a word to the server."""
        self._head.clear()
        self._unread_retr = 0  # their replies went with the connection
        await super().close()

    # ------------------------------------------------------------- commands

    def write(self, *commands: str, redacted: str | None = None) -> None:
        """Queue command lines in one write; pair each with a read_status() to get its reply."""
        writer = self.live_writer()
        if redacted is not None:
            self.transcript.append(f"C: {redacted}")
        else:
            self.transcript.extend(f"C: {command}" for command in commands)
        writer.write(b"".join(command.encode("utf-8") + b"\r\n" for command in commands))

    async def drain(self) -> None:
        """Wait until the queued commands are on their way."""
        writer = self.live_writer()
        try:
            await self.timed(writer.drain(), "sending a command")
        except MailboxError:
            raise
        except OSError as exc:
            await self.close()
            raise self.dropped(exc) from exc

    async def send(self, *commands: str, redacted: str | None = None) -> None:
        """Send command lines, once the replies nobody wants are out of the way."""
        await self.skip_unread()
        self.write(*commands, redacted=redacted)
        await self.drain()

    async def command(self, command: str, name: str, *, redacted: str | None = None) -> Reply:
        """Send one command and read its status line, +OK or -ERR."""
        await self.send(command, redacted=redacted)
        return await self.read_status(name)

    async def expect(
        self, command: str, name: str, *, login: bool = False, redacted: str | None = None
    ) -> Reply:
        """Send a command and return its +OK reply; -ERR becomes the matching error."""
        reply = await self.command(command, name, redacted=redacted)
        if not reply.ok:
            raise error_for(name, reply, self.where, login=login)
        return reply

    def drop_retr_replies(self, count: int) -> None:
        """*count* RETRs already sent will not be read: their replies are dropped later."""
        self._unread_retr += count

    async def skip_unread(self) -> None:
        """Read and drop the replies of RETRs sent ahead but no longer wanted."""
        while self._unread_retr:
            self._unread_retr -= 1
            reply = await self.read_status("RETR")
            if reply.ok:
                await self.read_multiline(_Discard())

    # ------------------------------------------------------------- timeouts

    async def timed(self, awaitable: Awaitable[_T], what: str) -> _T:
        """Await with the session timeout; a timeout closes the (now out of step) connection.

        ``asyncio.timeout`` runs the awaitable in the current task; ``wait_for``
        would start a task for every reply line.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except TimeoutError as exc:
            if isinstance(exc, MailboxError):
                raise
            raise await self._timeout_error(what) from exc

    async def _timeout_error(self, what: str) -> MailboxTimeoutError:
        await self.close()
        return MailboxTimeoutError(
            f"The POP3 server {self.where} did not answer within {self.timeout:g} s"
            f" while {what}",
            cause="The server or the network stalled; the connection was closed"
            " because the conversation is now out of step.",
            fix="Nothing to do if it happens rarely; the download is retried later."
            " If it keeps happening, raise the timeout or check the network.",
        )

    # ---------------------------------------------------------------- lines

    async def read_line(self, what: str) -> bytes:
        """One line, bounded by max_line and the timeout; a failure closes the connection."""
        return await self.timed(self._read_line_untimed(what), what)

    async def _read_line_untimed(self, what: str) -> bytes:
        """One status or listing line, bounded by max_line; the caller owns the timeout.

        Message data is not read here: its lines may be of any length
        (read_multiline).
        """
        reader = self._reader
        if reader is None:
            raise self.not_connected()
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
            line = prefix + await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            await self.close()
            raise self.dropped(None, partial=exc.partial) from exc
        except asyncio.LimitOverrunError as exc:
            await self.close()
            raise MailboxProtocolError(
                f"The POP3 server {self.where} sent a reply line longer than {self.max_line} bytes"
                f" while {what}",
                cause="Status and listing lines are short in POP3; the server is misbehaving.",
                fix="Check the server with another POP3 client; report it to the provider.",
            ) from exc
        except MailboxError:
            raise  # a timeout, already explained (TimeoutError is an OSError too)
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise self.dropped(exc) from exc
        return line

    async def read_status(self, command: str) -> Reply:
        """Read and parse one status line; a malformed one closes the connection."""
        line = await self.read_line(f"waiting for the reply to {command}")
        self.transcript.append("S: " + printable(line))
        try:
            return parse_status(line, self.where)
        except MailboxProtocolError:
            await self.close()
            raise

    @contextlib.asynccontextmanager
    async def closing_on_protocol_error(self) -> AsyncIterator[None]:
        """A server that sends invalid POP3 is not trusted with more commands."""
        try:
            yield
        except MailboxProtocolError:
            await self.close()
            raise

    # ----------------------------------------------------- multi-line answers

    async def read_multiline(self, out: BinaryIO | DataSink) -> int:
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
                        stop, end_len = find_end(pending, at_line_start)  # an end is always before last_lf
                        if stop >= 0:
                            data = data_lines(bytes(pending[:stop]), at_line_start)
                            del pending[:stop + end_len]
                            self._head = pending
                            out.write(data)
                            written += len(data)
                            break
                        block = bytes(pending[:last_lf + 1])
                        del pending[:last_lf + 1]
                        data = data_lines(block, at_line_start)
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
                        chunk = await self._read_chunk()
                        deadline.reschedule(loop.time() + self.timeout)
                        pending += chunk
        except TimeoutError as exc:
            if isinstance(exc, MailboxError):
                raise
            raise await self._timeout_error(what) from exc
        self.transcript.append(f"S: [{written} bytes of message data]")
        self.transcript.append("S: .")
        return written

    async def _read_chunk(self) -> bytes:
        """Whatever the server sent next (up to CHUNK_SIZE); the caller owns the timeout."""
        reader = self._reader
        if reader is None:
            raise self.not_connected()
        try:
            chunk = await reader.read(CHUNK_SIZE)
        except MailboxError:
            raise
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise self.dropped(exc) from exc
        if not chunk:
            await self.close()
            raise self.dropped(None)
        return chunk

    async def read_lines(self) -> list[bytes]:
        """The lines of a short multi-line answer (LIST, UIDL, CAPA).

        One deadline for the whole answer, moved forward with every line, so a
        long listing costs no more than its lines.
        """
        what = "reading a listing"
        lines: list[bytes] = []
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
                    self.transcript.append("S: " + printable(data))
                    lines.append(data)
        except TimeoutError as exc:
            if isinstance(exc, MailboxError):
                raise
            raise await self._timeout_error(what) from exc

    # ---------------------------------------------------------------- errors

    def dropped(self, exc: BaseException | None, *, partial: bytes = b"") -> MailboxConnectionError:
        """The error for a connection that ended in the middle of a reply."""
        detail = f": {exc}" if exc is not None else ""
        return MailboxConnectionError(
            f"The POP3 server {self.where} closed the connection in the middle of a reply{detail}",
            cause="The server or the network dropped the connection."
            + (f" Last bytes received: {show(partial)}." if partial else ""),
            fix="Nothing to do if it happens rarely; the download is retried later and"
            " nothing is lost.",
        )
