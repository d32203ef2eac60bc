"""The connection's byte stream: bounded lines, multi-line answers, timeouts, dropped replies."""

from __future__ import annotations

import asyncio
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.errors import (
    MailboxConnectionError,
    MailboxProtocolError,
    MailboxTimeoutError,
)
from pop3gui.core.pop3.stream import Pop3Stream, data_lines, find_end, printable
from tests.core.pop3.common import MSG1, MSG2, client, wired
from tests.support.scripted_pop3 import ScriptedPop3Server, frame

# ------------------------------------------------------------ block helpers


@pytest.mark.parametrize(
    ("block", "at_line_start", "expected"),
    [
        (b".\r\n", True, (0, 3)),
        (b".\n", True, (0, 2)),
        (b".\r\n", False, (-1, 0)),  # the end of an over-long line, not a line of its own
        (b"a\r\n.\r\n", True, (3, 3)),
        (b"a\n.\n", True, (2, 2)),
        (b"a\r\n..\r\n", True, (-1, 0)),  # a stuffed dot is data
        (b"a\r\n. \r\n", True, (-1, 0)),
        (b"a\r\n.\r\nb\n.\n", True, (3, 3)),  # the first terminator wins, whatever its ending
        (b"a\n.\nb\r\n.\r\n", True, (2, 2)),
        (b"a\r\nb\r\n", True, (-1, 0)),
    ],
)
def test_find_end(block: bytes, at_line_start: bool, expected: tuple[int, int]) -> None:
    assert find_end(block, at_line_start) == expected
    assert find_end(bytearray(block), at_line_start) == expected


@pytest.mark.parametrize(
    ("block", "at_line_start", "expected"),
    [
        (b"..\r\n.foo\r\nbar\r\n", True, b".\r\nfoo\r\nbar\r\n"),
        (b".foo\r\n.bar\r\n", False, b".foo\r\nbar\r\n"),  # the first line continues a long one
        (b"a\nb\r\n.c\n", True, b"a\r\nb\r\nc\r\n"),  # bare LF becomes CRLF
        (b"a\rb\r\n\0\r\n", True, b"a\rb\r\n\0\r\n"),  # a lone CR and NUL are data
        (b"\r\n\r\n", True, b"\r\n\r\n"),
    ],
)
def test_data_lines(block: bytes, at_line_start: bool, expected: bytes) -> None:
    assert data_lines(block, at_line_start) == expected


def test_printable_strips_the_line_ending_replaces_bad_bytes_and_bounds_the_length() -> None:
    assert printable(b"+OK ready\r\n") == "+OK ready"
    assert printable(b"caf\xe9\n") == "caf\ufffd"
    long = printable(b"x" * 600 + b"\r\n")
    assert long == "x" * 500 + "..."


# ------------------------------------------------------------- on the wire


async def test_commands_go_out_in_one_write_and_the_transcript_hides_a_password() -> None:
    async with wired() as (stream, server_in, _server_out):
        stream.write("LIST", "UIDL")
        stream.write("PASS secret", redacted="PASS ****")
        await stream.drain()
        sent = b"LIST\r\nUIDL\r\nPASS secret\r\n"
        assert await server_in.readexactly(len(sent)) == sent
        assert list(stream.transcript) == ["C: LIST", "C: UIDL", "C: PASS ****"]


async def test_bytes_past_the_end_of_a_message_are_the_next_reply() -> None:
    async with wired() as (stream, _server_in, server_out):
        server_out.write(b"+OK\r\n..a\r\nb\r\n.\r\n+OK next\r\n")
        assert (await stream.read_status("RETR")).ok
        out = io.BytesIO()
        assert await stream.read_multiline(out) == 7
        assert out.getvalue() == b".a\r\nb\r\n"
        assert stream.unread_bytes() == len(b"+OK next\r\n")
        assert (await stream.read_status("NOOP")).text == "next"
        assert stream.unread_bytes() == 0


async def test_unread_bytes_counts_what_the_socket_already_delivered() -> None:
    async with wired() as (stream, _server_in, server_out):
        server_out.write(b"+OK begin TLS\r\n+OK injected\r\n")
        assert (await stream.read_status("STLS")).ok
        async with asyncio.timeout(2):
            while stream.unread_bytes() < len(b"+OK injected\r\n"):
                await asyncio.sleep(0.01)


async def test_unwanted_retr_replies_are_dropped_before_the_next_command() -> None:
    async with wired() as (stream, server_in, server_out):
        stream.drop_retr_replies(2)
        server_out.write(b"+OK\r\nnot wanted\r\n.\r\n-ERR no such message\r\n+OK noop\r\n")
        reply = await stream.command("NOOP", "NOOP")
        assert reply.text == "noop"
        assert await server_in.readexactly(6) == b"NOOP\r\n"
        reply_lines = [line for line in stream.transcript if line.startswith("S: ")]
        assert reply_lines == ["S: +OK", "S: [12 bytes of message data]", "S: .",
                               "S: -ERR no such message", "S: +OK noop"]


async def test_listing_lines_are_unstuffed_and_end_with_crlf() -> None:
    async with wired() as (stream, _server_in, server_out):
        server_out.write(b"1 10\r\n..2 20\n.\r\n")
        assert await stream.read_lines() == [b"1 10\r\n", b".2 20\r\n"]


async def test_a_listing_line_longer_than_max_line_closes_the_connection() -> None:
    async with wired(max_line=64) as (stream, _server_in, server_out):
        server_out.write(b"+OK " + b"x" * 100 + b"\r\n")
        with pytest.raises(MailboxProtocolError, match="longer than 64 bytes"):
            await stream.read_status("NOOP")
        assert not stream.connected


async def test_silence_is_a_timeout_that_closes_the_connection() -> None:
    async with wired(timeout=0.2) as (stream, _server_in, server_out):
        server_out.write(b"+OK\r\npart of a message\r\n")
        assert (await stream.read_status("RETR")).ok
        with pytest.raises(MailboxTimeoutError, match="0.2 s while reading message data"):
            await stream.read_multiline(io.BytesIO())
        assert not stream.connected
        assert stream.transcript[-1] == "-- connection closed"


async def test_a_connection_that_ends_mid_message_is_dropped_not_truncated_mail() -> None:
    async with wired() as (stream, _server_in, server_out):
        server_out.write(b"line one\r\nline tw")
        server_out.close()
        out = io.BytesIO()
        with pytest.raises(MailboxConnectionError, match="in the middle of a reply"):
            await stream.read_multiline(out)
        assert not stream.connected
        assert out.getvalue() == b"line one\r\n"


async def test_a_closed_stream_says_so() -> None:
    stream = Pop3Stream("pop.test:110", timeout=1, max_line=1024)
    assert not stream.connected and not stream.encrypted
    with pytest.raises(MailboxConnectionError, match="Not connected to the POP3 server pop.test:110"):
        await stream.read_status("NOOP")
    with pytest.raises(MailboxConnectionError, match="Not connected"):
        stream.write("NOOP")
    await stream.close()  # closing twice is harmless
    assert list(stream.transcript) == []


async def test_only_a_protocol_error_closes_through_closing_on_protocol_error() -> None:
    async with wired() as (stream, _server_in, _server_out):
        with pytest.raises(ValueError):
            async with stream.closing_on_protocol_error():
                raise ValueError("not about the server")
        assert stream.connected
        with pytest.raises(MailboxProtocolError):
            async with stream.closing_on_protocol_error():
                raise MailboxProtocolError("nonsense from the server")
        assert not stream.connected


# ------------------------------------------------- through the client: RETR


async def test_retr_unstuffs_dots_and_keeps_crlf() -> None:
    async with ScriptedPop3Server([MSG1, MSG2]) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            out = io.BytesIO()
            assert await pop.retr_to(2, out) == len(MSG2)
            assert out.getvalue() == MSG2
            assert b"\r\n..\r\n" in frame(MSG2)  # the server really stuffed
            assert f"S: [{len(MSG2)} bytes of message data]" in pop.transcript


async def test_bare_lf_server_is_normalised_to_crlf() -> None:
    async with ScriptedPop3Server([MSG2], bare_lf=True) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.stat() == (1, len(MSG2))
            out = io.BytesIO()
            await pop.retr_to(1, out)
            assert out.getvalue() == MSG2


async def test_nul_bytes_pass_through() -> None:
    msg = b"Subject: \0nul\r\n\r\n\0\0body\0\r\n"
    async with ScriptedPop3Server([msg]) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            out = io.BytesIO()
            await pop.retr_to(1, out)
            assert out.getvalue() == msg


async def test_overlong_data_line_is_still_mail_and_the_session_goes_on() -> None:
    """A line longer than max_line inside a message streams through in pieces (RFC 5322's
    998 is a rule for writers; real mail breaks it), dot-unstuffing and CRLF intact."""
    msg = b"Subject: long\r\n\r\n" + b"x" * 5000 + b"\r\n" + b"." + b"y" * 3000 + b"\r\nend\r\n"
    async with ScriptedPop3Server([msg]) as srv:
        pop = client(srv, max_line=1024)
        await pop.connect()
        await pop.login("user", "pass")
        out = io.BytesIO()
        assert await pop.retr_to(1, out) == len(msg)
        assert out.getvalue() == msg
        await pop.noop()
        await pop.quit()


async def test_overlong_status_line_is_protocol_error() -> None:
    async with ScriptedPop3Server([MSG1], replies={"NOOP": "+OK " + "x" * 5000}) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        with pytest.raises(MailboxProtocolError, match="5006 bytes"):
            await pop.noop()
        await pop.close()


async def test_malformed_status_closes_connection() -> None:
    async with ScriptedPop3Server([MSG1], replies={"NOOP": "* OK"}) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        with pytest.raises(MailboxProtocolError):
            await pop.noop()
        with pytest.raises(MailboxConnectionError, match="Not connected"):
            await pop.stat()


async def test_dropped_connection_mid_retr_keeps_partial_and_rolls_back() -> None:
    async with ScriptedPop3Server([MSG1, MSG2], drop_retr=(2, 25)) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        out = io.BytesIO()
        with pytest.raises(MailboxConnectionError) as info:
            await pop.retr_to(2, out)
        assert f"127.0.0.1:{srv.port}" in str(info.value)
        assert info.value.cause and info.value.fix
        assert 0 < len(out.getvalue()) < len(MSG2)
        assert MSG2.startswith(out.getvalue())
        with pytest.raises(MailboxConnectionError):
            await pop.quit()
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1, MSG2]


async def test_timeout_closes_and_raises() -> None:
    async with ScriptedPop3Server([MSG1], stall={"RETR"}) as srv:
        pop = client(srv, timeout=0.3)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        with pytest.raises(MailboxTimeoutError) as info:
            await pop.retr_to(1, io.BytesIO())
        assert "0.3 s" in str(info.value) and info.value.temporary
        with pytest.raises(MailboxConnectionError):
            await pop.noop()
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1]


# -------------------------------------------------------------- property


_LINE = st.binary(max_size=40).filter(
    lambda b: b"\n" not in b and not b.endswith(b"\r")
)
_LINE = st.one_of(
    _LINE,
    st.sampled_from([b".", b"..", b".foo", b"", b"\0", b". ", b"\r"]).map(
        lambda b: b.rstrip(b"\r") if b == b"\r" else b
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINE, max_size=12))
def test_property_retr_reads_back_what_was_stored(lines: list[bytes]) -> None:
    message = b"".join(line + b"\r\n" for line in lines)

    async def roundtrip() -> bytes:
        async with ScriptedPop3Server([message]) as srv:
            async with client(srv) as pop:
                await pop.login("user", "pass")
                out = io.BytesIO()
                count = await pop.retr_to(1, out)
                assert count == len(out.getvalue())
                return out.getvalue()

    assert asyncio.run(roundtrip()) == message
