"""Logging in: SASL PLAIN, USER/PASS and APOP, the errors a refusal means, and CAPA after login."""

from __future__ import annotations

import base64

import pytest

from pop3gui.core.errors import (
    Pop3AuthError,
    Pop3CommandError,
    Pop3InUseError,
    Pop3ProtocolError,
)
from pop3gui.core.pop3.login import MAX_COMMAND_LINE
from tests.core.pop3.common import MSG1, client
from tests.support.scripted_pop3 import ScriptedPop3Server


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


@pytest.mark.parametrize(("length", "continued"), [(174, False), (175, True)])
async def test_auth_plain_sends_the_initial_response_only_when_the_line_fits(length: int, continued: bool) -> None:
    password = "p" * length
    token = base64.b64encode(b"\0user\0" + password.encode()).decode()
    assert (len(f"AUTH PLAIN {token}\r\n") > MAX_COMMAND_LINE) is continued
    async with ScriptedPop3Server([MSG1], password=password) as srv:
        async with client(srv) as pop:
            await pop.login("user", password)
        expected = ["AUTH PLAIN", token] if continued else [f"AUTH PLAIN {token}"]
        assert srv.commands[1:-2] == expected


async def test_auth_plain_accepted_without_credentials_is_a_protocol_error() -> None:
    async with ScriptedPop3Server([MSG1], replies={"AUTH": "+OK come in"}) as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3ProtocolError, match="accepted AUTH PLAIN without credentials"):
                await pop.login("user", "p" * 300)
        assert "AUTH PLAIN" in srv.commands
        assert not any(c.startswith("AUTH PLAIN ") for c in srv.commands)


async def test_auth_plain_refused_before_the_continuation_is_a_login_error() -> None:
    async with ScriptedPop3Server([MSG1], replies={"AUTH": "-ERR [AUTH] no such user"}) as srv:
        async with client(srv) as pop:
            with pytest.raises(Pop3AuthError, match="no such user"):
                await pop.login("user", "p" * 300)


async def test_capabilities_from_before_login_stay_when_capa_after_login_fails() -> None:
    before = "+OK\r\nUIDL\r\nPIPELINING\r\nUSER\r\n."
    async with ScriptedPop3Server([MSG1], sasl=[], replies={"CAPA": [before, "-ERR not now"]}) as srv:
        async with client(srv) as pop:
            assert set(pop.capabilities) == {"UIDL", "PIPELINING", "USER"}
            await pop.login("user", "pass")
            assert set(pop.capabilities) == {"UIDL", "PIPELINING", "USER"}
        assert srv.commands[:4] == ["CAPA", "USER user", "PASS pass", "CAPA"]


async def test_capabilities_announced_after_login_replace_the_earlier_ones() -> None:
    before = "+OK\r\nUSER\r\n."
    async with ScriptedPop3Server([MSG1], sasl=[], pipelining=True, replies={"CAPA": [before]}) as srv:
        async with client(srv) as pop:
            assert not pop.supports_pipelining
            await pop.login("user", "pass")
            assert pop.supports_pipelining
