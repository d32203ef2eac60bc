"""Messages that are not RFC 5322 at all, through the real Connector.

Each odd message sits in a mailbox of the scripted POP3 server with a normal
message after it; one cycle of the real Connector delivers to the SMTP sink
(aiosmtpd). The odd one must be delivered byte for byte or quarantined with
a reason, the run must not crash, and the normal message must arrive.

Line endings, end to end: the POP3 client turns a bare LF into CRLF and keeps
a lone CR (tests.fuzz.pop3_canonical); aiosmtplib then rewrites every bare
LF and lone CR to CRLF and ends the data with CRLF before DATA
(aiosmtplib.protocol LINE_ENDINGS_REGEX); aiosmtpd hands over the bytes as
received, minus dot-stuffing. So "byte for byte" means: the sink's content is
our Received: line followed by smtp_canonical(pop3_canonical(original)).
aiosmtpd refuses lines over 1000 bytes (500) and data over 32 MiB (552):
such messages end up in quarantine, which is an allowed outcome here.
"""

from __future__ import annotations

import dataclasses
import random
import re
import resource
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pop3gui.core.events.model import EventId

from pop3gui.core.config.model import Config, DeliveryConfig
from tests.fuzz import pop3_canonical
from tests.support.rig import ADMIN, ALICE, Rig, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server
from tests.support.smtp_sink import SmtpSink

_LINE_ENDINGS = re.compile(rb"\r\n|\n|\r(?!\n)")


def smtp_canonical(data: bytes) -> bytes:
    """What aiosmtplib transmits for *data* (before dot-stuffing), as aiosmtpd records it."""
    data = _LINE_ENDINGS.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") or not data else data + b"\r\n"


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


def _junk(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(size))
    for _ in range(size // 20):  # plenty of NULs, lone CRs and short lines
        data[rng.randrange(size)] = rng.choice(b"\0\r\n\n.")
    return bytes(data)


ODD: dict[str, bytes] = {
    "binary-junk": _junk(1, 3000),
    "binary-junk-leading-space": b" \t" + _junk(2, 500),
    "nul-and-lone-cr": b"Subject: nul\0here\r\n\r\nbody\0\0 with\rlone CR\r and \r\r\n.\r\n..\r\n",
    "no-separator": b"Subject: no blank line\r\nFrom: x@fabrikam.example\r\nthis is the body, no colon\r\nmore\r\n",
    "header-only": b"Subject: only headers\r\nFrom: x@fabrikam.example\r\nTo: alice@contoso.com\r\n",
    "body-only": b"Hello,\r\n\r\nno headers at all in this one.\r\n.\r\n",
    "starts-with-blank-line": b"\r\nTo: alice@contoso.com\r\nSubject: in the body\r\n",
    "empty": b"",
    "single-dot": b".",
    "bare-lf": b"Subject: lf\n\nline one\nline two\n",
    "no-final-newline": b"Subject: x\r\n\r\nno newline at the end",
    "long-line-1500": b"Subject: long\r\n\r\n" + b"x" * 1500 + b"\r\n",
    "utf8-8bit-headers": "Subject: Grüße\r\nFrom: Jörg <jörg@dömain.de>\r\n\r\nÄÖÜ\r\n".encode(),
}


def _check(rig: Rig, sink: SmtpSink, original: bytes, subject_after: str) -> str:
    """The odd message was delivered exactly or quarantined with a reason; the next one was delivered."""
    normal = [r for r in sink.received if subject_after.encode() in r.content]
    assert len(normal) == 1 and normal[0].rcpt_tos == (ALICE,), [e.text for e in rig.events][-8:]
    odd = [r for r in sink.received if r is not normal[0]]
    quarantined = rig.quarantined()
    expected = smtp_canonical(pop3_canonical(original))
    if odd:
        assert len(odd) == 1 and not quarantined
        received_line, _, rest = odd[0].content.partition(b"\r\n")
        assert received_line.startswith(b"Received: from 127.0.0.1 ")
        assert rest == expected
        assert odd[0].rcpt_tos in ((ALICE,), (ADMIN.lower(),))
        return "delivered"
    assert len(quarantined) == 1, [e.text for e in rig.events][-8:]
    data, record = quarantined[0]
    assert data == pop3_canonical(original)
    assert record["reason"] and record["cause"] and record["fix"]
    return "quarantined"


@pytest.mark.parametrize("name", list(ODD))
async def test_odd_message_then_normal_one(tmp_path: Path, sink: SmtpSink, name: str) -> None:
    original = ODD[name]
    after = message("normal one after " + name)
    async with ScriptedPop3Server([original, after], password="pop3-S3cret!") as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        result = await rig.cycle()
        outcome = _check(rig, sink, original, "normal one after " + name)
        assert not result.accounts[0].failed, result.accounts[0].errors
        assert pop.mailbox == [], "both messages are handled and deleted on the server"
        assert rig.spool_is_empty()
    print(f"[odd message] {name}: {outcome}")


class _BigRig(Rig):
    """The shared rig with a size limit that lets a huge message through to SMTP."""

    @property
    def config(self) -> Config:
        base = super().config
        return dataclasses.replace(base, delivery=DeliveryConfig(undeliverable_to=ADMIN,
                                                                 max_message_kb=256 * 1024))


async def _one_line_body(tmp_path: Path, sink: SmtpSink, megabytes: int) -> None:
    # Built once in place (a bytearray grown in 1 MiB steps), then handed to the server's mailbox.
    body = bytearray(b"Subject: one line\r\nFrom: x@fabrikam.example\r\n\r\n")
    chunk = b"0123456789abcdef" * 65536
    for _ in range(megabytes):
        body += chunk
    body += b"\r\n"
    original = bytes(body)
    del body
    after = message("normal one after the big one")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    async with ScriptedPop3Server([original, after], password="pop3-S3cret!") as pop:
        rig = _BigRig(**{f.name: getattr(make_rig(tmp_path, pop, sink.port), f.name)
                         for f in dataclasses.fields(Rig)})
        for _ in range(2):  # a failed account retries next cycle: give it that chance
            await rig.cycle()
            if any(b"normal one after the big one" in r.content for r in sink.received):
                break
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        # The server holds the message and its framed copy; the client must not add many more.
        assert grown < 6 * len(original) + 256 * 2**20, f"peak memory grew by {grown >> 20} MiB"
        if len(original) > 32 * 2**20:  # over the test server's announced SIZE: left on the POP3 server, not sent
            assert len([e for e in rig.events if e.id == EventId.MESSAGE_TOO_BIG]) == 1
            assert [r for r in sink.received if b"normal one after the big one" in r.content]
            assert not rig.quarantined()
            return
        _check(rig, sink, original, "normal one after the big one")



async def test_20_mb_one_line_body_is_delivered_and_the_next_message_too(tmp_path: Path, sink: SmtpSink) -> None:
    await _one_line_body(tmp_path, sink, 20)


@pytest.mark.slow
async def test_100_mb_one_line_body(tmp_path: Path, sink: SmtpSink) -> None:
    await _one_line_body(tmp_path, sink, 100)


async def test_20_mb_body_of_short_lines_is_delivered(tmp_path: Path, sink: SmtpSink) -> None:
    """The same size in 80-byte lines streams through and arrives byte for byte."""
    line = b"x" * 78 + b"\r\n"
    original = b"Subject: big\r\n\r\n" + line * (20 * 2**20 // len(line))
    after = message("normal one after the big one")
    async with ScriptedPop3Server([original, after], password="pop3-S3cret!") as pop:
        rig = make_rig(tmp_path, pop, sink.port)
        await rig.cycle()
        assert _check(rig, sink, original, "normal one after the big one") == "delivered"
