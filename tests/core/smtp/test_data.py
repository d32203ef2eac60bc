"""SMTP DATA encoding in blocks gives the same bytes as encoding the message whole."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pop3gui.core.smtp.data import BLOCK, DataEncoder, MessageSource, encode_whole

FRAGMENTS = [b"\r\n", b"\r", b"\n", b".", b"..", b"a", b"bc", b"\r\n.", b"\n.", b"\x00", b"\xe4"]


def reference(message: bytes) -> bytes:
    """RFC 5321 4.5.2 done the obvious way: CRLF everywhere, leading dots doubled, "." CRLF."""
    lines = re.split(rb"\r\n|\r|\n", message)
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n" for line in lines) + b".\r\n"


@settings(max_examples=2000, deadline=None)
@given(parts=st.lists(st.sampled_from(FRAGMENTS), max_size=20), cuts=st.lists(st.integers(1, 5), max_size=20))
def test_any_split_into_blocks_encodes_like_the_whole(parts: list[bytes], cuts: list[int]) -> None:
    message = b"".join(parts)
    encoder, out, pos = DataEncoder(), b"", 0
    for size in cuts + [len(message)]:
        out += encoder.feed(message[pos:pos + size])
        pos += size
    out += encoder.finish()
    assert out == reference(message) == encode_whole(message)


def test_a_file_is_read_in_blocks_after_the_prefix(tmp_path: Path) -> None:
    body = (b"x" * 100 + b"\r\n") * (3 * BLOCK // 100)
    path = tmp_path / "m.eml"
    path.write_bytes(body)
    source = MessageSource.from_file(path, prefix=b"Received: here\r\n")
    blocks = list(source.blocks())
    assert blocks[0] == b"Received: here\r\n" and b"".join(blocks[1:]) == body
    assert max(len(b) for b in blocks) <= BLOCK and len(blocks) >= 4
    assert source.size() == len(body) + 16 and source.is_ascii()
    path.write_bytes(body + b"\xe4")
    assert not source.is_ascii()
