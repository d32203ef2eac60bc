"""The byte stream of one IMAP connection: command lines out, whole responses (with literals) in.

Every read has a timeout; every response line and every literal that is not a
message body is bounded by ``max_line``.  A message body literal (``BODY[]
{n}``) goes straight to the sink the caller names, bounded by ``max_body``,
so a large message never sits in memory twice.  A broken stream closes the
connection instead of guessing.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Protocol

from pop3gui.core.connect import IMAP, ServerConnection
from pop3gui.core.errors import MailboxConnectionError, MailboxError, MailboxProtocolError, MailboxTimeoutError
from pop3gui.core.imap.parse import LITERAL_AT_END, LiteralBody, Response, parse_response, protocol_error

#: The most one read takes from the socket while a message body streams in.
CHUNK_SIZE = 256 * 1024

#: The most literals one response may carry (a FETCH has one body; LIST one name).
MAX_LITERALS = 64


class DataSink(Protocol):
    """Where a message body goes: a spool writer, a file, anything with ``write``."""

    def write(self, data: bytes, /) -> object: ...


#: Given the response text so far (ending in a literal's announcement), where that literal goes;
#: None keeps it in memory (bounded by max_line).
BodySink = Callable[[bytes], DataSink | None]


def printable(line: bytes) -> str:
    """A server line for the transcript: decoded, without its line ending, bounded."""
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    return text if len(text) <= 500 else text[:500] + "..."


class ImapStream(ServerConnection):
    """The reader and writer of one connection, and the transcript of what went over it."""

    service = IMAP
    ending = "LOGOUT"

    def __init__(self, where: str, *, timeout: float, max_line: int) -> None:
        super().__init__(where, timeout=timeout, max_line=max_line)
        self.bye = ""  # what the server said with * BYE, if it did

    def attach(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().attach(reader, writer)
        self.bye = ""

    def unread_bytes(self) -> int:
        """How many received bytes no response has consumed yet."""
        return self.buffered_bytes()

    # ------------------------------------------------------------- sending

    async def send(self, line: str, *, redacted: str | None = None) -> None:
        """Send one command line (CRLF added) and wait until it is on its way."""
        writer = self.live_writer()
        self.transcript.append(f"C: {redacted if redacted is not None else line}")
        writer.write(line.encode("utf-8") + b"\r\n")
        try:
            async with asyncio.timeout(self.timeout):
                await writer.drain()
        except TimeoutError as exc:
            if isinstance(exc, MailboxError):
                raise
            raise await self.timeout_error("sending a command") from exc
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise self.dropped(exc) from exc

    # ------------------------------------------------------------- reading

    async def read_response(self, what: str, *, body_sink: BodySink | None = None, max_body: int = 0,
                            first_timeout: float | None | bool = True) -> Response:
        """One whole response; message bodies go to *body_sink*, other literals stay in memory.

        The first line may be waited for without a limit (``first_timeout=None``,
        for IDLE); once it has come, the rest is bounded by the timeout as usual.
        """
        loop = asyncio.get_running_loop()
        first_deadline = None if first_timeout is None else loop.time() + (
            self.timeout if first_timeout is True else float(first_timeout))
        try:
            async with asyncio.timeout_at(first_deadline) as deadline:
                pieces: list[bytes] = []
                literals: list[bytes | LiteralBody] = []
                while True:
                    line = await self._read_line(what)
                    deadline.reschedule(loop.time() + self.timeout)
                    self.transcript.append("S: " + printable(line))
                    pieces.append(line)
                    match = LITERAL_AT_END.search(line)
                    if match is None or not line.endswith(b"\n"):
                        break
                    if len(literals) >= MAX_LITERALS:
                        raise await self._broken(protocol_error(self.where, "too many literals in one response"))
                    size = int(match.group(1))
                    sink = body_sink(b"".join(pieces)) if body_sink is not None else None
                    if sink is None:
                        if size > self.max_line:
                            raise await self._broken(protocol_error(
                                self.where, f"a literal of {size} bytes where a short one belongs", line))
                        literals.append(await self._read_exactly(size, deadline))
                        self.transcript.append(f"S: [{size} bytes]")
                    else:
                        if size > max_body:
                            raise await self._broken(MailboxProtocolError(
                                f"The IMAP server {self.where} announced a message of {size} bytes, more than "
                                f"the {max_body} bytes a message may have here",
                                cause="The server's message sizes and its message data disagree; it is "
                                "misbehaving or the connection is being tampered with.",
                                fix="The message stays on the server. Check it with another mail client and "
                                "report it to the provider; raise delivery.max_message_kb only if the message "
                                "is really that large."))
                        await self._stream_to(sink, size, deadline)
                        literals.append(LiteralBody(size))
                        self.transcript.append(f"S: [{size} bytes of message data]")
        except TimeoutError as exc:
            if isinstance(exc, MailboxError):
                raise
            raise await self.timeout_error(what) from exc
        except BaseException:
            await self.close()  # a sink that failed, a read cancelled: the rest of the response is still unread
            raise
        try:
            response = parse_response(pieces, literals, self.where)
        except MailboxProtocolError:
            await self.close()
            raise
        if response.kind == "BYE" and response.tag == "*":
            self.bye = response.text
        return response

    async def _broken(self, error: MailboxError) -> MailboxError:
        await self.close()
        return error

    async def _read_line(self, what: str) -> bytes:
        reader = self._reader
        if reader is None:
            raise self.not_connected()
        try:
            return await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            await self.close()
            raise self.dropped(None, partial=exc.partial) from exc
        except asyncio.LimitOverrunError as exc:
            await self.close()
            raise MailboxProtocolError(
                f"The IMAP server {self.where} sent a response line longer than {self.max_line} bytes while {what}",
                cause="IMAP response lines are short (long data comes as literals); the server is misbehaving.",
                fix="Nothing is lost: the messages stay on the server. Check it with another mail client and "
                "report it to the provider.",
            ) from exc
        except MailboxError:
            raise
        except (OSError, ssl.SSLError) as exc:
            await self.close()
            raise self.dropped(exc) from exc

    async def _read_exactly(self, size: int, deadline: asyncio.Timeout) -> bytes:
        chunks = bytearray()
        await self._stream_to(chunks, size, deadline)
        return bytes(chunks)

    async def _stream_to(self, sink: DataSink | bytearray, size: int, deadline: asyncio.Timeout) -> None:
        """Exactly *size* bytes to *sink*, in large reads; the deadline moves as data arrives."""
        reader = self._reader
        if reader is None:
            raise self.not_connected()
        loop = asyncio.get_running_loop()
        left = size
        while left:
            try:
                chunk = await reader.read(min(left, CHUNK_SIZE))
            except MailboxError:
                raise
            except (OSError, ssl.SSLError) as exc:
                await self.close()
                raise self.dropped(exc) from exc
            if not chunk:
                await self.close()
                raise self.dropped(None)
            deadline.reschedule(loop.time() + self.timeout)
            if isinstance(sink, bytearray):
                sink += chunk
            else:
                sink.write(chunk)
            left -= len(chunk)

    # ---------------------------------------------------------------- errors

    async def timeout_error(self, what: str) -> MailboxTimeoutError:
        await self.close()
        return MailboxTimeoutError(
            f"The IMAP server {self.where} did not answer within {self.timeout:g} s while {what}",
            cause="The server or the network stalled; the connection was closed because the conversation is "
            "now out of step.",
            fix="Nothing to do if it happens rarely; the download is retried later. If it keeps happening, raise "
            "the account's timeout_s or check the network.",
        )

    def dropped(self, exc: BaseException | None, *, partial: bytes = b"") -> MailboxConnectionError:
        detail = f": {exc}" if exc is not None else ""
        said = f" It said: {self.bye!r}." if self.bye else ""
        return MailboxConnectionError(
            f"The IMAP server {self.where} closed the connection{detail}",
            cause="The server or the network dropped the connection." + said
            + (f" Last bytes received: {printable(partial)!r}." if partial else ""),
            fix="Nothing to do if it happens rarely: nothing is lost, and the download is retried later.",
        )
