"""Hostile IMAP server output: the response parser, the response reader, and folder names.

Whatever bytes a server sends, the client either understands them or raises
a MailboxError that explains the problem (MailboxProtocolError for nonsense,
MailboxConnectionError when the stream ends early) - never another exception.

The reader is the real ``ImapStream.read_response``, driven through an
``asyncio.StreamReader`` fed in random chunks (``feed_data``/``feed_eof``):
no sockets, so a case costs microseconds. Its results are compared with an
independent model of IMAP framing (lines, ``{n}`` literals, bounds). Values
built from a recipe and written out as IMAP must parse back to themselves.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.errors import MailboxConnectionError, MailboxProtocolError
from pop3gui.core.imap.parse import (
    LiteralBody,
    Response,
    Value,
    decode_folder,
    encode_folder,
    fetch_items,
    number_of,
    parse_response,
    values,
)
from pop3gui.core.imap.stream import MAX_LITERALS, ImapStream
from tests.fuzz import corpus, count, decode_recipe, run

PROPERTY = settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

Record = Callable[[str, object], None]
WHERE = "imap.isp.example:993"

#: Fragments a recipe byte can stand for (see tests.fuzz.decode_recipe).
_TOKENS = [
    b"* ", b"P0001 ", b"+ ", b"OK ", b"NO ", b"BAD ", b"BYE ", b"PREAUTH ", b"\r\n", b"\n", b"\r", b" ", b"(", b")",
    b"[", b"]", b'"', b"\\", b"{", b"}", b"{0}\r\n", b"{3}\r\n", b"{5}\r\n", b"{70}\r\n", b"~{2}\r\n", b"{3+}\r\n",
    b"{99999999999999999999}\r\n", b"{1}\n", b"NIL", b"FETCH ", b"1 FETCH (", b"UID ", b"BODY[] ", b"BODY[] {4}\r\n",
    b"RFC822.SIZE ", b"EXISTS", b"7 EXPUNGE", b"[UIDVALIDITY ", b"[CAPABILITY IMAP4rev1 IDLE] ", b"LIST ",
    b"SEARCH ", b"\0", b"\xff", b"\xc3\xa9", b"\xd9\xa3", b"\xc2\xb2", b"0", b"1", b"12", b"4294967295",
    b"4294967296", b"99999999999", b"x" * 40, b"y" * 300, b"(" * 45, b")" * 45, b"\x01", b"\t", b"~/Mail",
    b"\\Seen", b"BODY[HEADER.FIELDS (FROM)]", b"\x7f", b"=?utf-8?q?x?=",
    # MAX_LITERALS is 64, and 16 and 64 are among the line limits: fragments that reach those bounds
    b" {0}\r\n" * 32, b"* 1 X {0}\r\n" + b" {0}\r\n" * 63, b"{16}\r\n", b"{64}\r\n", b"q" * 16,
    b"(UID \xc2\xb2 RFC822.SIZE \xef\xbc\x91)", b" \xd9\xa3\xd9\xa3 ", b"UID \xe2\x91\xa0",  # digits, not ASCII
]
#: How a generated response starts: mostly like a real one, so that the parser gets past the first word.
_HEADS = [b"* 1 FETCH (", b"* 2 FETCH ", b"* LIST ", b"* OK ", b"* OK [", b"P0001 NO ", b"P1 BAD [", b"* SEARCH ",
          b"+ ", b"* CAPABILITY ", b"* 3 ", b"* BYE ", b"* ", b"P0002 ", b"", b"* ID ("]
_LITERALS = [b"", b"a", b"abc", b"\r\n", b")\r\n", b"{3}\r\n", b"\0\xff", b"* OK\r\n", b"z" * 100]


def _explained(exc: MailboxProtocolError | MailboxConnectionError) -> None:
    assert exc.message and exc.cause and exc.fix
    assert WHERE in exc.message and len(exc.message) < 400


def _check_value(value: Value, depth: int = 0) -> None:
    assert depth <= 42
    if isinstance(value, list):
        for item in value:
            _check_value(item, depth + 1)
    else:
        assert value is None or isinstance(value, str | bytes)


def _check_response(r: Response) -> None:
    assert isinstance(r.tag, str) and r.tag and " " not in r.tag
    assert r.kind and r.kind == r.kind.upper()
    assert r.number is None or 0 <= r.number < 10**10
    assert r.text.isprintable() and len(r.text) <= 503
    assert "]" not in r.code
    if r.is_status or r.tag == "+":
        assert r.data == []
    for item in r.data:
        _check_value(item)
    if r.kind == "FETCH":
        try:
            items = fetch_items(r, WHERE)
        except MailboxProtocolError as exc:
            _explained(exc)
        else:
            assert all(name == name.upper() for name in items)
    for item in _strings(r.data):
        try:
            n = number_of(item, WHERE, "UID")
        except MailboxProtocolError as exc:
            _explained(exc)
        else:
            assert item.isascii() and 0 <= n <= 0xFFFFFFFF


def _strings(data: list[Value]) -> Iterator[str]:
    for item in data:
        if isinstance(item, list):
            yield from _strings(item)
        elif isinstance(item, str):
            yield item


# ---------------------------------------------------------------- the parser


@PROPERTY
@given(raw=st.binary(max_size=200))
def _prop_parser(raw: bytes) -> None:
    count("IMAP response parser")
    head, recipe = raw[:2].ljust(2, b"\0"), raw[2:]
    text = _HEADS[head[0] >> 2 & 15] + decode_recipe(recipe, _TOKENS)
    # A 0xFE byte in the recipe decodes to itself: there the text is cut and a literal put in between.
    pieces = text.split(b"\xfe")
    if head[0] & 1:  # as the reader cuts them: every piece but the last ends with a literal's announcement
        pieces = [p + b"{%d}\r\n" % (i % 7) for i, p in enumerate(pieces[:-1])] + pieces[-1:]
    literals: list[bytes | LiteralBody] = [
        LiteralBody(i) if head[1] & 1 << (i % 8) else _LITERALS[(head[1] + i) % len(_LITERALS)]
        for i in range(len(pieces) - 1)]
    if head[0] & 2 and literals:  # now and then, out of step
        literals.pop()
    try:
        response = parse_response(pieces, literals, WHERE)
    except MailboxProtocolError as exc:
        _explained(exc)
    else:
        _check_response(response)
    try:
        got = values(pieces, literals, WHERE)
    except MailboxProtocolError as exc:
        _explained(exc)
    else:
        for item in got:
            _check_value(item)


def test_parser_any_pieces_and_literals(record_property: Record) -> None:
    """parse_response and values: any pieces and literals -> a Response (values) or MailboxProtocolError."""
    run("IMAP response parser", _prop_parser, record_property)


# ---------------------------------------------------------- written and read


_ATOMS = ["UID", "12", "0", "\\Seen", "\\Deleted", "RFC822.SIZE", "BODY[]", "BODY[HEADER.FIELDS (FROM TO)]",
          "~/Mail/foo", "Entw&APw-rfe", "INBOX.Sent", "*", "%", "a-b_c.d", "\u00e9t\u00e9", "[Gmail]/All"]
_STRINGS = ["", " ", "a b", 'say "hi"', "back\\slash", "NIL", "(", ")", "{3}", "caf\u00e9", "\u65e5\u672c", "~{2}"]
_BYTES = [b"", b"\0", b"a\r\nb", b")\r\n", b"{3}\r\n", b"\xff\xfe", b"* 1 FETCH (\r\n", b"x" * 70, b"NIL",
          b"y" * 16, b"z" * 64]


def build(raw: bytes) -> list[Value]:
    """One to four values (atoms, numbers, quoted strings, literals, NIL, nested lists) from a recipe."""
    it = iter(raw)

    def node(depth: int) -> Value:
        b = next(it, 0)
        kind = b % 6 if depth < 8 else b % 5
        if kind == 0:
            return _ATOMS[(b >> 3) % len(_ATOMS)]
        if kind == 1:
            return _STRINGS[(b >> 3) % len(_STRINGS)]
        if kind == 2:
            return _BYTES[(b >> 3) % len(_BYTES)]
        if kind == 3:
            return None
        if kind == 4:
            return str(b * 1000 + next(it, 0))
        return [node(depth + 1) for _ in range(next(it, 0) % 5)]

    return [node(0) for _ in range(next(it, 0) % 4 + 1)]


def write(items: list[Value], pieces: list[bytes], literals: list[bytes]) -> None:
    """Append *items* as space-separated IMAP to pieces[-1], cutting a new piece after each literal."""
    for i, item in enumerate(items):
        if i:
            pieces[-1] += b" "
        if item is None:
            pieces[-1] += b"NIL"
        elif isinstance(item, bytes):
            pieces[-1] += b"{%d}\r\n" % len(item)
            literals.append(item)
            pieces.append(b"")
        elif isinstance(item, list):
            pieces[-1] += b"("
            write(item, pieces, literals)
            pieces[-1] += b")"
        elif item in _STRINGS:
            pieces[-1] += b'"' + item.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'
        else:
            pieces[-1] += item.encode()


@PROPERTY
@given(raw=st.binary(max_size=120))
def _prop_written(raw: bytes) -> None:
    count("IMAP values written and read")
    items = build(raw)
    pieces, literals = [b"* 4 FETCH "], []  # type: ignore[var-annotated]
    write([items], pieces, literals)
    pieces[-1] += b"\r\n"
    response = parse_response(pieces, list(literals), WHERE)
    assert (response.kind, response.number) == ("FETCH", 4)
    assert response.data == [items]
    pieces, literals = [b""], []
    write(items, pieces, literals)
    pieces[-1] += b"\n"
    assert values(pieces, list(literals), WHERE) == items


def test_values_written_as_imap_read_back(record_property: Record) -> None:
    """Atoms, quoted strings (escapes, UTF-8), literals (any bytes), NIL and nested lists come back as written."""
    run("IMAP values written and read", _prop_written, record_property)


# --------------------------------------------------------------- the reader


def model_read(data: bytes, limit: int, max_body: int, reads: int) -> list[tuple[object, ...]]:
    """What reading up to *reads* responses from *data* must give.

    A line is everything up to its LF, at most *limit* bytes before it. A line
    ending in ``{n}`` (or ``{n+}``, ``~{n}``; CR LF or LF) announces n octets
    that follow it; a body (the text so far ends with ``BODY[] {n}``) goes to
    its sink and may have up to *max_body*, any other literal up to *limit*.
    More than MAX_LITERALS literals is an error. The stream ending early is a
    dropped connection; after an error nothing more is read.
    """
    out: list[tuple[object, ...]] = []
    pos = 0
    for _ in range(reads):
        pieces: list[bytes] = []
        literals: list[bytes | LiteralBody] = []
        sunk: list[bytes] = []
        while True:
            end = data.find(b"\n", pos)
            if end == -1:
                out.append(("protocol",) if len(data) - pos > limit else ("dropped",))
                return out
            if end - pos > limit:
                out.append(("protocol",))
                return out
            line = data[pos:end + 1]
            pos = end + 1
            pieces.append(line)
            size = _announced(line)
            if size is None:
                break
            if len(literals) >= MAX_LITERALS:
                out.append(("protocol",))
                return out
            body = _is_body(b"".join(pieces))
            if size > (max_body if body else limit):
                out.append(("protocol",))
                return out
            if len(data) - pos < size:
                out.append(("dropped",))
                return out
            chunk = data[pos:pos + size]
            pos += size
            if body:
                sunk.append(chunk)
                literals.append(LiteralBody(size))
            else:
                literals.append(chunk)
        try:
            response = parse_response(pieces, literals, WHERE)
        except MailboxProtocolError:
            out.append(("protocol",))
            return out
        out.append(("ok", response, sunk))
    return out


def _announced(line: bytes) -> int | None:
    """The size a line announces at its end, by hand: ``{digits}`` or ``{digits+}`` before CR LF or LF."""
    body = line[:-1]
    if body.endswith(b"\r"):
        body = body[:-1]
    if not body.endswith(b"}") or b"{" not in body:
        return None
    inside = body[body.rindex(b"{") + 1:-1]
    if inside.endswith(b"+"):
        inside = inside[:-1]
    if not 1 <= len(inside) <= 20 or not all(48 <= c <= 57 for c in inside):
        return None
    return int(inside)


def _is_body(text: bytes) -> bool:
    """The test's rule for which literal is a message body: ``BODY[] {n}`` ends the text so far."""
    head = text.rstrip(b"\r\n")
    head = head[:head.rindex(b"{")].rstrip(b"~")
    return head.endswith(b"BODY[] ")


async def read_fed(data: bytes, *, limit: int, max_body: int, cuts: list[int],
                   reads: int) -> list[tuple[object, ...]]:
    """Feed *data* in chunks to a real ImapStream's reader and read up to *reads* responses."""
    stream = ImapStream(WHERE, timeout=10, max_line=limit)
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
    out: list[tuple[object, ...]] = []
    try:
        for _ in range(reads):
            sinks: list[io.BytesIO] = []

            def body_sink(text: bytes) -> io.BytesIO | None:
                if not _is_body(text):
                    return None
                sinks.append(io.BytesIO())
                return sinks[-1]

            try:
                response = await stream.read_response("reading", body_sink=body_sink, max_body=max_body)
            except MailboxProtocolError as exc:
                assert stream._reader is None, "a protocol error must close the connection"
                _explained(exc)
                out.append(("protocol",))
                break
            except MailboxConnectionError as exc:
                assert stream._reader is None
                _explained(exc)
                out.append(("dropped",))
                break
            _check_response(response)
            out.append(("ok", response, [s.getvalue() for s in sinks]))
    finally:
        await feeder
    assert len(stream.transcript) <= 200 and all(len(line) <= 520 for line in stream.transcript)
    return out


_LIMITS = [8, 16, 40, 64, 100, 256, 1024, 65536]


def _valid(raw: bytes) -> bytes:
    """One valid response from a recipe: a status, a FETCH with a body, or untagged data with literals."""
    kind = raw[0] % 3 if raw else 0
    if kind == 0:
        return [b"* OK [UIDVALIDITY 7] x\r\n", b"P0001 OK done\n", b"+ \r\n", b"* 3 EXISTS\r\n"][len(raw) % 4]
    if kind == 1:
        body = decode_recipe(raw[1:], _TOKENS)
        return b"* 2 FETCH (UID 9 BODY[] {%d}\r\n" % len(body) + body + b")\r\n"
    items = build(raw[1:])
    pieces, literals = [b"* LIST "], []  # type: ignore[var-annotated]
    write(items, pieces, literals)
    return b"".join(p + lit for p, lit in zip(pieces, [*literals, b""], strict=True)) + b"\r\n"


def responses(recipe: bytes) -> list[bytes]:
    """Responses from a recipe: each byte n starts one made of the next n % 48 bytes, valid three times in four
    (a status, a FETCH with a body, untagged data with literals), else bytes read as a recipe of fragments."""
    out = []
    pos = 0
    while pos < len(recipe):
        n = recipe[pos]
        segment = recipe[pos + 1:pos + 1 + n % 48]
        pos += 1 + n % 48
        out.append(decode_recipe(segment, _TOKENS) if n >> 6 == 3 else _valid(bytes([n >> 6]) + segment))
    return out


@PROPERTY
@given(raw=st.binary(max_size=300))
def _prop_reader(raw: bytes) -> None:
    count("IMAP response reader")
    head, recipe = raw[:4].ljust(4, b"\0"), raw[4:]
    limit = _LIMITS[head[0] % len(_LIMITS)]
    max_body = [0, 64, 100_000, 100_000][head[1] % 4]
    cuts = [1 + (b % 37) for b in head[2:3] * (head[3] % 6)] + [1 + b % 5 for b in recipe[:3]]
    parts = responses(recipe)
    data = b"".join(parts)
    reads = len(parts) + 1
    got = _LOOP[0].run_until_complete(read_fed(data, limit=limit, max_body=max_body, cuts=cuts, reads=reads))
    assert got == model_read(data, limit, max_body, reads), data


_LOOP: list[asyncio.AbstractEventLoop] = []


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    new = asyncio.new_event_loop()
    _LOOP[:] = [new]
    yield new
    _LOOP.clear()
    new.close()


def test_response_reader_matches_model(record_property: Record, loop: asyncio.AbstractEventLoop) -> None:
    """Any mix of valid and broken responses, in any chunks, with any line and body limits: the reader
    does exactly what the model says, and an error closes the connection."""
    run("IMAP response reader", _prop_reader, record_property)


@pytest.mark.parametrize("path", corpus("imap"), ids=lambda p: p.name)
def test_imap_corpus(loop: asyncio.AbstractEventLoop, path: Path) -> None:
    """Each corpus file is what a server sent; the model decides what reading it gives, at two line limits."""
    data = path.read_bytes()
    for limit in (64, 65536):
        for cuts in ([], [1] * 40):
            got = loop.run_until_complete(read_fed(data, limit=limit, max_body=1 << 20, cuts=cuts, reads=8))
            assert got == model_read(data, limit, 1 << 20, 8)
    if path.name.startswith("ok-"):  # a file named ok-* reads whole at the larger limit
        got = loop.run_until_complete(read_fed(data, limit=65536, max_body=1 << 20, cuts=[], reads=100))
        assert got[-1] == ("dropped",) and all(g[0] == "ok" for g in got[:-1])


# --------------------------------------------------------------- folder names


@PROPERTY
@given(name=st.text(max_size=30))
def _prop_folders(name: str) -> None:
    count("IMAP folder names")
    wire = encode_folder(name)
    assert all(0x20 <= ord(c) <= 0x7E for c in wire)
    assert decode_folder(wire) == name
    assert decode_folder(name) is not None  # any text from a server decodes to something, never raises
    if all(0x20 <= ord(c) <= 0x7E and c != "&" for c in name):
        assert wire == name


def test_folder_names_round_trip(record_property: Record) -> None:
    """Any text -> modified UTF-7 of printable ASCII only -> the same text back; any server text decodes."""
    run("IMAP folder names", _prop_folders, record_property)
