"""Hostile header blocks: recipient resolution never raises and never relays.

The worker reads a downloaded message's headers with ``parse_headers`` and
resolves a global mailbox's recipients with ``resolve_global``. Whatever the
bytes (encoded words, groups, comments, IDN, thousands of addresses, missing
headers, 8-bit garbage), resolution returns, and every recipient is in a
local domain - or the message goes to the undeliverable mailbox alone.

tests/core/mail/test_recipients.py and test_addresses.py hold the worked examples and a
light property run; this file is the heavy, generated one.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.config.model import DEFAULT_ENVELOPE_HEADERS
from pop3gui.core.mail.addresses import normalize_address
from pop3gui.core.mail.headers import header_text
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.mail.messages import trace_count
from pop3gui.core.mail.recipients import Resolution, envelope_sender, parse_headers, resolve_global, resolve_user
from pop3gui.core.mail.routing import RoutingRule
from tests.fuzz import corpus, count, decode_recipe, run

PROPERTY = settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

Record = Callable[[str, object], None]

ADMIN = "postmaster@contoso.com"
LOCAL = LocalDomains(["contoso.com", "Dömain.de", "xn--strae-oqa.de"])
RULES = [
    RoutingRule("to-cc", "sales", "sales@contoso.com"),
    RoutingRule("to-cc", "@", "x@evil.example"),
    RoutingRule("subject", "rechnung", "billing@dömain.de"),
    RoutingRule("subject", "ü", "not an address"),
    RoutingRule("to-cc", "=?", "\r\nRCPT TO:<x@evil.example>"),
]

_NAMES = ["To", "Cc", "CC", "cc", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "Subject",
          "Return-Path", "From", "Received", "Resent-To", "Bcc", "X-Junk", "To ", " To", "T\0o"]
#: Fragments a recipe byte stands for: addresses, syntax, encoded words, IDN, garbage.
_TOKENS = [s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s for s in [
    "\r\n", "\r\n ", "\r\n\t", "\n", "\r", "\0", " ", "\t", ",", ";", ":", "@", "<", ">", '"', "(", ")", "\\",
    "[", "]", ".", "alice@contoso.com", "BOB@CONTOSO.COM", "carol@contoso.com.", "jörg@dömain.de",
    "a@xn--dmain-jua.de", "user@straße.de", "x@contoso\uff0ecom", "y@contoso\u3002com", "mallory@evil.example",
    "eve@contoso.com.evil.example", "contoso.com", "@contoso.com", "sales", "Team: ", "Undisclosed recipients:;",
    '"alice@contoso.com"', '"Doe, John" ', "(comment, with: syntax;)", "((nested) comment)",
    "<@route.example:alice@contoso.com>", "alice@[127.0.0.1]", "alice@123.45", '"a\\"b"@contoso.com',
    "=?utf-8?q?", "=?UTF-8?B?", "=?iso-8859-1?q?", "=?x-unknown?q?", "?=", "=40", "=0D=0A", "=00", "=C3=BC",
    "YWxpY2VAY29udG9zby5jb20=", "DQpSQ1BUIFRPOjx4QGV2aWwuZXhhbXBsZT4=", "=?utf-8?q?a=40contoso.com?=",
    "=?utf-8?b?bWFsbG9yeUBldmlsLmV4YW1wbGU=?=", "\u202e", "\u200d", "\ufeff", "\ufffd", "ü", "\u0130",
    b"\xff", b"\x80", b"\xc3", b"\xed\xa0\x80", "\x7f", "\x1b", "Rechnung", "x" * 200,
]]


def header_block(raw: bytes) -> bytes:
    """A generated header block: every line a random header name and a recipe value."""
    if raw[:1] == b"\xfe":  # now and then, raw bytes as drawn (garbage, no header syntax at all)
        return raw[1:]
    lines = []
    for piece in raw.split(b"\xfd"):
        if not piece:
            continue
        name = _NAMES[piece[0] % len(_NAMES)].encode("utf-8")
        lines.append(name + b": " + decode_recipe(piece[1:], _TOKENS) + b"\r\n")
    return b"".join(lines) + (b"\r\nbody\r\nTo: late@contoso.com\r\n" if raw[-1:] == b"\x00" else b"")


def check_resolution(result: Resolution) -> None:
    """The no-relay invariant, plus what RCPT TO needs to be safe."""
    assert result.source in ("envelope", "headers", "undeliverable")
    assert len(set(result.recipients)) == len(result.recipients)
    if result.source == "undeliverable":
        assert result.recipients == (ADMIN,)
    else:
        assert result.recipients
    for address in result.recipients:
        assert address == ADMIN or LOCAL.is_local(address), address
        assert normalize_address(address) == address
        assert not any(c in address for c in "\r\n\0<>"), address
    for address in result.foreign:
        assert not LOCAL.is_local(address)


def resolve_everything(raw: bytes) -> Resolution:
    """What the worker does with a message's header block, short of SMTP."""
    headers = parse_headers(raw)
    for name in ("Message-ID", "Subject", "From", "To"):
        assert isinstance(header_text(headers, name), str)
    trace_count((str(v) for k, v in headers.raw_items() if k.lower() == "received"), "alice")
    sender = envelope_sender(headers)
    assert sender == "" or normalize_address(sender) == sender
    assert not any(c in sender for c in "\r\n\0<>")
    result = resolve_global(headers, envelope_headers=DEFAULT_ENVELOPE_HEADERS, rules=RULES, local=LOCAL,
                            undeliverable_to=ADMIN)
    check_resolution(result)
    return result


@PROPERTY
@given(raw=st.binary(max_size=300))
def _prop_headers(raw: bytes) -> None:
    count("header parser")
    resolve_everything(header_block(raw))


def test_any_header_block_resolves_without_relaying(record_property: Record) -> None:
    run("header parser", _prop_headers, record_property)


@pytest.mark.parametrize("deliver_to", ["alice@contoso.com", "", " ", "\r\n", "not an address", "\0@x", "ü" * 300])
def test_user_mailbox_resolution_never_raises(deliver_to: str) -> None:
    result = resolve_user(deliver_to)
    assert result.source == "mapping" and len(result.recipients) <= 1


def _many_addresses(seed: int, n: int) -> bytes:
    """*n* addresses in To/Cc/Delivered-To with groups, comments, names and garbage mixed in."""
    rng = random.Random(seed)
    parts = []
    for i in range(n):
        domain = rng.choice(["contoso.com", "CONTOSO.COM", "dömain.de", "evil.example", "xn--dmain-jua.de",
                             "fabrikam.example", "contoso.com.evil.example"])
        addr = f"user{i}@{domain}"
        parts.append(rng.choice([
            addr, f"<{addr}>", f'"Name {i}, Sales" <{addr}>', f"{addr} (c{i})", f"=?utf-8?q?N=C3=BC{i}?= <{addr}>",
            f"Team{i}: {addr};", f'"unterminated {addr}', f"<{addr}", "\udcff", "", "@", f"{addr}\x00",
        ]))
    block = []
    for name in ("To", "Cc", "Delivered-To"):
        chunk = parts[: len(parts) // 3]
        parts = parts[len(chunk):]
        block.append(f"{name}: " + rng.choice([", ", ",\r\n ", ";"]).join(chunk))
    block.append("To: " + ", ".join(parts))
    return ("\r\n".join(block) + "\r\n").encode("utf-8", "surrogateescape")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n=st.integers(1000, 4000))
def _prop_many(seed: int, n: int) -> None:
    count("header parser, thousands of addresses")
    start = time.perf_counter()
    result = resolve_everything(_many_addresses(seed, n))
    assert time.perf_counter() - start < 20, "resolution must stay linear in the header length"
    assert len(result.recipients) + len(result.foreign) <= n + 4


def test_thousands_of_addresses_resolve_without_relaying(record_property: Record) -> None:
    """1000-4000 addresses per message, in every syntax at once: linear time, no relay."""
    run("header parser, thousands of addresses", _prop_many, record_property, minimum=12)


@pytest.mark.parametrize("path", corpus("headers"), ids=lambda p: p.name)
def test_header_corpus(path: Path) -> None:
    """Each corpus file is a header block (or a whole message); an .expect file lists the recipients."""
    result = resolve_everything(path.read_bytes())
    expect = path.with_suffix(".expect")
    if expect.exists():
        assert list(result.recipients) == expect.read_text(encoding="utf-8").split()


def test_missing_headers_go_to_the_undeliverable_mailbox() -> None:
    for raw in (b"", b"\r\n", b"\r\n\r\nTo: alice@contoso.com\r\n", b"just a body line\r\n"):
        assert resolve_everything(raw).recipients == (ADMIN,)


# --- plain-address fast path ------------------------------------------------------

_ATOM = st.one_of(  # empty atoms give stray dots
    st.text(alphabet="abcXYZ019!#$%&'*+/=?^_`{|}~-", max_size=5),
    st.sampled_from(["=?utf-8?q?x=0D=0Ay?=", "=?utf-8?q?y=00?=", "=?utf-8?b?YWxpY2U=?=", "=?x?q?a?="]),
)
_LABEL = st.text(alphabet="abcXYZ019-_", max_size=5)
#: ``local@host`` and its near misses: stray dots, odd brackets, blanks, separators, non-ASCII.
_ADDRESS_TEXT = st.one_of(
    st.builds(lambda lead, local, domain, brackets, trail: lead + brackets[0] + f"{local}@{domain}" + brackets[1]
              + trail,
              st.sampled_from(["", " ", "\t", "  ", "\n", "\u00a0"]),
              st.lists(_ATOM, min_size=1, max_size=3).map(".".join),
              st.lists(_LABEL, min_size=1, max_size=3).map(".".join),
              st.sampled_from([("", ""), ("<", ">"), ("<", ""), ("", ">"), ("<<", ">>")]),
              st.sampled_from(["", " ", "\t", " \t", "\r\n", ",", ";"])),
    st.text(alphabet="ab.@<>\"()[]\\,:; \t\u00f6\u00a0-_", max_size=16),
)


@PROPERTY
@given(_ADDRESS_TEXT)
def test_plain_address_shortcut_agrees_with_the_parser(text: str) -> None:
    """The regex shortcut for plain addresses must give exactly what the email package's parser gives."""
    from pop3gui.core.mail import addresses

    assert normalize_address(text) == addresses._normalize_parsed(text), text
    assert addresses.address_list(text) == addresses._address_list_parsed(text), text


_ID_ATOM = st.text(alphabet="abc019!#$%&'*+/=?^_`{|}~-:;,() \"[]\\@<>", max_size=5)
_HEADER_VALUE = st.one_of(
    st.text(alphabet="ab <>@.[]()\"\\=?:;,-_\t\u00f6~!", max_size=24),
    st.builds(lambda local, domain, ends: ends[0] + f"{local}@{domain}" + ends[1],
              st.lists(_ID_ATOM, min_size=1, max_size=3).map(".".join),
              st.lists(_ID_ATOM, min_size=1, max_size=3).map(".".join),
              st.sampled_from([("<", ">"), ("<", ""), ("", ">"), (" <", "> "), ("<", ">x"), ("", "")])),
)


@PROPERTY
@given(_HEADER_VALUE, _HEADER_VALUE, st.sampled_from(["Message-ID", "Subject", "message-id"]))
def test_plain_header_shortcut_agrees_with_the_parser(first: str, second: str, name: str) -> None:
    """Taking a plain header value as it is must give what the header parser gives."""
    from pop3gui.core.mail import headers as header_module

    raw = f"{name}: {first}\r\nSubject: {second}\r\nMessage-ID: {second}\r\n\r\n".encode()
    headers = parse_headers(raw)
    for wanted in ("Message-ID", "Subject"):
        assert header_text(headers, wanted) == header_module._parsed_header_text(headers, wanted), raw
