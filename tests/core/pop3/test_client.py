"""Pop3Client against the scripted server: logins, parsing, streaming, faults, TLS."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.errors import (
    ConfigError,
    Pop3AuthError,
    Pop3CommandError,
    Pop3ConnectionError,
    Pop3InsecureError,
    Pop3InUseError,
    Pop3ProtocolError,
    Pop3TimeoutError,
    Pop3TlsError,
)
from pop3gui.core.pop3.client import Pop3Client
from tests.support.scripted_pop3 import ScriptedPop3Server

MSG1 = b"Subject: one\r\n\r\nfirst body\r\n"
MSG2 = b"Subject: two\r\n\r\n..\r\n.foo\r\n.\r\nend \r with bare CR\r\n"


def client(srv: ScriptedPop3Server, **kw: object) -> Pop3Client:
    kw.setdefault("security", "none")
    return Pop3Client("127.0.0.1", srv.port, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ certs


class Certs:
    """Throwaway CA and server certificates made with the openssl command line."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = root / "ca.pem"
        self._ca_key = root / "ca.key"
        self._run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(self._ca_key), "-out", str(self.ca), "-days", "3",
            "-subj", "/CN=pop3gui test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self.good = self._leaf("good", "DNS:localhost,IP:127.0.0.1", days="3")
        self.wrong_host = self._leaf("wrong", "DNS:wrong.example", days="3")
        self.expired = self._leaf("expired", "DNS:localhost,IP:127.0.0.1", days="-1")
        key, cert = root / "self.key", root / "self.pem"
        self._run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "3",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        )  # fmt: skip
        self.self_signed = (cert, key)

    def _run(self, *args: str) -> None:
        subprocess.run(
            ["openssl", *args], check=True, capture_output=True, cwd=self.root
        )

    def _leaf(self, name: str, san: str, *, days: str) -> tuple[Path, Path]:
        key, csr, cert, ext = (
            self.root / f"{name}.{s}" for s in ("key", "csr", "pem", "ext")
        )
        ext.write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
        self._run(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}",
        )  # fmt: skip
        self._run(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self._ca_key),
            "-CAcreateserial", "-days", days, "-extfile", str(ext), "-out", str(cert),
        )  # fmt: skip
        return cert, key

    def server(self, pair: tuple[Path, Path]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pair)
        return ctx

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


# ----------------------------------------------------------------- logins


async def test_user_pass_login_stat_list_uidl() -> None:
    async with ScriptedPop3Server([MSG1, MSG2], sasl=[]) as srv:
        async with client(srv) as pop:
            assert pop.greeting.startswith("scripted POP3 ready")
            assert "UIDL" in pop.capabilities and "SASL" not in pop.capabilities
            await pop.login("user", "pass")
            assert await pop.stat() == (2, len(MSG1) + len(MSG2))
            assert await pop.list() == {1: len(MSG1), 2: len(MSG2)}
            assert await pop.uidl() == {1: "uid-1", 2: "uid-2"}
        assert srv.commands == [
            "CAPA",
            "USER user",
            "PASS pass",
            "CAPA",
            "STAT",
            "LIST",
            "UIDL",
            "QUIT",
        ]
        assert srv.sessions == 1


async def test_sasl_plain_sends_base64_of_nul_user_nul_pass() -> None:
    async with ScriptedPop3Server([MSG1]) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
        token = base64.b64encode(b"\0user\0pass").decode()
        assert f"AUTH PLAIN {token}" in srv.commands
        assert not any(c.startswith(("USER", "PASS")) for c in srv.commands)


async def test_sasl_plain_long_credentials_use_continuation() -> None:
    password = "p" * 300
    async with ScriptedPop3Server([MSG1], password=password) as srv:
        async with client(srv) as pop:
            await pop.login("user", password)
        token = base64.b64encode(b"\0user\0" + password.encode()).decode()
        i = srv.commands.index("AUTH PLAIN")
        assert srv.commands[i + 1] == token


async def test_apop_uses_greeting_timestamp_and_md5() -> None:
    async with ScriptedPop3Server([MSG1], password="tanstaaf") as srv:
        async with client(srv) as pop:
            await pop.apop("user", "tanstaaf")
            assert await pop.stat() == (1, len(MSG1))
        # RFC 1939's own example digest for this timestamp and secret.
        assert "APOP user c4c9334bac560ecc979e58001b3e22fb" in srv.commands
        assert "C: APOP user ****" in pop.transcript


async def test_apop_without_timestamp_is_refused_before_sending() -> None:
    async with ScriptedPop3Server([MSG1], greeting="no stamp here") as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3CommandError, match="does not offer APOP"):
                await pop.apop("user", "pass")
        assert not any(c.startswith("APOP") for c in srv.commands)


async def test_wrong_password_is_auth_error() -> None:
    async with ScriptedPop3Server([MSG1], sasl=[]) as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3AuthError) as info:
                await pop.login("user", "wrong")
    err = info.value
    assert err.resp_code == "AUTH" and not err.temporary
    assert "app password" in err.fix and "password" in err.cause
    assert err.reply.startswith("-ERR [AUTH]")


async def test_any_err_at_login_is_auth_error() -> None:
    async with ScriptedPop3Server([MSG1], replies={"AUTH": "-ERR nope"}) as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3AuthError):
                await pop.login("user", "pass")


async def test_in_use_at_login() -> None:
    async with ScriptedPop3Server(
        [MSG1], sasl=[], replies={"PASS": "-ERR [IN-USE] locked"}
    ) as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3InUseError) as info:
                await pop.login("user", "pass")
    err = info.value
    assert (
        err.temporary
        and err.resp_code == "IN-USE"
        and err.reply == "-ERR [IN-USE] locked"
    )
    assert "another" in err.cause.lower() and err.fix
    assert not isinstance(err, Pop3AuthError)


@pytest.mark.parametrize(
    ("code", "temporary"), [("SYS/TEMP", True), ("SYS/PERM", False)]
)
async def test_sys_codes_set_temporary(code: str, temporary: bool) -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"RETR": [f"-ERR [{code}] oops"]}
    ) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            with pytest.raises(Pop3CommandError) as info:
                await pop.retr_to(1, io.BytesIO())
            assert info.value.temporary is temporary
            assert info.value.resp_code == code
            assert not isinstance(info.value, Pop3AuthError)
            out = io.BytesIO()
            assert await pop.retr_to(1, out) == len(MSG1)  # still in step after -ERR


async def test_sys_temp_at_login_is_not_auth_error() -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"AUTH": "-ERR [SYS/TEMP] db down"}
    ) as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3CommandError) as info:
                await pop.login("user", "pass")
    assert not isinstance(info.value, Pop3AuthError) and info.value.temporary


async def test_capa_refused_gives_empty_caps_and_user_pass() -> None:
    async with ScriptedPop3Server([MSG1], capa=False) as srv:
        async with client(srv) as pop:
            assert pop.capabilities == {}
            assert not pop.supports_pipelining
            await pop.login("user", "pass")
            assert await pop.uidl() == {1: "uid-1"}
        assert "USER user" in srv.commands


async def test_pipelining_capability() -> None:
    async with ScriptedPop3Server([MSG1], pipelining=True) as srv:
        async with client(srv) as pop:
            assert pop.supports_pipelining


@pytest.mark.parametrize("sasl", [["PLAIN"], []], ids=["auth-plain", "user-pass"])
async def test_the_login_command_is_the_last_of_its_pipelined_group(sasl: list[str]) -> None:
    """A server that hands the connection over after login loses what came with it (Courier)."""
    async with ScriptedPop3Server([MSG1], pipelining=True, sasl=sasl, login_handoff=True) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert pop.supports_pipelining and "UIDL" in pop.capabilities
            sent = [line for line in pop.transcript if line.startswith(("C: ", "S: +OK", "S: -ERR"))]
            login = "C: AUTH PLAIN ****" if sasl else "C: PASS ****"
            at = sent.index(login)
            assert sent[at + 1].startswith("S: +OK"), sent  # the login's reply came before anything else went out
            assert sent[at + 2] == "C: CAPA", sent
            assert await pop.listing() == ({1: len(MSG1)}, {1: "uid-1"})  # pipelined after login: fine
            assert await pop.stat() == (1, len(MSG1))
        assert srv.lost_after_login == [b""]
        assert srv.commands.count("CAPA") == 2


async def test_a_refused_login_leaves_the_session_in_step() -> None:
    async with ScriptedPop3Server([MSG1], pipelining=True, sasl=[], replies={"PASS": "-ERR [AUTH] nope"}) as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3AuthError):
                await pop.login("user", "pass")
            with pytest.raises(Pop3CommandError) as info:  # NOOP's own reply
                await pop.noop()
            assert "not authenticated" in info.value.reply
        assert srv.commands[-2:] == ["NOOP", "QUIT"]


async def test_without_pipelining_each_retr_waits_for_the_previous_reply() -> None:
    async with ScriptedPop3Server([MSG1, MSG2, MSG1], pipelining=False) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            got = [n async for n, _ in pop.retr_many([1, 2, 3], lambda _n: io.BytesIO(), window=32)]
            assert got == [1, 2, 3]
            transcript = list(pop.transcript)
            after_login = transcript[transcript.index("C: RETR 1"):]
            lines = [line for line in after_login if line.startswith(("C: ", "S: ."))]
        assert lines == ["C: RETR 1", "S: .", "C: RETR 2", "S: .", "C: RETR 3", "S: ."]


async def test_greeting_err_raises() -> None:
    async with ScriptedPop3Server(
        [MSG1], greeting_line="-ERR [SYS/TEMP] maintenance"
    ) as srv:
        pop = client(srv)
        with pytest.raises(Pop3CommandError) as info:
            await pop.connect()
        assert info.value.temporary


def test_unknown_security_is_config_error() -> None:
    with pytest.raises(ConfigError, match="security"):
        Pop3Client("h", 1, security="ssl")


# ---------------------------------------------------------------- UIDL etc.


async def test_uidl_none_when_not_in_capa() -> None:
    async with ScriptedPop3Server([MSG1], uidl=False) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.uidl() is None
        assert "UIDL" not in srv.commands


async def test_uidl_none_when_err_and_no_capa() -> None:
    async with ScriptedPop3Server([MSG1], uidl=False, capa=False) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.uidl() is None
        assert "UIDL" in srv.commands


async def test_uidl_err_with_response_code_raises() -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"UIDL": "-ERR [SYS/TEMP] busy"}
    ) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            with pytest.raises(Pop3CommandError):
                await pop.uidl()


async def test_duplicate_uids_and_lying_sizes_are_reported_as_sent() -> None:
    async with ScriptedPop3Server(
        [MSG1, MSG2], uids=["same", "same"], list_sizes=[1, 2]
    ) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.uidl() == {1: "same", 2: "same"}
            assert await pop.list() == {1: 1, 2: 2}
            assert await pop.retr_to(1, io.BytesIO()) == len(MSG1)


@pytest.mark.parametrize(
    ("verb", "reply", "shown"),
    [
        ("LIST", "+OK\r\n1 abc\r\n.", "'1 abc'"),
        ("LIST", "+OK\r\n1 5\r\n1 6\r\n.", "twice"),
        ("UIDL", "+OK\r\n1 a b\r\n.", "'1 a b'"),
        ("STAT", "+OK many", "'+OK many'"),
        ("NOOP", "OK fine", "b'OK fine"),
    ],
)
async def test_malformed_answers_are_protocol_errors(
    verb: str, reply: str, shown: str
) -> None:
    async with ScriptedPop3Server([MSG1], replies={verb: reply}) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        with pytest.raises(Pop3ProtocolError) as info:
            await {
                "LIST": pop.list,
                "UIDL": pop.uidl,
                "STAT": pop.stat,
                "NOOP": pop.noop,
            }[verb]()
        assert shown in str(info.value) and f"127.0.0.1:{srv.port}" in str(info.value)
        with pytest.raises(Pop3ConnectionError, match="Not connected"):
            await pop.noop()  # invalid POP3 closes the session


async def test_malformed_status_closes_connection() -> None:
    async with ScriptedPop3Server([MSG1], replies={"NOOP": "* OK"}) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        with pytest.raises(Pop3ProtocolError):
            await pop.noop()
        with pytest.raises(Pop3ConnectionError, match="Not connected"):
            await pop.stat()


async def test_top() -> None:
    msg = b"Subject: t\r\n\r\nl1\r\n.l2\r\nl3\r\n"
    async with ScriptedPop3Server([msg]) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.top(1, 2) == b"Subject: t\r\n\r\nl1\r\n.l2\r\n"
            assert await pop.top(1, 0) == b"Subject: t\r\n\r\n"


# ----------------------------------------------------------------- RETR


async def test_retr_unstuffs_dots_and_keeps_crlf() -> None:
    async with ScriptedPop3Server([MSG1, MSG2]) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            out = io.BytesIO()
            assert await pop.retr_to(2, out) == len(MSG2)
            assert out.getvalue() == MSG2
            assert b"\r\n..\r\n" in srv_framed(MSG2)  # the server really stuffed
            assert f"S: [{len(MSG2)} bytes of message data]" in pop.transcript


def srv_framed(data: bytes) -> bytes:
    from tests.support.scripted_pop3 import frame

    return frame(data)


async def test_bare_lf_server_is_normalised_to_crlf() -> None:
    async with ScriptedPop3Server([MSG2], bare_lf=True) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.stat() == (1, len(MSG2))
            out = io.BytesIO()
            await pop.retr_to(1, out)
            assert out.getvalue() == MSG2


async def test_nul_bytes_pass_through() -> None:
    msg = b"Subject: \0nul\r\n\r\n\0\0body\0\r\n"
    async with ScriptedPop3Server([msg]) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            out = io.BytesIO()
            await pop.retr_to(1, out)
            assert out.getvalue() == msg


async def test_overlong_data_line_is_still_mail_and_the_session_goes_on() -> None:
    """A line longer than max_line inside a message streams through in pieces (RFC 5322's
    998 is a rule for writers; real mail breaks it), dot-unstuffing and CRLF intact."""
    msg = b"Subject: long\r\n\r\n" + b"x" * 5000 + b"\r\n" + b"." + b"y" * 3000 + b"\r\nend\r\n"
    async with ScriptedPop3Server([msg]) as srv:
        pop = client(srv, max_line=1024)
        await pop.connect()
        await pop.login("user", "pass")
        out = io.BytesIO()
        assert await pop.retr_to(1, out) == len(msg)
        assert out.getvalue() == msg
        await pop.noop()
        await pop.quit()


async def test_overlong_status_line_is_protocol_error() -> None:
    async with ScriptedPop3Server([MSG1], replies={"NOOP": "+OK " + "x" * 5000}) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        with pytest.raises(Pop3ProtocolError, match="5006 bytes"):
            await pop.noop()
        await pop.close()


async def test_dropped_connection_mid_retr_keeps_partial_and_rolls_back() -> None:
    async with ScriptedPop3Server([MSG1, MSG2], drop_retr=(2, 25)) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        out = io.BytesIO()
        with pytest.raises(Pop3ConnectionError) as info:
            await pop.retr_to(2, out)
        assert f"127.0.0.1:{srv.port}" in str(info.value)
        assert info.value.cause and info.value.fix
        assert 0 < len(out.getvalue()) < len(MSG2)
        assert MSG2.startswith(out.getvalue())
        with pytest.raises(Pop3ConnectionError):
            await pop.quit()
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1, MSG2]


async def test_timeout_closes_and_raises() -> None:
    async with ScriptedPop3Server([MSG1], stall={"RETR"}) as srv:
        pop = client(srv, timeout=0.3)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        with pytest.raises(Pop3TimeoutError) as info:
            await pop.retr_to(1, io.BytesIO())
        assert "0.3 s" in str(info.value) and info.value.temporary
        with pytest.raises(Pop3ConnectionError):
            await pop.noop()
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1]


async def test_connection_refused_names_host_and_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pop = Pop3Client("127.0.0.1", port, security="none", timeout=2)
    with pytest.raises(Pop3ConnectionError) as info:
        await pop.connect()
    assert (
        f"127.0.0.1:{port}" in str(info.value) and info.value.cause and info.value.fix
    )


# ------------------------------------------------------ DELE and QUIT


async def test_dele_commits_only_on_quit() -> None:
    async with ScriptedPop3Server([MSG1, MSG2]) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        await pop.close()  # no QUIT: the server must roll back
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1, MSG2]

        with pytest.raises(RuntimeError):
            async with client(srv) as pop:
                await pop.login("user", "pass")
                await pop.dele(1)
                raise RuntimeError("worker failed")
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1, MSG2]

        async with client(srv) as pop:
            await pop.login("user", "pass")
            await pop.dele(1)
            await pop.dele(2)
            await pop.rset()
            await pop.dele(2)
        assert srv.mailbox == [MSG1]
        assert srv.sessions == 3


async def test_quit_err_raises() -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"QUIT": "-ERR could not delete"}
    ) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        with pytest.raises(Pop3CommandError, match="could not delete"):
            await pop.quit()
        await pop.quit()  # already finished: nothing left to do


# ------------------------------------------------------------- safety


async def test_argument_injection_refused() -> None:
    async with ScriptedPop3Server([MSG1], sasl=[]) as srv:
        async with client(srv) as pop:
            with pytest.raises(ValueError):
                await pop.login("user\r\nDELE 1", "pass")
            with pytest.raises(ValueError):
                await pop.login("user", "pa\nss")
            await pop.login("user", "pass")
            for bad in (0, -1, True):
                with pytest.raises(ValueError):
                    await pop.dele(bad)
        assert srv.commands == ["CAPA", "USER user", "PASS pass", "CAPA", "QUIT"]


async def test_transcript_redacts_passwords() -> None:
    secret = "s3cret-pw"
    for sasl in ([], ["PLAIN"]):
        async with ScriptedPop3Server([MSG1], password=secret, sasl=sasl) as srv:
            async with client(srv) as pop:
                await pop.login("user", secret)
            text = "\n".join(pop.transcript)
            token = base64.b64encode(f"\0user\0{secret}".encode()).decode()
            assert secret not in text and token not in text
            assert (
                "C: PASS ****" if not sasl else "C: AUTH PLAIN ****"
            ) in pop.transcript
            assert "S: +OK mailbox locked and ready" in pop.transcript


async def test_security_none_allows_plaintext_password() -> None:
    async with ScriptedPop3Server([MSG1], sasl=[]) as srv:
        async with client(srv, security="none") as pop:
            assert not pop.encrypted
            await pop.login("user", "pass")
        assert "PASS pass" in srv.commands


async def test_starttls_without_stls_refuses_before_password() -> None:
    async with ScriptedPop3Server([MSG1]) as srv:
        pop = client(srv, security="starttls")
        with pytest.raises(Pop3TlsError, match="does not offer STLS"):
            await pop.connect()
        with pytest.raises(Pop3ConnectionError):
            await pop.login("user", "pass")
        assert srv.commands == ["CAPA"]


async def test_password_guard_checks_the_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even if STLS were skipped by a bug, login must not send the password."""

    async def no_tls(self: Pop3Client) -> None:
        return None

    monkeypatch.setattr(Pop3Client, "_starttls", no_tls)
    async with ScriptedPop3Server([MSG1]) as srv:
        async with client(srv, security="starttls") as pop:
            with pytest.raises(Pop3InsecureError):
                await pop.login("user", "pass")
            with pytest.raises(Pop3InsecureError):
                await pop.apop("user", "pass")
        assert not any(
            c.startswith(("USER", "PASS", "AUTH", "APOP")) for c in srv.commands
        )


async def test_stls_refused_is_tls_error(certs: Certs) -> None:
    async with ScriptedPop3Server(
        [MSG1], stls_context=certs.server(certs.good), replies={"STLS": "-ERR not now"}
    ) as srv:
        pop = client(srv, security="starttls", ssl_context=certs.client())
        with pytest.raises(Pop3TlsError, match="refused STLS"):
            await pop.connect()
        assert not pop.encrypted


async def test_stls_upgrades_and_recaps(certs: Certs) -> None:
    async with ScriptedPop3Server([MSG1], stls_context=certs.server(certs.good)) as srv:
        async with client(srv, security="starttls", ssl_context=certs.client()) as pop:
            assert pop.encrypted
            assert "STLS" not in pop.capabilities
            await pop.login("user", "pass")
            out = io.BytesIO()
            await pop.retr_to(1, out)
            assert out.getvalue() == MSG1
        assert srv.commands[:3] == ["CAPA", "STLS", "CAPA"]


async def test_stls_response_injection_refused(certs: Certs) -> None:
    async with ScriptedPop3Server(
        [MSG1], stls_context=certs.server(certs.good), stls_inject=b"+OK injected\r\n"
    ) as srv:
        pop = client(srv, security="starttls", ssl_context=certs.client())
        with pytest.raises(Pop3TlsError):
            await pop.connect()
        assert not any(c.startswith(("USER", "PASS", "AUTH")) for c in srv.commands)


async def test_implicit_tls(certs: Certs) -> None:
    async with ScriptedPop3Server([MSG1], tls_context=certs.server(certs.good)) as srv:
        async with client(srv, security="tls", ssl_context=certs.client()) as pop:
            assert pop.encrypted
            await pop.login("user", "pass")
            assert await pop.stat() == (1, len(MSG1))


async def test_stls_default_context_rejects_untrusted_ca(certs: Certs) -> None:
    async with ScriptedPop3Server([MSG1], stls_context=certs.server(certs.good)) as srv:
        pop = client(srv, security="starttls")  # system CAs only: ours is unknown
        with pytest.raises(Pop3TlsError, match="did not verify"):
            await pop.connect()
        assert "STLS" in srv.commands and len(srv.commands) == 2


def _tls_cases() -> list[
    tuple[str, str, Callable[[Certs], tuple[Path, Path]], bool, str]
]:
    return [
        ("localhost", "wrong host", lambda c: c.wrong_host, True, "Hostname mismatch"),
        ("127.0.0.1", "wrong ip", lambda c: c.wrong_host, True, "IP address mismatch"),
        ("127.0.0.1", "expired", lambda c: c.expired, True, "certificate has expired"),
        (
            "127.0.0.1",
            "untrusted",
            lambda c: c.self_signed,
            False,
            "self-signed certificate",
        ),
    ]


@pytest.mark.parametrize(
    ("host", "label", "pick", "own_ca", "reason"),
    _tls_cases(),
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_certificates_are_tls_errors_with_reason(
    certs: Certs,
    host: str,
    label: str,
    pick: Callable[[Certs], tuple[Path, Path]],
    own_ca: bool,
    reason: str,
) -> None:
    async with ScriptedPop3Server([MSG1], tls_context=certs.server(pick(certs))) as srv:
        pop = Pop3Client(
            host, srv.port, security="tls", timeout=5,
            ssl_context=certs.client() if own_ca else None,
        )  # fmt: skip
        with pytest.raises(Pop3TlsError) as info:
            await pop.connect()
        err = info.value
        assert reason in str(err) and host in str(err)
        assert (
            reason in err.cause
            or "hostname" in err.cause.lower()
            or "host" in err.cause
        )
        assert "verify_tls = false" in err.fix
        assert not err.temporary
        assert srv.commands == []


async def test_verify_tls_false_accepts_self_signed(certs: Certs) -> None:
    async with ScriptedPop3Server(
        [MSG1], tls_context=certs.server(certs.self_signed)
    ) as srv:
        async with client(srv, security="tls", verify_tls=False) as pop:
            assert pop.encrypted
            await pop.login("user", "pass")


# -------------------------------------------------------------- property


_LINE = st.binary(max_size=40).filter(
    lambda b: b"\n" not in b and not b.endswith(b"\r")
)
_LINE = st.one_of(
    _LINE,
    st.sampled_from([b".", b"..", b".foo", b"", b"\0", b". ", b"\r"]).map(
        lambda b: b.rstrip(b"\r") if b == b"\r" else b
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(_LINE, max_size=12))
def test_property_retr_reads_back_what_was_stored(lines: list[bytes]) -> None:
    message = b"".join(line + b"\r\n" for line in lines)

    async def roundtrip() -> bytes:
        async with ScriptedPop3Server([message]) as srv:
            async with client(srv) as pop:
                await pop.login("user", "pass")
                out = io.BytesIO()
                count = await pop.retr_to(1, out)
                assert count == len(out.getvalue())
                return out.getvalue()

    assert asyncio.run(roundtrip()) == message
