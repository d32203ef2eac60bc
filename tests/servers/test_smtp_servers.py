"""The Exim and OpenSMTPD fixtures behave as the office's mail server, with their own words.

The replies asserted here are the servers' defaults, not texts of ours: the
connector's diagnosis is meant to be checked against what real servers say.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass

import pytest

from tests.servers.private_mta import PrivateMta

pytestmark = pytest.mark.servers

SENDER = "sender@example.org"


@dataclass(frozen=True)
class Expected:
    """What a server answers, as (code, a fragment of the text)."""

    greeting: str
    relay: tuple[int, str]
    unknown: tuple[int, str]
    too_big: tuple[int, str]
    long_line: tuple[int, str]
    line_1001: tuple[int, str]
    size_param_checked: bool


EXPECTED = {
    "exim_clean": Expected(
        greeting="ESMTP Exim 4.96",
        relay=(550, "relay not permitted"),
        unknown=(550, "Unrouteable address"),
        too_big=(552, "Message size exceeds maximum permitted"),
        long_line=(550, "maximum allowed line length is 998 octets, got 70000"),
        line_1001=(550, "maximum allowed line length is 998 octets, got 1001"),
        size_param_checked=True,
    ),
    "opensmtpd_clean": Expected(
        greeting="ESMTP OpenSMTPD",
        relay=(550, "Invalid recipient: <{addr}>"),
        unknown=(550, "Invalid recipient: <{addr}>"),
        too_big=(554, "5.3.4 Message too big for system"),
        # Its limit is 65,535 octets with the CRLF, not RFC 5321's 1,000.
        long_line=(500, "5.0.0 Line too long"),
        line_1001=(250, "Message accepted for delivery"),
        size_param_checked=False,
    ),
}


@dataclass
class Mta:
    server: PrivateMta
    expected: Expected

    def connect(self) -> smtplib.SMTP:
        client = smtplib.SMTP(self.server.host, self.server.port, timeout=20)
        client.ehlo("client.pop3gui.test")
        return client


@pytest.fixture(params=sorted(EXPECTED))
def mta(request: pytest.FixtureRequest) -> Mta:
    server = request.getfixturevalue(request.param)
    assert isinstance(server, PrivateMta)
    return Mta(server, EXPECTED[request.param])


def _message(subject: str, body: bytes = b"Hello.\r\n") -> bytes:
    return (
        f"From: {SENDER}\r\nTo: alice@contoso.com\r\nSubject: {subject}\r\n"
        "Message-ID: <test@example.org>\r\n\r\n"
    ).encode() + body


def _reply(code: int, text: bytes, expected: tuple[int, str], addr: str = "") -> None:
    assert code == expected[0], (code, text)
    assert expected[1].format(addr=addr) in text.decode(), (code, text)


def test_greeting_names_the_server(mta: Mta) -> None:
    client = smtplib.SMTP()
    code, text = client.connect(mta.server.host, mta.server.port)
    try:
        assert code == 220
        assert mta.expected.greeting in text.decode()
        code, text = client.ehlo("client.pop3gui.test")
        assert code == 250
        assert f"SIZE {mta.server.message_size_limit}" in text.decode()
    finally:
        client.quit()


def test_one_copy_per_recipient_carries_its_envelope_recipient(mta: Mta) -> None:
    with mta.connect() as client:
        refused = client.sendmail(
            SENDER, ["alice@contoso.com", "bob@contoso.local"], _message("two copies")
        )
    assert refused == {}
    copies = mta.server.wait_for_delivered(2)
    recipients = sorted(str(m["Delivered-To"]) for m in copies)
    assert recipients == ["alice@contoso.com", "bob@contoso.local"]
    assert all(m["Subject"] == "two copies" for m in copies)
    raw = mta.server.delivered_raw()
    assert sorted(recipient for recipient, _ in raw) == ["alice@contoso.com", "bob@contoso.local"]


def test_foreign_domain_is_refused_with_the_default_wording(mta: Mta) -> None:
    addr = "someone@fabrikam.com"
    with mta.connect() as client:
        client.mail(SENDER)
        _reply(*client.rcpt(addr), mta.expected.relay, addr)
        # Not even a sender of the server's own domain may relay from loopback.
        client.rset()
        client.mail("alice@contoso.com")
        _reply(*client.rcpt(addr), mta.expected.relay, addr)


def test_unknown_user_is_refused(mta: Mta) -> None:
    with mta.connect() as client:
        client.mail(SENDER)
        _reply(*client.rcpt("ghost@contoso.com"), mta.expected.unknown, "ghost@contoso.com")
        assert client.rcpt("alice@contoso.com")[0] == 250


def test_set_unknown_users_takes_effect_while_running(mta: Mta) -> None:
    mta.server.set_unknown_users(["casper@contoso.local"])
    with mta.connect() as client:
        client.mail(SENDER)
        _reply(*client.rcpt("casper@contoso.local"), mta.expected.unknown, "casper@contoso.local")
        assert client.rcpt("ghost@contoso.com")[0] == 250


def test_postmaster_is_accepted(mta: Mta) -> None:
    with mta.connect() as client:
        client.sendmail(SENDER, ["postmaster@contoso.com"], _message("to the postmaster"))
    (copy,) = mta.server.wait_for_delivered(1)
    assert copy["Delivered-To"] == "postmaster@contoso.com"


def test_message_over_the_size_limit_is_refused(mta: Mta) -> None:
    body = b"x" * 998 + b"\r\n"
    big = _message("too big", body * (mta.server.message_size_limit // len(body) + 10))
    with mta.connect() as client:
        client.mail(SENDER)
        assert client.rcpt("alice@contoso.com")[0] == 250
        _reply(*client.data(big), mta.expected.too_big)
    assert mta.server.delivered() == []


def test_size_declared_in_mail_from(mta: Mta) -> None:
    """Exim refuses a declared SIZE over the limit at once; OpenSMTPD 6.8 waits for the data."""
    with mta.connect() as client:
        code, text = client.mail(SENDER, [f"SIZE={mta.server.message_size_limit + 1}"])
    if mta.expected.size_param_checked:
        assert (code, text) == (552, b"Message size exceeds maximum permitted")
    else:
        assert code == 250, (code, text)


def test_line_of_70000_octets(mta: Mta) -> None:
    with mta.connect() as client:
        client.mail(SENDER)
        assert client.rcpt("alice@contoso.com")[0] == 250
        _reply(*client.data(_message("long line", b"z" * 70_000 + b"\r\n")), mta.expected.long_line)
    assert mta.server.delivered() == []


def test_line_of_1001_octets(mta: Mta) -> None:
    """Debian's Exim refuses it in its DATA ACL; OpenSMTPD delivers it untouched."""
    line = b"w" * 1001
    with mta.connect() as client:
        client.mail(SENDER)
        assert client.rcpt("alice@contoso.com")[0] == 250
        code, text = client.data(_message("1001 octets", line + b"\r\n"))
    _reply(code, text, mta.expected.line_1001)
    if code == 250:
        mta.server.wait_for_delivered(1)
        ((_, data),) = mta.server.delivered_raw()
        assert b"\n" + line + b"\n" in data.replace(b"\r\n", b"\n")
    else:
        assert mta.server.delivered() == []
