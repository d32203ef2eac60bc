"""The pure POP3 line parsers: what a server may and may not send."""

from __future__ import annotations

import pytest

from pop3gui.core.errors import (
    ConfigError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxInUseError,
    MailboxProtocolError,
)
from pop3gui.core.pop3.replies import (
    MAX_STATUS_LINE,
    Reply,
    apop_digest,
    check_argument,
    error_for,
    greeting_timestamp,
    parse_capa_lines,
    parse_list_line,
    parse_stat,
    parse_status,
    parse_uidl_line,
    show,
    unstuff,
)


@pytest.mark.parametrize(
    ("line", "ok", "text", "code"),
    [
        (b"+OK\r\n", True, "", ""),
        (b"+OK 2 320\r\n", True, "2 320", ""),
        (b"-ERR\r\n", False, "", ""),
        (
            b"-ERR [IN-USE] mailbox locked\r\n",
            False,
            "[IN-USE] mailbox locked",
            "IN-USE",
        ),
        (b"-ERR [sys/temp] try later\n", False, "[sys/temp] try later", "SYS/TEMP"),
        (b"-ERR [AUTH]\r\n", False, "[AUTH]", "AUTH"),
    ],
)
def test_parse_status(line: bytes, ok: bool, text: str, code: str) -> None:
    assert parse_status(line) == Reply(ok, text, code)


@pytest.mark.parametrize(
    "line",
    [b"OK\r\n", b"+OKAY\r\n", b"-ERROR x\r\n", b"+ok\r\n", b"\r\n", b"* 1 EXISTS\r\n"],
)
def test_malformed_status_is_protocol_error_naming_the_line(line: bytes) -> None:
    with pytest.raises(MailboxProtocolError) as info:
        parse_status(line)
    assert repr(line[:20])[2:-1].split("\\r")[0] in str(info.value)


def test_overlong_status_line_is_refused_and_truncated_in_message() -> None:
    line = b"+OK " + b"x" * MAX_STATUS_LINE + b"\r\n"
    with pytest.raises(MailboxProtocolError) as info:
        parse_status(line)
    assert len(str(info.value)) < 300
    assert f"({len(line)} bytes)" in str(info.value)


def test_unstuff() -> None:
    assert unstuff(b".\r\n") is None
    assert unstuff(b".\n") is None
    assert unstuff(b"..\r\n") == b".\r\n"
    assert unstuff(b".foo\r\n") == b"foo\r\n"
    assert unstuff(b"bare lf\n") == b"bare lf\r\n"
    assert unstuff(b"a\rb\r\n") == b"a\rb\r\n"
    assert unstuff(b"nul\0byte\r\n") == b"nul\0byte\r\n"
    assert unstuff(b"\r\n") == b"\r\n"


def test_parse_stat() -> None:
    assert parse_stat(parse_status(b"+OK 2 320\r\n")) == (2, 320)
    assert parse_stat(parse_status(b"+OK 0 0\r\n")) == (0, 0)
    for bad in (b"+OK\r\n", b"+OK two 320\r\n", b"+OK 2 -3\r\n"):
        with pytest.raises(MailboxProtocolError, match="STAT"):
            parse_stat(parse_status(bad))


def test_parse_list_line() -> None:
    assert parse_list_line(b"1 120\r\n") == (1, 120)
    assert parse_list_line(b"3 0 extra\r\n") == (3, 0)
    for bad in (b"1\r\n", b"x 120\r\n", b"0 5\r\n", b"1 1.5\r\n", b"\xd9\xa1 5\r\n"):
        with pytest.raises(MailboxProtocolError, match="LIST"):
            parse_list_line(bad)


def test_parse_uidl_line() -> None:
    assert parse_uidl_line(b"1 whqtswO00WBw418f9t5JxYwZ\r\n") == (
        1,
        "whqtswO00WBw418f9t5JxYwZ",
    )
    for bad in (
        b"1\r\n",
        b"1 a b\r\n",
        b"a uid\r\n",
        b"1 \r\n",
        b"1 caf\xc3\xa9\r\n",
        b"1 a\x01\r\n",
    ):
        with pytest.raises(MailboxProtocolError, match="UIDL"):
            parse_uidl_line(bad)


def test_parse_capa_lines_upper_cases_keys() -> None:
    caps = parse_capa_lines(
        [b"sasl PLAIN LOGIN\r\n", b"UIDL\r\n", b"\r\n", b"pipelining\r\n"]
    )
    assert caps == {"SASL": ["PLAIN", "LOGIN"], "UIDL": [], "PIPELINING": []}


def test_apop_digest_rfc1939_example() -> None:
    stamp = greeting_timestamp("POP3 server ready <1896.697170952@dbc.mtview.ca.us>")
    assert stamp == "<1896.697170952@dbc.mtview.ca.us>"
    assert apop_digest(stamp, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb"
    assert greeting_timestamp("POP3 server ready") is None


@pytest.mark.parametrize("value", ["a\r\nDELE 1", "a\nb", "a\rb", "a\0b"])
def test_check_argument_refuses_line_breaks(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_argument("password", value)
    assert isinstance(info.value, ValueError)
    assert info.value.fix


def test_error_for_maps_response_codes() -> None:
    def err(line: bytes, login: bool = False) -> MailboxCommandError:
        return error_for("PASS", parse_status(line), "pop.example:995", login=login)

    in_use = err(b"-ERR [IN-USE] locked\r\n", login=True)
    assert type(in_use) is MailboxInUseError and in_use.temporary
    assert "phone" in in_use.cause and in_use.resp_code == "IN-USE"
    assert in_use.reply == "-ERR [IN-USE] locked"
    auth = err(b"-ERR [AUTH] bad\r\n")
    assert (
        type(auth) is MailboxAuthError
        and not auth.temporary
        and "app password" in auth.fix
    )
    assert type(err(b"-ERR no\r\n", login=True)) is MailboxAuthError
    temp = err(b"-ERR [SYS/TEMP] busy\r\n", login=True)
    assert type(temp) is MailboxCommandError and temp.temporary
    perm = err(b"-ERR [SYS/PERM] gone\r\n")
    assert type(perm) is MailboxCommandError and perm.temporary is False
    assert MailboxCommandError.temporary is True  # the instance override did not leak
    plain = err(b"-ERR no such message\r\n")
    assert type(plain) is MailboxCommandError and "pop.example:995" in str(plain)


def test_show_truncates() -> None:
    assert show(b"abc") == "b'abc'"
    assert show(b"x" * 1000).endswith("(1000 bytes)")
