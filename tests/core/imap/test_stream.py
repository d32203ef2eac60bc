"""The byte stream of one IMAP connection: bounded lines and literals, bodies to their sink, timeouts, drops."""

from __future__ import annotations

import asyncio
import io

import pytest

from pop3gui.core.errors import MailboxConnectionError, MailboxProtocolError, MailboxTimeoutError
from pop3gui.core.imap.parse import LiteralBody
from pop3gui.core.connect import TRANSCRIPT_LINES
from pop3gui.core.imap.stream import MAX_LITERALS, printable
from tests.core.imap import BIG, explained, wired


def test_printable() -> None:
    assert printable(b"* OK ready\r\n") == "* OK ready"
    assert printable(b"caf\xe9\n") == "caf\ufffd"
    assert len(printable(b"x" * 2000)) == 503


async def test_one_response_and_the_transcript() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* OK [CAPABILITY IMAP4rev1] hi\r\nP1 OK done\r\n")
        first = await stream.read_response("reading")
        second = await stream.read_response("reading")
        assert (first.code, first.code_args, second.tag) == ("CAPABILITY", "IMAP4rev1", "P1")
        await stream.send("P2 LOGIN a b", redacted="P2 LOGIN a ****")
        assert list(stream.transcript) == ["S: * OK [CAPABILITY IMAP4rev1] hi", "S: P1 OK done", "C: P2 LOGIN a ****"]
        assert await _r.readline() == b"P2 LOGIN a b\r\n"


async def test_bare_lf_line_endings_are_read() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* 3 EXISTS\nP1 OK\n")
        assert (await stream.read_response("x")).number == 3
        assert (await stream.read_response("x")).kind == "OK"


async def test_short_literals_stay_in_memory() -> None:
    async with wired() as (stream, _r, w):
        w.write(b'* LIST () "/" {7}\r\nA\r\n"b\0c\r\n')
        r = await stream.read_response("listing")
        assert r.data == [[], "/", b'A\r\n"b\0c']
        assert "S: [7 bytes]" in stream.transcript


async def test_a_short_literal_over_max_line_is_refused_and_closes() -> None:
    async with wired(max_line=100) as (stream, _r, w):
        w.write(b'* LIST () "/" {101}\r\n' + b"x" * 101 + b"\r\n")
        with pytest.raises(MailboxProtocolError, match="literal of 101 bytes") as info:
            await stream.read_response("listing")
        explained(info.value)
        assert not stream.connected


async def test_a_body_streams_to_its_sink_byte_for_byte_whatever_its_lines() -> None:
    async with wired(max_line=1024) as (stream, _r, w):
        announced: list[bytes] = []
        out = io.BytesIO()

        def sink(text: bytes) -> io.BytesIO:
            announced.append(text)
            return out

        w.write(b"* 1 FETCH (UID 4 BODY[] {%d}\r\n" % len(BIG) + BIG + b" FLAGS (\\Seen))\r\n")
        r = await stream.read_response("downloading", body_sink=sink, max_body=len(BIG))
        assert out.getvalue() == BIG
        assert announced == [b"* 1 FETCH (UID 4 BODY[] {%d}\r\n" % len(BIG)]
        assert r.data == [["UID", "4", "BODY[]", b"", "FLAGS", ["\\Seen"]]]
        assert f"S: [{len(BIG)} bytes of message data]" in stream.transcript
        assert all(len(line) < 600 for line in stream.transcript)


async def test_a_sink_that_says_none_keeps_the_literal_in_memory() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* 1 FETCH (BODY[HEADER] {3}\r\nabc)\r\n")
        r = await stream.read_response("x", body_sink=lambda _t: None, max_body=0)
        assert r.data == [["BODY[HEADER]", b"abc"]]


async def test_a_body_over_max_body_is_refused_before_a_byte_is_read() -> None:
    async with wired() as (stream, _r, w):
        out = io.BytesIO()
        w.write(b"* 1 FETCH (UID 4 BODY[] {1001}\r\n" + b"x" * 1001 + b")\r\n")
        with pytest.raises(MailboxProtocolError, match="1001 bytes") as info:
            await stream.read_response("downloading", body_sink=lambda _t: out, max_body=1000)
        explained(info.value)
        assert out.getvalue() == b"" and not stream.connected


@pytest.mark.parametrize("limit", [16, 1024])
async def test_a_line_of_max_line_bytes_is_read_and_one_more_is_refused(limit: int) -> None:
    fits = b"* OK " + b"z" * (limit - 5)
    async with wired(max_line=limit) as (stream, _r, w):
        w.write(fits + b"\r\n")  # the CR is counted: the limit is on what comes before the LF
        with pytest.raises(MailboxProtocolError, match=f"longer than {limit} bytes") as info:
            await stream.read_response("reading")
        explained(info.value)
        assert not stream.connected
    async with wired(max_line=limit) as (stream, _r, w):
        w.write(fits + b"\n")
        assert (await stream.read_response("reading")).text.startswith("z" * min(limit - 5, 500))
    async with wired(max_line=limit) as (stream, _r, w):
        w.write(fits + b"zz")  # no line end yet, already too long
        with pytest.raises(MailboxProtocolError):
            await stream.read_response("reading")


async def test_too_many_literals_in_one_response() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* SEARCH" + b" {1}\r\n1" * (MAX_LITERALS + 1) + b"\r\n")
        with pytest.raises(MailboxProtocolError, match="too many literals"):
            await stream.read_response("searching")
        assert not stream.connected


async def test_nonsense_closes_the_connection() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* 1 FETCH (UID 1\r\n")
        with pytest.raises(MailboxProtocolError) as info:
            await stream.read_response("x")
        explained(info.value)
        assert not stream.connected


@pytest.mark.parametrize(
    ("data", "partial"),
    [
        (b"* OK hal", "* OK hal"),
        (b"* 1 FETCH (BODY[] {10}\r\nabc", ""),
        (b'* LIST () "/" {10}\r\nabc', ""),
        (b"* 1 FETCH (BODY[] {3}\r\nabc", ""),  # the body came, the rest of the line did not
    ],
)
async def test_the_stream_ending_early_is_a_dropped_connection(data: bytes, partial: str) -> None:
    async with wired() as (stream, _r, w):
        w.write(data)
        w.close()
        with pytest.raises(MailboxConnectionError, match="closed the connection") as info:
            await stream.read_response("reading", body_sink=lambda t: io.BytesIO() if b"BODY" in t else None,
                                       max_body=100)
        explained(info.value)
        assert partial in info.value.cause
        assert not stream.connected


async def test_a_bye_is_remembered_and_named_when_the_connection_drops() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* BYE Server shutting down\r\n")
        w.close()
        assert (await stream.read_response("x")).kind == "BYE"
        assert stream.bye == "Server shutting down"
        with pytest.raises(MailboxConnectionError) as info:
            await stream.read_response("x")
        assert "Server shutting down" in info.value.cause


async def test_silence_times_out_and_closes() -> None:
    async with wired(timeout=0.2) as (stream, _r, _w):
        with pytest.raises(MailboxTimeoutError, match="0.2 s while waiting") as info:
            await stream.read_response("waiting")
        explained(info.value)
        assert not stream.connected


async def test_a_stalled_body_times_out_and_closes() -> None:
    async with wired(timeout=0.2) as (stream, _r, w):
        w.write(b"* 1 FETCH (BODY[] {100}\r\n" + b"x" * 50)
        with pytest.raises(MailboxTimeoutError):
            await stream.read_response("downloading", body_sink=lambda _t: io.BytesIO(), max_body=100)
        assert not stream.connected


async def test_a_slow_body_that_keeps_coming_does_not_time_out() -> None:
    async with wired(timeout=0.3) as (stream, _r, w):
        out = io.BytesIO()

        async def trickle() -> None:
            w.write(b"* 1 FETCH (BODY[] {10}\r\n")
            for i in range(10):
                await asyncio.sleep(0.1)  # a full second in all, a tenth at a time
                w.write(b"%d" % i)
            w.write(b")\r\n")

        task = asyncio.create_task(trickle())
        await stream.read_response("downloading", body_sink=lambda _t: out, max_body=10)
        await task
        assert out.getvalue() == b"0123456789"


async def test_the_first_line_may_be_waited_for_without_a_limit() -> None:
    async with wired(timeout=0.1) as (stream, _r, w):
        asyncio.get_running_loop().call_later(0.4, w.write, b"* 2 EXISTS\r\n")
        assert (await stream.read_response("idling", first_timeout=None)).number == 2
        w.write(b"* 3 EXISTS\r\n")
        assert (await stream.read_response("idling", first_timeout=1.0)).number == 3
        with pytest.raises(MailboxTimeoutError):
            await stream.read_response("idling", first_timeout=0.05)


async def test_once_the_first_line_came_the_rest_is_bounded_again() -> None:
    async with wired(timeout=0.2) as (stream, _r, w):
        w.write(b"* 1 FETCH (BODY[] {5}\r\nab")
        with pytest.raises(MailboxTimeoutError):
            await stream.read_response("idling", first_timeout=None,
                                       body_sink=lambda _t: io.BytesIO(), max_body=5)


async def test_after_close_nothing_goes_out() -> None:
    async with wired() as (stream, _r, _w):
        await stream.close()
        await stream.close()  # twice is fine
        with pytest.raises(MailboxConnectionError, match="Not connected") as info:
            await stream.send("P1 NOOP")
        explained(info.value)
        with pytest.raises(MailboxConnectionError):
            await stream.read_response("x")
        assert stream.transcript[-1] == "-- connection closed"


async def test_the_transcript_is_bounded() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* OK " + b"x" * 900 + b"\r\n")
        for _ in range(TRANSCRIPT_LINES + 50):
            w.write(b"* 1 EXISTS\r\n")
        for _ in range(TRANSCRIPT_LINES + 51):
            await stream.read_response("x")
        assert len(stream.transcript) == TRANSCRIPT_LINES


def test_literal_body_repr() -> None:
    assert repr(LiteralBody(12)) == "LiteralBody(12)"


class _Full:
    def write(self, data: bytes, /) -> int:
        raise OSError(28, "No space left on device")


async def test_a_sink_that_fails_mid_body_closes_the_connection() -> None:
    """The rest of the body is still on the wire: reading on would take message data for responses."""
    async with wired() as (stream, _r, w):
        w.write(b"* 1 FETCH (BODY[] {20}\r\nP0002 OK forged\r\n...)\r\nP0001 OK\r\n")
        with pytest.raises(OSError, match="No space"):
            await stream.read_response("downloading", body_sink=lambda _t: _Full(), max_body=100)
        assert not stream.connected


async def test_a_read_cancelled_mid_response_closes_the_connection() -> None:
    async with wired() as (stream, _r, w):
        w.write(b"* 1 FETCH (BODY[] {20}\r\nP0002 OK")
        task = asyncio.create_task(stream.read_response("downloading", body_sink=lambda _t: io.BytesIO(),
                                                        max_body=100))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not stream.connected
