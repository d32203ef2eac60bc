"""Addresses and domains: one normal form, and address lists read without ever naming a stranger."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.mail.addresses import address_list, domain_of, normalize_address, normalize_domain

_PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("contoso.com", "contoso.com"),
        ("CONTOSO.Com", "contoso.com"),
        (" contoso.com. ", "contoso.com"),
        ("Dömain.com", "xn--dmain-jua.com"),
        ("XN--DMAIN-JUA.COM", "xn--dmain-jua.com"),
        ("straße.de", "xn--strae-oqa.de"),  # IDNA 2008: ß is kept, not mapped to "ss"
        ("ｃｏｎｔｏｓｏ。ｃｏｍ", "contoso.com"),  # full-width letters and dot
        ("localhost", "localhost"),
        ("", None),
        ("a..com", None),
        ("-a.com", None),
        ("a-.com", None),
        ("under_score.com", None),
        ("sp ace.com", None),
        ("[192.0.2.1]", None),
        ("192.0.2.1", None),
        ("x" * 64 + ".com", None),
        ("bad\ufffd.com", None),
        ("emoji\U0001f600.com", None),
        ("xn--zz.com", None),  # not valid Punycode
    ],
)
def test_normalize_domain(domain: str, expected: str | None) -> None:
    assert normalize_domain(domain) == expected


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("Local@Dömain.com", "Local@xn--dmain-jua.com"),
        ("alice@CONTOSO.COM", "alice@contoso.com"),
        (" alice@contoso.com ", "alice@contoso.com"),
        ("<alice@contoso.com>", "alice@contoso.com"),
        ('"john.doe"@contoso.com', "john.doe@contoso.com"),
        ('"john doe"@contoso.com', '"john doe"@contoso.com'),
        ("jörg@dömain.de", "jörg@xn--dmain-jua.de"),
        ("Alice <alice@contoso.com>", None),
        ("alice", None),
        ("alice@", None),
        ("@contoso.com", None),
        ("a@b@contoso.com", None),
        ("alice@[192.0.2.1]", None),
        ("al\x00ice@contoso.com", None),
        ("", None),
    ],
)
def test_normalize_address(addr: str, expected: str | None) -> None:
    assert normalize_address(addr) == expected



@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alice@contoso.com", ["alice@contoso.com"]),
        ("<Alice@CONTOSO.com>", ["Alice@contoso.com"]),
        ('"Doe, John" <john@contoso.com>, b@Dömain.de', ["john@contoso.com", "b@xn--dmain-jua.de"]),
        ("Team: a@contoso.com, b@contoso.com;", ["a@contoso.com", "b@contoso.com"]),
        ("a@contoso.com; b@contoso.com", ["a@contoso.com", "b@contoso.com"]),
        ("undisclosed-recipients:;", []),
        ("not an address, ok@contoso.com", ["ok@contoso.com"]),
        ("alice@contoso.com <mallory@evil.example>", []),
        ("", []),
    ],
)
def test_address_list(text: str, expected: list[str]) -> None:
    assert address_list(text) == expected


def test_domain_of() -> None:
    assert domain_of("alice@contoso.com") == "contoso.com"
    assert domain_of('"a@b"@contoso.com') == "contoso.com"
    assert domain_of("contoso.com") == "contoso.com"


@_PROPERTY
@given(st.text(max_size=200))
def test_any_address_text_never_raises_and_normalises_to_a_fixed_point(text: str) -> None:
    for found in address_list(text):
        assert normalize_address(found) == found
    normal = normalize_address(text)
    if normal is not None:
        assert normalize_address(normal) == normal
    domain = normalize_domain(text)
    if domain is not None:
        assert normalize_domain(domain) == domain
        assert domain.isascii() and domain == domain.lower()



_atom = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_domain = st.sampled_from(["contoso.com", "Dömain.de", "evil.example", "CONTOSO.COM"])
_addr_spec = st.builds(lambda a, d: f"{a}@{d}", _atom, _domain) | st.builds(
    lambda a, d: f'"{a} {a}"@{d}', _atom, _domain
)
_display = st.sampled_from(
    [
        '"Doe, John"',
        "Alice",
        "=?utf-8?q?M=C3=BCller?=",
        '"a@contoso.com"',
        '"x (y) \\" z"',
        "John Q. Public",
    ]
)
_mailbox = st.one_of(
    _addr_spec,
    st.builds(lambda n, a: f"{n} <{a}>", _display, _addr_spec),
    st.builds(lambda a, c: f"{a} ({c})", _addr_spec, st.sampled_from(["c", "a, b", "x: y;"])),
)
_entry = st.one_of(
    _mailbox,
    st.builds(lambda ms: "Team: " + ", ".join(ms) + ";", st.lists(_mailbox, max_size=4)),
)


@_PROPERTY
@given(st.lists(_entry, min_size=1, max_size=12))
def test_long_lists_read_like_short_ones(entries: list[str]) -> None:
    """Long headers are parsed mailbox by mailbox; that must not change the result."""
    text = ", ".join(entries)
    assert address_list(text, whole_limit=0) == address_list(text)

