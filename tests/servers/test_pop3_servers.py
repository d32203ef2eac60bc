"""The Courier and GNU Mailutils fixtures are real servers behaving as Debian ships them.

Checked with Python's ``poplib`` (and a raw socket where poplib would hide the
behaviour): login, the exact CAPA and greeting, the mail cycle, TLS, and the
quirks the compatibility tests exist for.
"""

from __future__ import annotations

import base64
import poplib
import re
import socket
import time
import uuid

import pytest

from tests.servers.courier import CourierServer
from tests.servers.mailutils import MailutilsServer
from tests.servers.pop3_fixtures import ExtraPop3User

pytestmark = pytest.mark.servers

Server = CourierServer | MailutilsServer

COURIER_CAPA: dict[str, list[str]] = {
    "STLS": [], "TOP": [], "USER": [], "LOGIN-DELAY": ["10"], "PIPELINING": [], "UIDL": [],
    "UTF8": ["USER"], "IMPLEMENTATION": ["Courier", "Mail", "Server"],
}  # fmt: skip
MAILUTILS_CAPA: dict[str, list[str]] = {
    "TOP": [], "UIDL": [], "RESP-CODES": [], "PIPELINING": [], "AUTH-RESP-CODE": [],
    "EXPIRENEVER": [], "USER": [], "STLS": [],
}  # fmt: skip
# After login Courier answers CAPA the same; Mailutils names itself only then
# (both still list STLS after login).
COURIER_CAPA_AFTER_LOGIN = COURIER_CAPA
MAILUTILS_CAPA_AFTER_LOGIN = {**MAILUTILS_CAPA, "IMPLEMENTATION": ["GNU", "Mailutils", "3.15"]}


def _server_and_user(request: pytest.FixtureRequest, kind: str) -> tuple[Server, ExtraPop3User]:
    server: Server = request.getfixturevalue(kind)
    user: ExtraPop3User = request.getfixturevalue(f"{kind}_user")
    return server, user


def _message(subject: str) -> bytes:
    return f"From: a@example.org\r\nTo: b@example.org\r\nSubject: {subject}\r\n\r\nBody of {subject}.\r\n".encode()


@pytest.mark.parametrize("kind", ["courier", "mailutils"])
def test_login_capa_and_the_mail_cycle(request: pytest.FixtureRequest, kind: str) -> None:
    server, user = _server_and_user(request, kind)
    server.deliver(user.name, _message("first"))
    server.deliver(user.name, _message("second"))
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    try:
        assert pop.capa() == (COURIER_CAPA if kind == "courier" else MAILUTILS_CAPA)
        pop.user(user.name)
        assert pop.pass_(user.password).startswith(b"+OK")
        assert pop.capa() == (COURIER_CAPA_AFTER_LOGIN if kind == "courier" else MAILUTILS_CAPA_AFTER_LOGIN)
        assert pop.stat()[0] == 2
        uidls = [line.split()[1] for line in pop.uidl()[1]]
        assert len(set(uidls)) == 2
        lines = pop.retr(1)[1]
        assert lines[:3] == [b"From: a@example.org", b"To: b@example.org", b"Subject: first"]
        assert lines[-2:] == [b"", b"Body of first."]
        if kind == "mailutils":
            # Mailutils adds its UIDL to the header of what it serves.
            assert b"X-UIDL: " + uidls[0] in lines
        else:
            assert not any(line.startswith(b"X-UIDL") for line in lines)
        assert pop.dele(1).startswith(b"+OK")
        assert pop.quit().startswith(b"+OK")
    finally:
        pop.close()
    # Courier answers QUIT before it removes the deleted files: allow it a moment.
    deadline = time.monotonic() + 5
    while len(left := server.messages(user.name)) > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(left) == 1 and b"Subject: second" in left[0]


def test_greetings(courier: CourierServer, mailutils: MailutilsServer) -> None:
    pop = poplib.POP3(courier.host, courier.pop3_port, timeout=10)
    assert pop.getwelcome() == b"+OK Hello there."
    pop.quit()
    pop = poplib.POP3(mailutils.host, mailutils.pop3_port, timeout=10)
    # Mailutils offers APOP through the timestamp in its greeting.
    assert re.fullmatch(rb"\+OK POP3 Ready <\d+\.\d+@[^>]+>", pop.getwelcome())
    pop.quit()


@pytest.mark.parametrize("kind", ["courier", "mailutils"])
def test_stls_and_implicit_tls(request: pytest.FixtureRequest, kind: str) -> None:
    server, user = _server_and_user(request, kind)
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    assert pop.stls(server.ssl_context()).startswith(b"+OK")
    assert "STLS" not in pop.capa()
    pop.user(user.name)
    assert pop.pass_(user.password).startswith(b"+OK")
    pop.quit()
    pops = poplib.POP3_SSL(server.host, server.pop3s_port, context=server.ssl_context(), timeout=10)
    pops.user(user.name)
    assert pops.pass_(user.password).startswith(b"+OK")
    pops.quit()


@pytest.mark.parametrize(("kind", "refusal"), [
    ("courier", b"-ERR Login failed."),
    ("mailutils", b"-ERR [AUTH] Bad login"),
])  # fmt: skip
def test_wrong_password_refusal(request: pytest.FixtureRequest, kind: str, refusal: bytes) -> None:
    server, user = _server_and_user(request, kind)
    pop = poplib.POP3(server.host, server.pop3_port, timeout=20)
    pop.user(user.name)
    with pytest.raises(poplib.error_proto) as refused:
        pop.pass_(user.password + "x")
    assert refused.value.args[0] == refusal
    pop.close()


def test_mailutils_refuses_a_second_concurrent_login(mailutils: MailutilsServer, mailutils_user: ExtraPop3User) -> None:
    first = poplib.POP3(mailutils.host, mailutils.pop3_port, timeout=10)
    first.user(mailutils_user.name)
    first.pass_(mailutils_user.password)
    second = poplib.POP3(mailutils.host, mailutils.pop3_port, timeout=10)
    second.user(mailutils_user.name)
    with pytest.raises(poplib.error_proto) as refused:
        second.pass_(mailutils_user.password)
    assert refused.value.args[0] == b"-ERR [IN-USE] Mailbox in use"
    second.close()
    first.quit()


def test_courier_allows_a_second_concurrent_login(courier: CourierServer, courier_user: ExtraPop3User) -> None:
    sessions = [poplib.POP3(courier.host, courier.pop3_port, timeout=10) for _ in range(2)]
    for pop in sessions:
        pop.user(courier_user.name)
        assert pop.pass_(courier_user.password) == b"+OK logged in."
    for pop in sessions:
        pop.quit()


# -- Courier's pipelining: what follows a login command in the same write is lost --

QUIET_SECONDS = 3.0


def _read_available(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends within *seconds* (until it pauses that long)."""
    sock.settimeout(seconds)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return data
        if not chunk:
            return data
        data += chunk


def _read_line(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data


def _login_commands(how: str, user: ExtraPop3User) -> tuple[bytes, bytes]:
    """(what precedes the login command, the login command)."""
    if how == "PASS":
        return f"USER {user.name}\r\n".encode(), f"PASS {user.password}\r\n".encode()
    token = base64.b64encode(f"\0{user.name}\0{user.password}".encode())
    return b"", b"AUTH PLAIN " + token + b"\r\n"


@pytest.mark.parametrize("how", ["PASS", "AUTH PLAIN"])
def test_courier_loses_what_was_pipelined_after_login(
    courier: CourierServer, courier_user: ExtraPop3User, how: str
) -> None:
    assert "PIPELINING" in COURIER_CAPA
    before, login = _login_commands(how, courier_user)
    with socket.create_connection((courier.host, courier.pop3_port), timeout=10) as sock:
        assert _read_line(sock).startswith(b"+OK")
        if before:
            sock.sendall(before)
            assert _read_line(sock).startswith(b"+OK")
        sock.sendall(login + b"CAPA\r\n")
        assert _read_line(sock) == b"+OK logged in.\r\n"
        began = time.monotonic()
        assert _read_available(sock, QUIET_SECONDS) == b""  # the CAPA never gets an answer
        assert time.monotonic() - began >= QUIET_SECONDS - 0.1
    with socket.create_connection((courier.host, courier.pop3_port), timeout=10) as sock:
        assert _read_line(sock).startswith(b"+OK")
        if before:
            sock.sendall(before)
            assert _read_line(sock).startswith(b"+OK")
        sock.sendall(login)
        assert _read_line(sock) == b"+OK logged in.\r\n"
        sock.sendall(b"CAPA\r\n")  # one after the other, it is answered
        assert _read_line(sock) == b"+OK Here's what I can do:\r\n"
        sock.sendall(b"QUIT\r\n")


def test_courier_answers_commands_pipelined_before_login(courier: CourierServer, courier_user: ExtraPop3User) -> None:
    with socket.create_connection((courier.host, courier.pop3_port), timeout=10) as sock:
        assert _read_line(sock).startswith(b"+OK")
        sock.sendall(b"CAPA\r\nUSER " + courier_user.name.encode() + b"\r\n")
        reply = b""
        while b"+OK Password required.\r\n" not in reply:
            reply += _read_line(sock)
        assert reply.startswith(b"+OK Here's what I can do:\r\n") and b"PIPELINING\r\n" in reply


def test_users_are_separate(courier: CourierServer, mailutils: MailutilsServer) -> None:
    for server in (courier, mailutils):
        name = f"solo-{uuid.uuid4().hex[:8]}"
        server.add_user(name, "secret")
        server.deliver(name, _message("solo"))
        pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
        pop.user(name)
        pop.pass_("secret")
        assert pop.stat()[0] == 1
        pop.quit()
        assert len(server.messages(name)) == 1
