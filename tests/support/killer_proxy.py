"""A loopback TCP proxy that records traffic and can SIGKILL the client at an exact protocol step.

It runs its own asyncio loop in a background thread, so a synchronous test can
start ``python -m pop3gui run --once`` with :mod:`subprocess`, hand the proxy
the child's pid, and wait for it.  Every byte in both directions is recorded
(``client_bytes`` / ``server_bytes``, all connections together; ``sessions``
keeps them per connection).  A *trigger* decides, chunk by chunk,
when to kill:

:class:`Pop3QuitTrigger`
    The client sends ``QUIT``: the client is killed *before* the command is
    forwarded, so the POP3 server never commits the DELEs (a kill between DELE
    and QUIT).
:class:`SmtpDataAcceptedTrigger`
    The server's final reply to DATA is ``250``: the client is killed before
    the reply reaches it - the message is accepted by the server but the
    connector never gets to write the journal (a kill between SMTP acceptance
    and the journal write).
:class:`ImapCommandTrigger`
    The client sends an IMAP command (``UID STORE ... (\\Deleted)``,
    ``UID EXPUNGE``, ``UID MOVE``): the client is killed either *before* the
    command is forwarded (the server never sees it) or once the server's
    tagged reply to it arrives, before the client reads it (the server did
    it; the connector never learns).  On plaintext connections only, like
    the others: the account talks to the proxy with ``security = "none"``.

A trigger fires once (``fired`` is set); afterwards the proxy is a plain
pass-through, so the restarted client can use the same port.

:class:`RewritingProxy` is a man in the middle too: it rewrites the lines the
server sends (to strip a capability, say) and records what the client got.

Usage::

    with KillerProxy("127.0.0.1", dovecot.pop3_port, Pop3QuitTrigger()) as proxy:
        proc = subprocess.Popen(...)
        proxy.pid = proc.pid
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

CLIENT, SERVER = "client", "server"


class Trigger:
    """Decides when the client dies; subclasses look at the byte streams of each connection."""

    def __init__(self) -> None:
        self.fired = threading.Event()

    def before_forward(self, conn: int, direction: str, data: bytes) -> bool:
        """True: kill the client now, before *data* is forwarded (and drop it)."""
        return False

    def after_forward(self, conn: int, direction: str, data: bytes) -> bool:
        """True: kill the client now that *data* has been forwarded."""
        return False


class Pop3QuitTrigger(Trigger):
    """Kill the client when it sends QUIT, before the server sees it."""

    def __init__(self) -> None:
        super().__init__()
        self._line: dict[int, bytes] = {}

    def before_forward(self, conn: int, direction: str, data: bytes) -> bool:
        if direction != CLIENT or self.fired.is_set():
            return False
        *lines, rest = (self._line.get(conn, b"") + data).split(b"\r\n")
        self._line[conn] = rest
        return any(line.strip().upper() == b"QUIT" for line in lines) or rest.strip().upper() == b"QUIT"


class _SmtpState:
    def __init__(self) -> None:
        self.client_line = b""
        self.in_data = False
        self.message = bytearray()
        self.await_final = False
        self.server_line = b""


class SmtpDataAcceptedTrigger(Trigger):
    """Kill the client once the server accepted a message, before the client reads the 250.

    The server has the message; the connector never learns it, so it cannot
    write the journal: the narrowest form of the window between SMTP
    acceptance and the journal write, and deterministic (a kill sent after the
    reply was forwarded races with the journal write).  Each connection is
    followed on its own (the connector may submit over several sessions at
    once); ``message`` is the message whose acceptance triggered the kill, as
    sent (dot-stuffed, with the terminating dot).
    """

    def __init__(self) -> None:
        super().__init__()
        self._state: dict[int, _SmtpState] = {}
        self.message = b""

    def before_forward(self, conn: int, direction: str, data: bytes) -> bool:
        if self.fired.is_set():
            return False
        st = self._state.setdefault(conn, _SmtpState())
        if direction == SERVER:
            return self._final_reply_accepts(st, data)
        if st.in_data:
            st.message += data
            if st.message.endswith(b"\r\n.\r\n") or st.message == b".\r\n":
                st.in_data, st.await_final = False, True
        else:
            *lines, st.client_line = (st.client_line + data).split(b"\r\n")
            if any(line.strip().upper() == b"DATA" for line in lines):
                # aiosmtplib waits for 354 before sending the body: the next client bytes are the message.
                st.in_data, st.message, st.client_line = True, bytearray(), b""
        return False

    def _final_reply_accepts(self, st: _SmtpState, data: bytes) -> bool:
        if not st.await_final:
            return False
        *lines, st.server_line = (st.server_line + data).split(b"\r\n")
        for line in lines:
            if line[:1].isdigit() and line[3:4] == b" ":  # the last line of a reply
                st.await_final = False
                if line.startswith(b"250"):
                    self.message = bytes(st.message)
                    return True
        return False
        *lines, st.server_line = (st.server_line + data).split(b"\r\n")
        for line in lines:
            if line[:1].isdigit() and line[3:4] == b" ":  # the last line of a reply
                st.await_final = False
                if line.startswith(b"250"):
                    self.message = bytes(st.message)
                    return True
        return False



class ImapCommandTrigger(Trigger):
    """Kill an IMAP client at one command: before the server sees it, or once the server has done it.

    *command* is the command's name after the tag (``b"UID STORE"``), matched
    case-insensitively at the start of a client line; *contains* narrows the
    match (``b"\\Deleted"``).  *when* is ``"sent"`` (killed before the
    command is forwarded) or ``"done"`` (the command is forwarded; the client
    is killed when the server's tagged reply to it arrives, before that reply
    is forwarded).  ``line`` is the command line that matched, ``reply`` the
    server's tagged reply (``"done"`` only).
    """

    def __init__(self, command: bytes, *, when: str = "sent", contains: bytes = b"") -> None:
        super().__init__()
        if when not in ("sent", "done"):
            raise ValueError(f"when must be 'sent' or 'done', not {when!r}")
        self.command = command.upper()
        self.contains = contains.upper()
        self.when = when
        self.line = b""
        self.reply = b""
        self._client_line: dict[int, bytes] = {}
        self._server_line: dict[int, bytes] = {}
        self._tag: dict[int, bytes] = {}  # conn -> tag of the matched command awaiting its reply

    def _matches(self, line: bytes) -> bytes | None:
        """The tag of *line* when it is the command looked for."""
        tag, _, rest = line.partition(b" ")
        upper = rest.upper()
        if tag and upper.startswith(self.command) and self.contains in upper:
            return tag
        return None

    def before_forward(self, conn: int, direction: str, data: bytes) -> bool:
        if self.fired.is_set():
            return False
        if direction == CLIENT:
            *lines, self._client_line[conn] = (self._client_line.get(conn, b"") + data).split(b"\r\n")
            for line in lines:
                tag = self._matches(line)
                if tag is None:
                    continue
                self.line = line
                if self.when == "sent":
                    return True
                self._tag[conn] = tag
            return False
        tag = self._tag.get(conn)
        if tag is None:
            return False
        *lines, self._server_line[conn] = (self._server_line.get(conn, b"") + data).split(b"\r\n")
        for line in lines:
            if line.startswith(tag + b" "):
                self.reply = line
                return True
        return False

class KillerProxy:
    """A recording TCP proxy on 127.0.0.1 in front of ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int, trigger: Trigger | None = None) -> None:
        self.target = (target_host, target_port)
        self.trigger = trigger or Trigger()
        self.pid: int | None = None  # the client process to kill; set after starting it
        self.port = 0
        self.client_bytes = bytearray()
        self.server_bytes = bytearray()
        self.sessions: dict[int, dict[str, bytearray]] = {}
        self.killed_pids: list[int] = []
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    # -- life cycle ----------------------------------------------------------

    def start(self) -> KillerProxy:
        self._thread = threading.Thread(target=self._run, name="killer-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the proxy did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(BaseException):
                    await task
            await self._server.wait_closed()

    # -- the proxy -------------------------------------------------------------

    def _kill(self) -> None:
        self.trigger.fired.set()
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.killed_pids.append(pid)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(client_writer)
        self.connections += 1
        conn = self.connections
        server_writer: asyncio.StreamWriter | None = None
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
            self._writers.add(server_writer)
            pumps = [
                asyncio.create_task(self._pump(client_reader, server_writer, CLIENT, conn)),
                asyncio.create_task(self._pump(server_reader, client_writer, SERVER, conn)),
            ]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                for pump in pumps:
                    with contextlib.suppress(BaseException):
                        await pump
        except OSError:
            pass
        finally:
            for writer in (client_writer, server_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.transport.abort()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str,
                    conn: int) -> None:
        record = self.client_bytes if direction == CLIENT else self.server_bytes
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            with self._lock:
                record.extend(data)
                self.sessions.setdefault(conn, {CLIENT: bytearray(), SERVER: bytearray()})[direction].extend(data)
                kill_first = self.trigger.before_forward(conn, direction, data)
            if kill_first:
                self._kill()
                return  # the data dies with the client
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                return
            with self._lock:
                kill_now = self.trigger.after_forward(conn, direction, data)
            if kill_now:
                self._kill()


class RewritingProxy(KillerProxy):
    """A :class:`KillerProxy` that rewrites each line the server sends before the client reads it.

    *rewrite* gets one line without its CRLF and returns what the client
    gets instead (``server_bytes`` records the rewritten stream).  A short
    unfinished line of text waits for the rest; anything else (a TLS record,
    a long literal) passes on at once, unchanged.
    """

    HELD_MAX = 4096

    def __init__(self, target_host: str, target_port: int, rewrite: Callable[[bytes], bytes],
                 trigger: Trigger | None = None) -> None:
        super().__init__(target_host, target_port, trigger)
        self.rewrite = rewrite

    def _rewritten(self, held: bytes, data: bytes) -> tuple[bytes, bytes]:
        """(what to forward now, what to hold back) of the held bytes and a new chunk."""
        *lines, tail = (held + data).split(b"\r\n")
        out = b"".join(self.rewrite(line) + b"\r\n" for line in lines)
        if len(tail) > self.HELD_MAX or not all(32 <= b < 127 or b == 9 for b in tail):
            return out + tail, b""
        return out, tail

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str,
                    conn: int) -> None:
        if direction == CLIENT:
            return await super()._pump(reader, writer, direction, conn)
        held = b""
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    if held:
                        writer.write(held)
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            data, held = self._rewritten(held, data)
            if not data:
                continue
            with self._lock:
                self.server_bytes.extend(data)
                self.sessions.setdefault(conn, {CLIENT: bytearray(), SERVER: bytearray()})[direction].extend(data)
                kill_first = self.trigger.before_forward(conn, direction, data)
            if kill_first:
                self._kill()
                return
            try:
                writer.write(data)
                await writer.drain()
            except OSError:
                return
            with self._lock:
                kill_now = self.trigger.after_forward(conn, direction, data)
            if kill_now:
                self._kill()


def without_capabilities(*names: bytes) -> Callable[[bytes], bytes]:
    """A :class:`RewritingProxy` rewrite that removes IMAP capabilities (``b"MOVE"``, ``b"STARTTLS"``)
    from every line that lists them (``* CAPABILITY ...`` and ``[CAPABILITY ...]`` codes)."""
    wanted = {name.upper() for name in names}

    def rewrite(line: bytes) -> bytes:
        if b"CAPABILITY" not in line.upper():
            return line
        head, sep, rest = line.partition(b"CAPABILITY")
        code_end = rest.find(b"]")
        listed, after = (rest[:code_end], rest[code_end:]) if code_end >= 0 else (rest, b"")
        kept = [word for word in listed.split(b" ") if word.upper() not in wanted]
        return head + sep + b" ".join(kept) + after

    return rewrite
