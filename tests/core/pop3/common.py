"""What the POP3 tests share: two messages, a client for the scripted server, and a wired stream."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.pop3.stream import Pop3Stream
from tests.support.scripted_pop3 import ScriptedPop3Server

MSG1 = b"Subject: one\r\n\r\nfirst body\r\n"
MSG2 = b"Subject: two\r\n\r\n..\r\n.foo\r\n.\r\nend \r with bare CR\r\n"


def client(srv: ScriptedPop3Server, **kw: object) -> Pop3Client:
    """A client for *srv*, plaintext unless the test says otherwise."""
    kw.setdefault("security", "none")
    return Pop3Client("127.0.0.1", srv.port, **kw)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def wired(
    *, timeout: float = 5.0, max_line: int = 1024
) -> AsyncIterator[tuple[Pop3Stream, asyncio.StreamReader, asyncio.StreamWriter]]:
    """A Pop3Stream on one end of a socket pair, and the server's reader and writer on the other.

    The test plays the server byte for byte, so every reply can be exactly what a
    case needs, with no POP3 server logic in between.
    """
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours, limit=max_line)
    server_reader, server_writer = await asyncio.open_connection(sock=theirs)
    stream = Pop3Stream("pop.test:110", timeout=timeout, max_line=max_line)
    stream.attach(reader, writer)
    try:
        yield stream, server_reader, server_writer
    finally:
        await stream.close()
        server_writer.close()
        with contextlib.suppress(OSError):
            await server_writer.wait_closed()
