"""What the IMAP tests share: messages, a client for the scripted server, sinks, and a wired stream."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from collections.abc import AsyncIterator, Iterator

import pytest

from pop3gui.core.errors import MailboxError
from pop3gui.core.imap.client import ImapClient
from pop3gui.core.imap.stream import ImapStream
from tests.support.scripted_imap import ScriptedImapServer

MSG1 = b"Subject: one\r\n\r\nfirst body\r\n"
MSG2 = b"Subject: two\r\n\r\n..\r\n.foo\r\n.\r\n) UID 9)\r\n* 1 FETCH {5}\r\nend \r with bare CR\n"
#: A message no line-bounded reader could hold: a 70,000-octet line, NULs, 8-bit bytes, bare CR and LF.
BIG = (b"Subject: big\r\n\r\n" + b"x" * 70_000 + b"\r\n\0\0\xff\xfe\r\n" + bytes(range(256)) + b"\rlone CR\nbare LF"
       + b"\r\n" + b"y" * 200_000)


_clients: list[ImapClient] = []


def client(srv: ScriptedImapServer, **kw: object) -> ImapClient:
    """A client for *srv*, plaintext and quick to give up unless the test says otherwise."""
    kw.setdefault("security", "none")
    kw.setdefault("timeout", 5.0)
    imap = ImapClient("127.0.0.1", srv.port, **kw)  # type: ignore[arg-type]
    _clients.append(imap)
    return imap


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    """Every client a test made is closed after it (a test module imports this fixture)."""
    yield
    while _clients:
        await _clients.pop().close()


async def ready(srv: ScriptedImapServer, folder: str = "INBOX", **kw: object) -> ImapClient:
    """A client connected, logged in and with *folder* selected and listed (sizes)."""
    imap = client(srv, **kw)
    await imap.connect()
    await imap.login("user", "pass")
    await imap.select(folder)
    await imap.sizes()
    return imap


class Sinks:
    """``open_sink`` for fetch_many: one BytesIO per UID; records which sinks were closed, and how."""

    def __init__(self) -> None:
        self.data: dict[int, bytes] = {}
        self.complete: list[int] = []
        self.failed: list[int] = []

    @contextlib.contextmanager
    def __call__(self, uid: int) -> Iterator[io.BytesIO]:
        out = io.BytesIO()
        try:
            yield out
        except BaseException:
            self.failed.append(uid)
            raise
        finally:
            self.data[uid] = out.getvalue()
        self.complete.append(uid)


def explained(err: MailboxError) -> None:
    """Every error says what happened, why and what to do."""
    assert err.message and err.cause and err.fix, err


@contextlib.asynccontextmanager
async def wired(*, timeout: float = 5.0,
                max_line: int = 1024) -> AsyncIterator[tuple[ImapStream, asyncio.StreamReader, asyncio.StreamWriter]]:
    """An ImapStream on one end of a socket pair, the server's reader and writer on the other.

    The test plays the server byte for byte.
    """
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours, limit=max_line)
    server_reader, server_writer = await asyncio.open_connection(sock=theirs)
    stream = ImapStream("imap.test:143", timeout=timeout, max_line=max_line)
    stream.attach(reader, writer)
    try:
        yield stream, server_reader, server_writer
    finally:
        await stream.close()
        server_writer.close()
        with contextlib.suppress(OSError):
            await server_writer.wait_closed()
