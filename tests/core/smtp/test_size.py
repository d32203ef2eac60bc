"""The SIZE extension (RFC 1870): the announced limit, the size declared with MAIL FROM, nothing sent over it.

aiosmtpd records the MAIL FROM parameters it gets; the real Postfix shows the
limit read from a real announcement.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from pop3gui.core.smtp.data import BLOCK, DataEncoder, MessageSource
from pop3gui.core.smtp.size import size_limit, wire_size
from pop3gui.core.smtp.submit import SmtpSubmitter
from tests.servers.postfix import PostfixServer
from tests.support.office import MESSAGE_SIZE_LIMIT, make_message

ALICE = "alice@contoso.com"
SENDER = "sender@fabrikam.example"


class _Recorder:
    def __init__(self) -> None:
        self.mail_options: list[list[str]] = []
        self.received: list[bytes] = []

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        self.mail_options.append(list(mail_options))
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        return "250 OK"


async def _serve(recorder: _Recorder, **smtp_kw: Any) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(recorder, loop=loop, **smtp_kw), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def _submitter(port: int) -> SmtpSubmitter:
    return SmtpSubmitter("127.0.0.1", port, security="none", timeout=10)


@pytest.mark.parametrize(("announced", "limit"), [
    (None, None), ("", 0), ("0", 0), ("10240000", 10240000), (" 52428800 ", 52428800), ("lots", 0),
])
def test_the_limit_is_read_from_the_announcement(announced: str | None, limit: int | None) -> None:
    assert size_limit(announced) == limit


@pytest.mark.parametrize("data", [
    b"Subject: a\r\n\r\nbody\r\n",
    b"Subject: a\n\nbare line ends\n",
    b"Subject: a\r\n\r\n.a dot line\r\n..two\r\nno final line end",
    b"Subject: a\r\rold mac line ends\r",
    b"",
])
def test_wire_size_is_what_goes_out_without_dot_stuffing_or_the_final_dot(data: bytes) -> None:
    prefix = b"Received: by pop3gui\r\n"
    source = MessageSource(prefix=prefix, data=data)
    encoder = DataEncoder()
    encoded = encoder.feed(prefix + data) + encoder.finish()
    lines = encoded[:-3].split(b"\r\n")  # without ".\r\n"; undo the dot-stuffing line by line
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b"..") else line for line in lines)
    assert wire_size(source) == len(unstuffed)


def test_wire_size_of_a_file_with_a_crlf_split_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(b"Subject: a\r\n\r\n" + b"x" * (BLOCK - 15) + b"\r\n" + b"y\n" * 10)
    assert wire_size(MessageSource.from_file(path)) == path.stat().st_size + 10


async def test_size_is_declared_with_mail_from_when_offered() -> None:
    recorder = _Recorder()
    data = make_message(to=ALICE)
    async for port in _serve(recorder, data_size_limit=100_000):
        async with _submitter(port) as smtp:
            assert smtp.size_limit == 100_000
            sub = await smtp.submit(SENDER, [ALICE], data)
    assert sub.accepted == (ALICE,)
    assert recorder.mail_options == [[f"SIZE={len(data)}"]]
    assert "SIZE=" in sub.transcript


async def test_no_size_parameter_when_the_server_offers_no_size() -> None:
    recorder = _Recorder()
    async for port in _serve(recorder, data_size_limit=None):
        async with _submitter(port) as smtp:
            assert smtp.size_limit is None and await smtp.announced_limit() == 0
            sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE, body=("z" * 98 + "\r\n") * 2000))
    assert sub.accepted == (ALICE,) and recorder.mail_options == [[]]


async def test_a_message_over_the_announced_limit_is_not_transmitted() -> None:
    recorder = _Recorder()
    big = make_message(to=ALICE, body=("b" * 98 + "\r\n") * 60)
    async for port in _serve(recorder, data_size_limit=5000):
        async with _submitter(port) as smtp:
            assert await smtp.announced_limit() == 5000
            sub = await smtp.submit(SENDER, [ALICE], big)
            small = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))  # the session is still usable
    assert len(recorder.mail_options) == 1 and recorder.mail_options[0][0].startswith("SIZE=")  # the small one
    assert len(recorder.received) == 1  # only the small one
    assert sub.data_code == 552 and sub.accepted == () and [r.address for r in sub.refused] == [ALICE]
    assert "5.3.4" in sub.data_message and "5000" in sub.data_message and str(len(big)) in sub.data_message
    assert "not sent" in sub.transcript and "MAIL FROM" not in sub.transcript.split("EHLO")[-1]
    assert small.accepted == (ALICE,)


async def test_postfix_announces_its_message_size_limit(postfix_clean: PostfixServer) -> None:
    async with SmtpSubmitter(postfix_clean.host, postfix_clean.port, security="none", timeout=20) as smtp:
        assert await smtp.announced_limit() == MESSAGE_SIZE_LIMIT
        sub = await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))
        assert sub.accepted == (ALICE,)
        assert " SIZE=" in sub.transcript
    postfix_clean.wait_for_delivered(1)
