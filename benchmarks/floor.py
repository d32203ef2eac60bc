"""The floor: the least a connector can do with the same servers, as a process of its own.

Every account at once, each with its own POP3 session that sends all RETRs
after login (IMAP: one FETCH of all) and feeds its own aiosmtplib connection,
which sends one message after the other; once everything is sent, the session
deletes it all (pipelined DELEs; IMAP: STORE \\Deleted + EXPUNGE), as pop3gui
does by default.  No journal, no spool, no events, no parsing.

It runs as a process like pop3gui and fetchmail, so that it pays what any
Python connector pays before its first byte (the interpreter, asyncio,
aiosmtplib) and the comparison is of like with like::

    python benchmarks/floor.py --port P --protocol pop3 --accounts 10 --smtp HOST:PORT --password PW

It prints ``sent N`` (the messages Postfix accepted) and exits 0, or 1 when a
session failed.  ``bench_delivery.py --floor-in-process`` runs it inside the benchmark's process instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

MIB = 1024 * 1024
SENDER = "sender@fabrikam.example"
RECIPIENT = "alice@contoso.com"


@dataclass(frozen=True)
class FloorRun:
    """Where the floor reads and where it submits."""

    port: int  # the POP3 or IMAP port (or a delay proxy's in front of it)
    protocol: str  # "pop3" or "imap"
    accounts: int  # users bench0 .. bench{accounts-1}
    smtp_host: str
    smtp_port: int
    password: str


async def _pop3_reader(run: FloorRun, user: str, queue: asyncio.Queue[bytes | None], sent: asyncio.Event) -> int:
    """POP3: all RETRs sent at once after login; once *sent* (every message accepted by Postfix), all DELEs
    and QUIT at once: pop3gui's job (it deletes what it delivered), done by the fewest round trips."""
    reader, writer = await asyncio.open_connection("127.0.0.1", run.port, limit=512 * MIB)
    try:
        async def reply() -> bytes:
            line = await reader.readline()
            if not line.startswith(b"+OK"):
                raise RuntimeError(f"POP3 {user}: {line!r}")
            return line

        await reply()
        writer.write(f"USER {user}\r\nPASS {run.password}\r\nSTAT\r\n".encode())
        await reply()
        await reply()
        count = int((await reply()).split()[1])
        writer.write(b"".join(b"RETR %d\r\n" % i for i in range(1, count + 1)))
        for _ in range(count):
            await reply()
            data = await reader.readuntil(b"\r\n.\r\n")
            data = data[:-3]  # keep the last line's CRLF
            if data.startswith(b".."):
                data = data[1:]
            await queue.put(data.replace(b"\r\n..", b"\r\n."))
        await queue.put(None)
        await sent.wait()
        writer.write(b"".join(b"DELE %d\r\n" % i for i in range(1, count + 1)) + b"QUIT\r\n")
        await writer.drain()
        for _ in range(count + 1):
            await reply()
        return count
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _imap_reader(run: FloorRun, user: str, queue: asyncio.Queue[bytes | None], sent: asyncio.Event) -> int:
    """IMAP: LOGIN, then SELECT INBOX and one FETCH 1:* (BODY.PEEK[]) sent together; once *sent*, one
    STORE 1:* +FLAGS.SILENT (\\Deleted), EXPUNGE and LOGOUT sent together (pop3gui deletes what it delivered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", run.port, limit=512 * MIB)
    try:
        async def tagged(tag: bytes, on_line: Callable[[bytes], Awaitable[None]] | None = None) -> None:
            while True:
                line = await reader.readline()
                if not line:
                    raise RuntimeError(f"IMAP {user}: connection closed")
                if line.startswith(tag + b" "):
                    if not line.startswith(tag + b" OK"):
                        raise RuntimeError(f"IMAP {user}: {line!r}")
                    return
                if on_line is not None:
                    await on_line(line)

        greeting = await reader.readline()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError(f"IMAP {user}: {greeting!r}")
        writer.write(f"a1 LOGIN {user} {run.password}\r\n".encode())
        await tagged(b"a1")
        writer.write(b"a2 SELECT INBOX\r\na3 FETCH 1:* (BODY.PEEK[])\r\n")
        await tagged(b"a2")
        count = 0

        async def body(line: bytes) -> None:
            nonlocal count
            if line.endswith(b"}\r\n") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1:-3])
                await queue.put(await reader.readexactly(size))
                count += 1
                await reader.readline()  # the rest of the FETCH response: ")"

        await tagged(b"a3", body)
        await queue.put(None)
        await sent.wait()
        writer.write(b"a4 STORE 1:* +FLAGS.SILENT (\\Deleted)\r\na5 EXPUNGE\r\na6 LOGOUT\r\n")
        await writer.drain()
        for tag in (b"a4", b"a5", b"a6"):
            await tagged(tag)
        return count
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _sender(run: FloorRun, queue: asyncio.Queue[bytes | None]) -> int:
    """One SMTP connection submitting what one account's reader queues, one message after the other."""
    sent = 0
    smtp = aiosmtplib.SMTP(hostname=run.smtp_host, port=run.smtp_port, timeout=600, start_tls=False, use_tls=False)
    await smtp.connect()
    try:
        while (message := await queue.get()) is not None:
            await smtp.sendmail(SENDER, [RECIPIENT], message)
            sent += 1
    finally:
        with contextlib.suppress(Exception):
            await smtp.quit()
    return sent


async def floor(run: FloorRun) -> int:
    """Every account at once; the messages Postfix accepted.  One account is one POP3 (IMAP) and one SMTP
    session; ten accounts are ten of each, side by side: the minimal parallel connector these servers allow."""
    read_one = _imap_reader if run.protocol == "imap" else _pop3_reader

    async def account(user: str) -> int:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        sent = asyncio.Event()

        async def read() -> None:
            try:
                await read_one(run, user, queue, sent)
            finally:
                queue.put_nowait(None)  # the sender stops even when reading failed (a second None is unread)

        async def send() -> int:
            count = await _sender(run, queue)
            sent.set()  # only now may the reader delete; on a failure nothing is deleted
            return count

        _, count = await asyncio.gather(read(), send())
        return count

    return sum(await asyncio.gather(*(account(f"bench{a}") for a in range(run.accounts))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=["pop3", "imap"], default="pop3")
    parser.add_argument("--accounts", type=int, default=1)
    parser.add_argument("--smtp", required=True, metavar="HOST:PORT")
    parser.add_argument("--password", required=True)
    args = parser.parse_args(argv)
    host, _, port = args.smtp.rpartition(":")
    run = FloorRun(args.port, args.protocol, args.accounts, host, int(port), args.password)
    try:
        sent = asyncio.run(floor(run))
    except Exception as exc:  # noqa: BLE001 - the benchmark reads the reason from the log
        print(f"floor failed: {exc!r}", flush=True)
        return 1
    print(f"sent {sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
