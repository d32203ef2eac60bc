"""Hostile POP3 server output: the reply parsers and the multi-line reader.

Whatever bytes a server sends, the client either understands them or raises
a MailboxError that explains the problem (MailboxProtocolError for nonsense,
MailboxConnectionError when the stream ends early) - never another exception.

The reader is the real ``Pop3Stream.read_multiline`` / ``read_lines``,
driven through an ``asyncio.StreamReader`` that is fed bytes in random chunks
(``feed_data``/``feed_eof``): no sockets, so each case costs microseconds.
Its results are compared with an independent model of RFC 1939 framing.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.errors import ConfigError, MailboxConnectionError, MailboxProtocolError
from pop3gui.core.pop3.replies import (
    MAX_STATUS_LINE,
    MAX_UID_LENGTH,
    check_argument,
    greeting_timestamp,
    parse_capa_lines,
    parse_list_line,
    parse_stat,
    parse_status,
    parse_uidl_line,
)
from pop3gui.core.pop3.stream import Pop3Stream
from tests.fuzz import corpus, count, decode_recipe, pop3_canonical, run
from tests.support.scripted_pop3 import frame

PROPERTY = settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

Record = Callable[[str, object], None]

# ------------------------------------------------------------------ strategies

_EOLS = [b"\r\n", b"\n", b"", b"\r", b"\r\r\n", b"\n\r\n", b"\r\n\r\n"]
_HEADS = [b"+OK", b"-ERR", b"+OK ", b"-ERR ", b"+ok ", b"-err ", b"+OKAY", b"-ERROR", b"+", b"-", b"",
          b" +OK", b"\0+OK ", b"+OK\t", b"+OK\0", b"\xef\xbb\xbf+OK ", b"+ ", b"* OK ", b"+OK ", b"-ERR "]
#: Fragments a recipe byte can stand for (see tests.fuzz.decode_recipe).
_REPLY_TOKENS = [
    b"\0", b"\r", b"\n", b"\r\n", b" ", b"\t", b"\xff", b"\xc3\xa9", b"\x7f", b"\x1b[31m",
    b"[IN-USE] ", b"[in-use]", b"[SYS/TEMP] ", b"[SYS/PERM]", b"[AUTH] ", b"[LOGIN-DELAY] ", b"[] ", b"[", b"]",
    b"[IN USE] ", b"<1896.697170952@dbc.mtview.ca.us>", b"<", b">", b"<>",
    b"1", b"0", b"01", b"42", b"-1", b"+1", b"1.5", b"\xd9\xa3", b"\xef\xbc\x91", b"uid-1", b"\xc2\xa0",
    b"\x0b", b"99999999999999999999", b"+OK", b"-ERR", b".", b"..", b"octets",
    b"x" * 64, b"y" * MAX_UID_LENGTH, b"z" * 1000, b"w" * 4000,
]

status_data = st.binary(max_size=200)


def status_line(raw: bytes) -> bytes:
    """One generated reply: a head chosen by the first byte, then a recipe."""
    if not raw:
        return b""
    if raw[0] >= 0xF0:  # now and then, bytes exactly as drawn
        return raw[1:]
    return _HEADS[raw[0] % len(_HEADS)] + decode_recipe(raw[1:], _REPLY_TOKENS)


def _oracle_status(line: bytes) -> bool | None:
    """RFC 1939/2449 by hand: True for +OK, False for -ERR, None for 'not a status line'."""
    if len(line) > MAX_STATUS_LINE:
        return None
    body = line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line
    for head, ok in ((b"+OK", True), (b"-ERR", False)):
        if body.startswith(head):
            rest = body[len(head):]
            return ok if rest == b"" or rest.startswith(b" ") else None
    return None


# ---------------------------------------------------------------- reply parser


@PROPERTY
@given(raw=status_data)
def _prop_replies(raw: bytes) -> None:
    count("reply parser")
    line = status_line(raw)
    # The same bytes as a listing, cut where the reader would cut them.
    listing = [piece + b"\r\n" for piece in line.split(b"\n")]
    expected = _oracle_status(line)
    try:
        reply = parse_status(line, "pop.isp.example:995")
    except MailboxProtocolError as exc:
        assert expected is None, f"refused a valid status line {line!r}: {exc}"
        _check_explained(exc)
        assert "pop.isp.example:995" in str(exc)
    else:
        assert expected is reply.ok, f"accepted {line!r} as {reply!r}"
        assert isinstance(reply.text, str)
        if b"\n" not in line[:-1]:  # a real line: the reader cuts at the first LF
            assert "\n" not in reply.text
        assert reply.line.startswith("+OK" if reply.ok else "-ERR")
        assert reply.resp_code == reply.resp_code.upper() and "]" not in reply.resp_code
        assert not any(c.isspace() for c in reply.resp_code)
        stamp = greeting_timestamp(reply.text)
        assert stamp is None or (stamp[0], stamp[-1]) == ("<", ">")
        try:
            check_argument("user name", reply.text)
        except ConfigError as exc:
            assert any(c in reply.text for c in "\r\n\0") and exc.key == "user name"
        try:
            count_, octets = parse_stat(reply)
            assert count_ >= 0 and octets >= 0
        except MailboxProtocolError as exc:
            _check_explained(exc)

    for raw in listing:
        for parse in (parse_list_line, parse_uidl_line):
            try:
                number, value = parse(raw, "pop.isp.example:995")
            except MailboxProtocolError as exc:
                _check_explained(exc)
                continue
            assert isinstance(number, int) and number >= 1
            if parse is parse_list_line:
                assert isinstance(value, int) and value >= 0
            else:
                assert isinstance(value, str) and 1 <= len(value) <= MAX_UID_LENGTH
                assert all(0x21 <= ord(c) <= 0x7E for c in value)
    caps = parse_capa_lines(listing)
    assert all(k == k.upper() and k and isinstance(v, list) for k, v in caps.items())


def _check_explained(exc: MailboxProtocolError) -> None:
    """Every refusal says what, why and what to do, and never dumps a huge line."""
    assert exc.message and exc.cause and exc.fix
    assert len(exc.message) < 400


def test_reply_parser_any_bytes(record_property: Record) -> None:
    """parse_status and the listing parsers: any bytes -> a value or MailboxProtocolError."""
    run("reply parser", _prop_replies, record_property)


@pytest.mark.parametrize("path", corpus("replies"), ids=lambda p: p.name)
def test_reply_corpus(path: Path) -> None:
    """Each corpus file is one server line; the oracle decides what it must parse to."""
    line = path.read_bytes()
    expected = _oracle_status(line)
    if expected is None:
        with pytest.raises(MailboxProtocolError):
            parse_status(line)
    else:
        assert parse_status(line).ok is expected
    for parse in (parse_list_line, parse_uidl_line):
        try:
            parse(line)
        except MailboxProtocolError:
            pass


# ---------------------------------------------------------- multi-line reader


def model_read(data: bytes, limit: int, *, listing: bool = True) -> tuple[str, bytes, bytes]:
    """What reading multi-line data must give: ("ok", data, unread rest), ("protocol", b"", b"")
    or ("dropped", b"", b"").

    A line is everything up to and including LF. Its CRLF or bare LF becomes
    CRLF, a lone CR stays, a leading dot is removed, and "." alone ends the
    data. In a listing a line longer than *limit* (before its LF) is a protocol
    error; message data may have lines of any length. The stream ending
    before "." is a dropped connection.
    """
    out = bytearray()
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end == -1:
            return ("protocol" if listing and len(data) - pos > limit else "dropped"), b"", b""
        if listing and end - pos > limit:
            return "protocol", b"", b""
        body = data[pos:end]
        pos = end + 1
        if body.endswith(b"\r"):
            body = body[:-1]
        if body == b".":
            return "ok", bytes(out), data[pos:]
        if body[:1] == b".":
            body = body[1:]
        out += body + b"\r\n"


async def read_fed(data: bytes, *, limit: int, cuts: list[int], listing: bool) -> tuple[str, bytes, bytes]:
    """Feed *data* in chunks of *cuts* sizes to a real Pop3Stream's reader; (outcome, data, rest)."""
    stream = Pop3Stream("pop.isp.example:110", timeout=10, max_line=limit)
    reader = asyncio.StreamReader(limit=limit)
    stream._reader = reader

    async def feed() -> None:
        pos = 0
        for size in cuts:
            reader.feed_data(data[pos:pos + size])
            pos += size
            await asyncio.sleep(0)
        reader.feed_data(data[pos:])
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    try:
        if listing:
            lines = await stream.read_lines()
            assert all(line.endswith(b"\r\n") for line in lines)
            got = b"".join(lines)
        else:
            out = io.BytesIO()
            written = await stream.read_multiline(out)
            got = out.getvalue()
            assert written == len(got)
    except MailboxProtocolError as exc:
        assert stream._reader is None, "a protocol error must close the connection"
        assert exc.message and exc.cause and exc.fix
        await feeder
        return "protocol", b"", b""
    except MailboxConnectionError as exc:
        assert exc.message and exc.fix
        await feeder
        return "dropped", b"", b""
    await feeder
    # The stream may read past the "." line; what it keeps for the next reply is unread, too.
    rest = bytes(stream._head) + await reader.read()
    assert len(stream.transcript) <= 200
    return "ok", got, rest


#: Fragments of multi-line data a recipe byte can stand for.
_DATA_TOKENS = [
    b"\r\n", b"\n", b"\r", b"\0", b".", b"..", b".\r\n", b".\n", b"\r\n.\r\n", b"\n.\n", b"..\r\n",
    b". \r\n", b"\r\r\n", b"\n\n", b"\xff\xfe", b"\t", b" ", b"+OK next\r\n", b"From x", b"\x1a",
    b"y" * 7, b"y" * 15, b"y" * 16, b"y" * 39, b"y" * 63, b"y" * 64, b"y" * 200, b"y" * 1023, b"y" * 1024,
]
_LIMITS = [1, 2, 3, 8, 16, 40, 64, 1024]


@PROPERTY
@given(raw=st.binary(max_size=300))
def _prop_reader(raw: bytes) -> None:
    count("multi-line reader")
    head, recipe = raw[:3].ljust(3, b"\0"), raw[3:]
    limit = _LIMITS[head[0] % len(_LIMITS)]
    cuts = [1 + (b % 37) for b in head[1:2] * (head[2] % 6)] + [1 + b % 5 for b in recipe[:3]]
    data = decode_recipe(recipe, _DATA_TOKENS)
    # The unread rest must match too: whatever follows the terminating "." is kept for the next reply.
    listing = bool(head[2] & 1)
    got = _LOOP[0].run_until_complete(read_fed(data, limit=limit, cuts=cuts, listing=listing))
    assert got == model_read(data, limit, listing=listing), data


_LOOP: list[asyncio.AbstractEventLoop] = []


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    new = asyncio.new_event_loop()
    _LOOP[:] = [new]
    yield new
    _LOOP.clear()
    new.close()


def test_multiline_reader_matches_model(record_property: Record, loop: asyncio.AbstractEventLoop) -> None:
    """Any bytes, in any chunks, with any line limit: the reader does exactly what the model says.

    Covers dot-unstuffing, bare LF -> CRLF, lone CR and NUL kept, over-long
    lines -> MailboxProtocolError (connection closed), EOF before "." ->
    MailboxConnectionError, and nothing read beyond the terminating line.
    """
    run("multi-line reader", _prop_reader, record_property)


# ------------------------------------------------------------- round trips

@PROPERTY
@given(raw=st.binary(max_size=300))
def _prop_roundtrip(raw: bytes) -> None:
    count("multi-line round trip")
    loop = _LOOP[0]
    bare_lf = bool(raw[:1]) and raw[0] & 1 == 1
    cuts = [1 + b % 64 for b in raw[1:4]]
    message = decode_recipe(raw[4:], _DATA_TOKENS)
    lines = message.split(b"\n")
    eol = b"\n" if bare_lf else b"\r\n"
    if bare_lf:  # with a bare LF ending, a CR before it cannot be told from a CRLF
        lines = [line.rstrip(b"\r") for line in lines]
    stuffed = b"".join((b"." + line if line.startswith(b".") else line) + eol for line in lines) + b"." + eol
    outcome, got, rest = loop.run_until_complete(read_fed(stuffed, limit=len(stuffed) + 1, cuts=cuts, listing=False))
    assert (outcome, rest) == ("ok", b"")
    assert got == b"".join(line + b"\r\n" for line in lines)
    assert got.count(b"\0") == message.count(b"\0")
    # The same bytes as a whole message, framed as the scripted server frames it, read back canonical.
    got = loop.run_until_complete(read_fed(frame(message) + b"+OK", limit=2 * len(message) + 8, cuts=cuts, listing=False))
    assert got == ("ok", pop3_canonical(message), b"+OK")


def test_multiline_round_trip(record_property: Record, loop: asyncio.AbstractEventLoop) -> None:
    """Dot-stuffed lines (CRLF or bare LF) and framed messages come back byte for byte, NULs included."""
    run("multi-line round trip", _prop_roundtrip, record_property)


@pytest.mark.parametrize("limit", [16, 1024])
def test_overlong_line_boundary(loop: asyncio.AbstractEventLoop, limit: int) -> None:
    """In a listing a line of exactly max_line bytes is read and one byte more is a protocol error;
    in message data a longer line is still mail and comes through whole."""
    fits = b"z" * limit + b"\n.\r\n"
    assert loop.run_until_complete(read_fed(fits, limit=limit, cuts=[], listing=True))[:2] == \
        ("ok", b"z" * limit + b"\r\n")
    over = b"z" * (limit + 1) + b"\n.\r\n"
    assert loop.run_until_complete(read_fed(over, limit=limit, cuts=[3] * 10, listing=True))[0] == "protocol"
    long_data = b"." + b"z" * (3 * limit) + b"\r" + b"\n.\r\n"
    assert loop.run_until_complete(read_fed(long_data, limit=limit, cuts=[3] * 10, listing=False))[:2] == \
        ("ok", b"z" * (3 * limit) + b"\r\n")


@pytest.mark.parametrize("path", corpus("replies"), ids=lambda p: p.name)
def test_reply_corpus_as_multiline_data(loop: asyncio.AbstractEventLoop, path: Path) -> None:
    """The same corpus as the body of a RETR answer: the model decides the outcome."""
    data = path.read_bytes()
    for limit in (8, 4096):
        outcome, got, _rest = loop.run_until_complete(read_fed(data, limit=limit, cuts=[5, 1, 7], listing=False))
        assert (outcome, got) == model_read(data, limit, listing=False)[:2]
