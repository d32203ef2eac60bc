"""Logging in: SASL PLAIN, USER/PASS, APOP and OAuth2 (XOAUTH2, OAUTHBEARER), the errors a
refusal means, and CAPA after login."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator

import pytest

from pop3gui.core.errors import (
    ConfigError,
    OAuthError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxInsecureError,
    MailboxInUseError,
    MailboxProtocolError,
    MailboxTimeoutError,
    MailboxTokenRefused,
)
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.pop3.login import MAX_COMMAND_LINE, token_challenge
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
            with pytest.raises(MailboxCommandError, match="does not offer APOP"):
                await pop.apop("user", "pass")
        assert not any(c.startswith("APOP") for c in srv.commands)


async def test_wrong_password_is_auth_error() -> None:
    async with ScriptedPop3Server([MSG1], sasl=[]) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxAuthError) as info:
                await pop.login("user", "wrong")
    err = info.value
    assert err.resp_code == "AUTH" and not err.temporary
    assert "app password" in err.fix and "password" in err.cause
    assert err.reply.startswith("-ERR [AUTH]")


async def test_any_err_at_login_is_auth_error() -> None:
    async with ScriptedPop3Server([MSG1], replies={"AUTH": "-ERR nope"}) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxAuthError):
                await pop.login("user", "pass")


async def test_in_use_at_login() -> None:
    async with ScriptedPop3Server(
        [MSG1], sasl=[], replies={"PASS": "-ERR [IN-USE] locked"}
    ) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxInUseError) as info:
                await pop.login("user", "pass")
    err = info.value
    assert (
        err.temporary
        and err.resp_code == "IN-USE"
        and err.reply == "-ERR [IN-USE] locked"
    )
    assert "another" in err.cause.lower() and err.fix
    assert not isinstance(err, MailboxAuthError)


async def test_sys_temp_at_login_is_not_auth_error() -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"AUTH": "-ERR [SYS/TEMP] db down"}
    ) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxCommandError) as info:
                await pop.login("user", "pass")
    assert not isinstance(info.value, MailboxAuthError) and info.value.temporary


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
            with pytest.raises(MailboxAuthError):
                await pop.login("user", "pass")
            with pytest.raises(MailboxCommandError) as info:  # NOOP's own reply
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
            with pytest.raises(MailboxProtocolError, match="accepted AUTH PLAIN without credentials"):
                await pop.login("user", "p" * 300)
        assert "AUTH PLAIN" in srv.commands
        assert not any(c.startswith("AUTH PLAIN ") for c in srv.commands)


async def test_auth_plain_refused_before_the_continuation_is_a_login_error() -> None:
    async with ScriptedPop3Server([MSG1], replies={"AUTH": "-ERR [AUTH] no such user"}) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxAuthError, match="no such user"):
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


# -- OAuth2: SASL XOAUTH2 and OAUTHBEARER with an access token ----------------------------------

TOKEN = "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + "x" * 1470  # as long as Microsoft's
OAUTH_SASL = ["PLAIN", "XOAUTH2", "OAUTHBEARER"]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


async def test_xoauth2_sends_the_two_line_form_exchange_online_wants() -> None:
    user = "alice@contoso.com"
    async with ScriptedPop3Server([MSG1], user=user, token=TOKEN, sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            await pop.login_oauth(user, TOKEN)
            assert await pop.stat() == (1, len(MSG1))
        response = _b64(f"user={user}\x01auth=Bearer {TOKEN}\x01\x01")
        assert srv.commands[1:3] == ["AUTH XOAUTH2", response]
        assert srv.oauth_logins == [{"mechanism": "XOAUTH2", "form": "continued", "user": user, "token": TOKEN}]
        assert srv.commands.count("CAPA") == 2  # asked again once logged in


async def test_oauthbearer_sends_the_rfc_7628_response_with_host_and_port() -> None:
    user = "alice@contoso.com"
    async with ScriptedPop3Server([MSG1], user=user, token=TOKEN, sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            await pop.login_oauth(user, TOKEN, mechanism="oauthbearer")
            assert await pop.stat() == (1, len(MSG1))
        response = _b64(f"n,a={user},\x01host=127.0.0.1\x01port={srv.port}\x01auth=Bearer {TOKEN}\x01\x01")
        assert srv.commands[1:3] == ["AUTH OAUTHBEARER", response]
        assert srv.oauth_logins[0]["gs2"] == f"n,a={user},"


async def test_oauthbearer_escapes_comma_and_equals_in_the_authorization_identity() -> None:
    user = "odd,name=x@contoso.com"
    async with ScriptedPop3Server([MSG1], user=user, sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            await pop.login_oauth(user, "token", mechanism="OAUTHBEARER")
        assert srv.oauth_logins[0]["gs2"] == "n,a=odd=2Cname=3Dx@contoso.com,"
        assert srv.oauth_logins[0]["user"] == user


async def test_the_mechanism_is_tried_even_when_capa_does_not_list_it() -> None:
    """Exchange Online does not always announce XOAUTH2 and takes it all the same."""
    async with ScriptedPop3Server([MSG1], sasl=["PLAIN"], unlisted_sasl=["XOAUTH2"]) as srv:
        async with client(srv) as pop:
            await pop.login_oauth("user", "token")
            assert await pop.stat() == (1, len(MSG1))


@pytest.mark.parametrize(
    ("mechanism", "answer", "status", "scope"),
    [("xoauth2", "", "401", "mail"), ("oauthbearer", "AQ==", "invalid_token", "")],
)
async def test_a_refused_token_gets_its_challenge_answered_and_raises_token_refused(
    mechanism: str, answer: str, status: str, scope: str
) -> None:
    """Dovecot (and Google) send the error as '+ base64(JSON)' and wait for the client's answer."""
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxTokenRefused) as info:
                await pop.login_oauth("user", "expired-token", mechanism=mechanism)
        assert srv.oauth_logins[0]["answer"] == answer
    err = info.value
    assert isinstance(err, MailboxAuthError) and not err.temporary
    assert (err.status, err.scope) == (status, scope)
    assert err.reply == "-ERR [AUTH] Authentication failed." and err.resp_code == "AUTH"
    assert "expired" in err.cause and "revoked" in err.cause and "scope" in err.cause
    assert "Sign in again" in err.fix and "permission" in err.fix
    assert f"status {status}" in err.cause
    assert any(line.startswith("-- the server's error: {") for line in pop.transcript)


async def test_the_session_stays_in_step_after_a_refused_token() -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxTokenRefused):
                await pop.login_oauth("user", "wrong")
            await pop.login("user", "pass")  # the next exchange reads its own replies
            assert await pop.stat() == (1, len(MSG1))


@pytest.mark.parametrize(
    ("challenge", "status"),
    [
        ("not base64 at all!", ""),
        (_b64("this is not json"), ""),
        (_b64('["a", "list"]'), ""),
        (_b64('{"status": {"nested": 1}, "scope": ["mail"]}'), ""),
        (_b64("[" * 5000 + "]" * 5000), ""),
        (_b64('{"status": ' + "9" * 5000 + "}"), ""),
        (_b64('{"status": "401\\r\\n-ERR forged"}'), "401??-ERR forged"),
        (_b64('{"status": "' + "4" * 1000 + '"}'), "4" * 200 + "..."),
        ("eyJzdGF0dXMiOiI0MDEifQ", "401"),  # {"status":"401"} without its padding
        ("", ""),
    ],
    ids=["not-base64", "not-json", "json-list", "odd-types", "deep", "huge-int", "control-chars", "long",
         "unpadded", "empty"],
)
async def test_a_garbled_error_challenge_still_ends_in_token_refused(challenge: str, status: str) -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL, oauth_challenge=challenge) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxTokenRefused) as info:
                await pop.login_oauth("user", "wrong")
            assert srv.oauth_logins[0]["answer"] == ""
            await pop.login("user", "pass")  # still in step
    assert (info.value.status, info.value.scope) == (status, "")
    assert all(line.isprintable() and len(line) < 600 for line in pop.transcript)


async def test_err_at_once_after_the_token_is_token_refused() -> None:
    """Exchange Online sends no challenge, only its -ERR, and does not list XOAUTH2."""
    final = "-ERR Authentication failure: unknown user name or bad password."
    async with ScriptedPop3Server([MSG1], sasl=["PLAIN"], unlisted_sasl=["XOAUTH2"], oauth_challenge=False,
                                  oauth_final=final) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxTokenRefused) as info:
                await pop.login_oauth("user", "wrong")
            await pop.login("user", "pass")  # still in step
        assert "answer" not in srv.oauth_logins[0]
    err = info.value
    assert (err.status, err.scope, err.reply) == ("", "", final)
    assert "expired" in err.cause and "may not offer" not in err.cause


async def test_err_to_auth_itself_on_a_server_without_the_mechanism_says_it_may_not_offer_oauth() -> None:
    async with ScriptedPop3Server([MSG1], sasl=["PLAIN"]) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxAuthError) as info:
                await pop.login_oauth("user", TOKEN)
        assert srv.commands[1] == "AUTH XOAUTH2"
        assert not any(TOKEN in c or c.startswith("dXNlcj") for c in srv.commands)  # the token never went out
    err = info.value
    assert not isinstance(err, MailboxTokenRefused)  # no token was judged: renewing one would not help
    assert "may not offer OAuth2" in err.cause and "XOAUTH2" in err.cause
    assert err.reply == "-ERR unsupported mechanism"


async def test_err_to_auth_itself_on_a_server_that_lists_it_is_a_login_refusal_not_a_token_one() -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL, replies={"AUTH": "-ERR [AUTH] not for you"}) as srv:
        async with client(srv) as pop:
            with pytest.raises(MailboxAuthError) as info:
                await pop.login_oauth("user", "token")
    assert "announces XOAUTH2" in info.value.cause and not isinstance(info.value, MailboxTokenRefused)


@pytest.mark.parametrize(
    ("reply", "kind"),
    [("-ERR [IN-USE] locked", MailboxInUseError), ("-ERR [SYS/TEMP] introspection down", MailboxCommandError)],
)
async def test_response_codes_keep_their_meaning_at_oauth_sign_in(reply: str, kind: type[MailboxCommandError]) -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL, oauth_challenge=False, oauth_final=reply) as srv:
        async with client(srv) as pop:
            with pytest.raises(kind) as info:
                await pop.login_oauth("user", "token-the-server-cannot-check")
    assert not isinstance(info.value, MailboxTokenRefused) and info.value.temporary


@contextlib.asynccontextmanager
async def _session(srv: ScriptedPop3Server, **kw: object) -> AsyncIterator[Pop3Client]:
    """A connected client that is closed, not QUIT, at the end: for sessions an error ends."""
    pop = client(srv, **kw)
    await pop.connect()
    try:
        yield pop
    finally:
        await pop.close()


async def test_auth_accepted_without_a_token_is_a_protocol_error() -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL, replies={"AUTH": "+OK come in"}) as srv:
        async with _session(srv) as pop:
            with pytest.raises(MailboxProtocolError, match="without a token"):
                await pop.login_oauth("user", "token")
            assert not pop._stream.connected


@pytest.mark.parametrize("final", ["+OK welcome after all", "+ again"])
async def test_a_server_that_does_not_end_a_refusal_with_err_is_a_protocol_error(final: str) -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL, oauth_final=final) as srv:
        async with _session(srv) as pop:
            with pytest.raises(MailboxProtocolError):
                await pop.login_oauth("user", "wrong")
            assert not pop._stream.connected


@pytest.mark.parametrize("challenge", [True, False], ids=["after-the-challenge", "without-challenge"])
async def test_a_server_silent_after_the_token_is_a_timeout(challenge: bool) -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL, oauth_challenge=challenge, oauth_final=None) as srv:
        async with _session(srv, timeout=0.5) as pop:
            with pytest.raises(MailboxTimeoutError):
                await pop.login_oauth("user", "wrong")
            assert not pop._stream.connected


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
async def test_the_token_never_reaches_the_transcript(mechanism: str) -> None:
    async with ScriptedPop3Server([MSG1], token=TOKEN, sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            await pop.login_oauth("user", TOKEN, mechanism=mechanism)
            with pytest.raises(MailboxTokenRefused):  # a second, refused sign-in on a fresh session
                await pop.close()
                await pop.connect()
                await pop.login_oauth("user", TOKEN[:-1] + "Q", mechanism=mechanism)
        text = "\n".join(pop.transcript)
        sent = [c for c in srv.commands if c.startswith(("dXNlcj", "bixh"))]  # base64 of "user=" / "n,a"
        assert len(sent) == 2
        for secret in (TOKEN, TOKEN[:200], *sent):
            assert secret not in text
        assert f"C: **** ({mechanism.upper()} token, redacted)" in pop.transcript


async def test_no_token_goes_out_before_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if STLS were skipped by a bug, the token is not sent in plaintext."""

    async def no_tls(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr("pop3gui.core.pop3.client.starttls", no_tls)
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL) as srv:
        async with client(srv, security="starttls") as pop:
            for mechanism in ("xoauth2", "oauthbearer"):
                with pytest.raises(MailboxInsecureError, match="access token"):
                    await pop.login_oauth("user", "token", mechanism=mechanism)
        assert not any(c.startswith("AUTH") for c in srv.commands)


@pytest.mark.parametrize(
    ("user", "token", "error"),
    [
        ("user", "", OAuthError),
        ("user", "tok en", OAuthError),
        ("user", "token\r\nDELE 1", OAuthError),
        ("user", "tök", OAuthError),
        ("us\x01er", "token", ConfigError),
        ("user\r\nDELE 1", "token", ConfigError),
        ("", "token", ConfigError),
    ],
    ids=["empty-token", "space", "crlf", "non-ascii", "soh-in-user", "crlf-in-user", "empty-user"],
)
async def test_what_would_break_the_sasl_response_is_never_sent(user: str, token: str, error: type[Exception]) -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            with pytest.raises(error):
                await pop.login_oauth(user, token)
        assert not any(c.startswith("AUTH") for c in srv.commands)


async def test_an_unknown_mechanism_is_a_config_error() -> None:
    async with ScriptedPop3Server([MSG1], sasl=OAUTH_SASL) as srv:
        async with client(srv) as pop:
            with pytest.raises(ConfigError, match="mechanism"):
                await pop.login_oauth("user", "token", mechanism="plain")
        assert not any(c.startswith("AUTH") for c in srv.commands)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=\r\n", ("401", "mail")),
        (b"+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n", ("invalid_token", "")),
        (b"+ " + base64.b64encode(b'{"status":400,"scope":"https://mail.google.com/"}') + b"\r\n",
         ("400", "https://mail.google.com/")),
        (b"+ " + base64.b64encode(b'{"status":true}') + b"\r\n", ("", "")),
        (b"+\r\n", ("", "")),
    ],
)
def test_the_error_challenge_gives_status_and_scope(line: bytes, expected: tuple[str, str]) -> None:
    status, scope, _ = token_challenge(line)
    assert (status, scope) == expected
