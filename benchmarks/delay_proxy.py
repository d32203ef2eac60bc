"""A TCP proxy on loopback that adds a fixed one-way delay, for WAN-like benchmarks.

Every chunk read from one side is written to the other side ``delay`` seconds
after it was read, in both directions, so a 10 ms one-way delay is a 20 ms
round trip. Chunks keep their order: each direction is one FIFO queue drained
by one writer task that waits until the chunk's due time. There is no
bandwidth limit and no buffering limit (the benchmark moves at most a few MB
through it).

Run it as its own process, so its work never competes with a peer being
measured::

    python3 benchmarks/delay_proxy.py --target-port 1110 --delay-ms 10

It prints ``LISTENING <port>`` on standard output once it accepts connections
and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

_EOF = b""


async def _pump_in(reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]],
                   loop: asyncio.AbstractEventLoop) -> None:
    try:
        while True:
            chunk = await reader.read(65536)
            await queue.put((loop.time(), chunk))
            if not chunk:
                return
    except (ConnectionError, OSError):
        await queue.put((loop.time(), _EOF))


async def _pump_out(writer: asyncio.StreamWriter, queue: asyncio.Queue[tuple[float, bytes]],
                    delay: float, loop: asyncio.AbstractEventLoop) -> None:
    try:
        while True:
            stamp, chunk = await queue.get()
            wait = stamp + delay - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                with contextlib.suppress(OSError):
                    if writer.can_write_eof():
                        writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        return


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
    await asyncio.gather(_pump_in(reader, queue, loop), _pump_out(writer, queue, delay, loop))


class DelayProxy:
    """Listen on 127.0.0.1 and forward to *target_host*:*target_port* with *delay* seconds each way."""

    def __init__(self, target_host: str, target_port: int, delay: float, listen_port: int = 0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self.listen_port = listen_port
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.listen_port)
        self.listen_port = self.server.sockets[0].getsockname()[1]
        return self.listen_port

    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            c_writer.close()
            return
        try:
            await asyncio.gather(_relay(c_reader, s_writer, self.delay), _relay(s_reader, c_writer, self.delay))
        finally:
            for w in (c_writer, s_writer):
                with contextlib.suppress(Exception):
                    w.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def _main(args: argparse.Namespace) -> None:
    proxy = DelayProxy(args.target_host, args.target_port, args.delay_ms / 1000.0, args.listen_port)
    port = await proxy.start()
    print(f"LISTENING {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, required=True, help="one-way delay in milliseconds")
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
