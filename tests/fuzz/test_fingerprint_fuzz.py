"""The duplicate fingerprint on any bytes: never raises, never depends on chunking, ignores hop headers.

A recipe (tests.fuzz.decode_recipe) builds messages from nasty fragments:
folded and unfolded fields, hop fields, CR/LF in every combination, NUL,
8-bit bytes, no header/body separator, empty lines at the end. Each message
is cut at random places and fed in chunks; a hop field put in front of it and
its line endings turned to CRLF must not change the fingerprint, and one more
byte of body must.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.mail.fingerprint import message_fingerprint
from tests.fuzz import count, decode_recipe, run

PROPERTY = settings(max_examples=10_000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_TOKENS = [b"\r\n", b"\n", b"\r", b"\r\n\r\n", b"\n\n", b": ", b":", b"\t", b" ", b"\0", b"\xff\xfe",
           b"Subject: x", b"From: a@b", b"Message-ID: <m@x>", b"Date: Mon, 1 Jan 2024 00:00:00 +0000",
           b"Received: from hop", b"X-Spam-Status: No", b"\r\n folded", b"Content-Type: text/plain;\r\n\tcharset=x",
           b"=?utf-8?q?x?=", b"x" * 1000, b".\r\n", b"From ", b">From "]


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_any_message_any_chunking(record_property: Callable[[str, object], None]) -> None:
    @PROPERTY
    @given(st.binary(max_size=300), st.lists(st.integers(min_value=0, max_value=10_000), max_size=8))
    def prop(recipe: bytes, cuts: list[int]) -> None:
        count("fingerprint")
        data = decode_recipe(recipe, _TOKENS)
        whole = message_fingerprint([data])
        assert message_fingerprint(_chunks(data, cuts)) == whole
        if b"\r" not in data:  # a server that stores CRLF, one that adds a trace line: the same message
            assert message_fingerprint([data.replace(b"\n", b"\r\n")]) == whole
            if b"\n\n" in data and not data.startswith((b" ", b"\t", b"\n")):
                assert message_fingerprint([b"Received: by a hop\n" + data]) == whole
                assert message_fingerprint([data.rstrip(b"\n") + b"!\n"]) != whole

    run("fingerprint", prop, record_property)
