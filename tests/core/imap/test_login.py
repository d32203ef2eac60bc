"""Logging in to IMAP: PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER; refusals by RFC 5530 code; TLS and STARTTLS;
no secret in plaintext unless allowed, and never in the transcript."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from pop3gui.core.errors import (
    ConfigError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxInsecureError,
    MailboxInUseError,
    MailboxProtocolError,
    MailboxTimeoutError,
    MailboxTlsError,
    MailboxTokenRefused,
    OAuthError,
)
from pop3gui.core.imap.client import ImapClient
from tests.core.imap import close_clients, MSG1, client, explained
from tests.servers import certs as test_certs
from tests.support.scripted_imap import ScriptedImapServer

__all__ = ["close_clients"]  # the fixture closes every client a test made

OAUTH = ["PLAIN", "XOAUTH2", "OAUTHBEARER"]
TOKEN = "ya29.a0AfH6SMBx-secret-token_value.0123456789"
PASSWORD = "s3cr\u00e9t p\u00e4ss \"quoted\" \\back"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def no_secret_in(imap: ImapClient, *secrets: str) -> None:
    """Neither a secret nor its base64 forms are anywhere in the transcript."""
    text = "\n".join(imap.transcript)
    for secret in secrets:
        assert secret not in text
        for form in (secret, f"\0user\0{secret}", f"auth=Bearer {secret}"):
            encoded = base64.b64encode(form.encode()).decode()
            assert encoded[4:-4] not in text if len(encoded) > 16 else encoded not in text


# ------------------------------------------------------------------ passwords


@pytest.mark.parametrize("sasl_ir", [True, False])
async def test_authenticate_plain_carries_utf8_and_stays_out_of_the_transcript(sasl_ir: bool) -> None:
    async with ScriptedImapServer([MSG1], password=PASSWORD, sasl_ir=sasl_ir) as srv:
        async with client(srv) as imap:
            await imap.login("user", PASSWORD)
            assert (await imap.select("INBOX")).exists == 1
        secret = b64(f"\0user\0{PASSWORD}")
        if sasl_ir:
            assert srv.commands[0] == f"P0001 AUTHENTICATE PLAIN {secret}"
        else:
            assert srv.commands[:2] == ["P0001 AUTHENTICATE PLAIN", secret]
        assert ("C: P0001 AUTHENTICATE PLAIN ****" if sasl_ir else "C: AUTHENTICATE PLAIN ****") in imap.transcript
        no_secret_in(imap, PASSWORD)


async def test_login_when_plain_is_not_offered_quotes_and_redacts() -> None:
    password = 'p"a\\ss'
    async with ScriptedImapServer([MSG1], password=password, sasl=[]) as srv:
        async with client(srv) as imap:
            await imap.login("user", password)
        assert srv.commands[0] == 'P0001 LOGIN "user" "p\\"a\\\\ss"'
        assert 'C: P0001 LOGIN "user" ****' in imap.transcript
        no_secret_in(imap, password, 'p\\"a\\\\ss')


async def test_login_cannot_carry_a_non_ascii_password() -> None:
    async with ScriptedImapServer([MSG1], password=PASSWORD, sasl=[]) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxAuthError, match="non-ASCII") as info:
                await imap.login("user", PASSWORD)
            explained(info.value)
        assert srv.commands == ["P0001 LOGOUT"]  # nothing of the password went out


async def test_capabilities_are_asked_for_after_login_when_the_ok_does_not_carry_them() -> None:
    async with ScriptedImapServer([MSG1], login_capability=False, greeting_capability=False) as srv:
        async with client(srv) as imap:
            assert "AUTH=PLAIN" in imap.capabilities
            await imap.login("user", "pass")
            assert "AUTH=PLAIN" not in imap.capabilities and "IDLE" in imap.capabilities
        assert [c.split()[1] for c in srv.commands] == ["CAPABILITY", "AUTHENTICATE", "CAPABILITY", "LOGOUT"]


async def test_a_wrong_password_is_an_auth_error_and_the_session_stays_in_step() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxAuthError) as info:
                await imap.login("user", "wrong")
            err = info.value
            explained(err)
            assert not err.temporary and err.resp_code == "AUTHENTICATIONFAILED"
            assert err.reply == "NO [AUTHENTICATIONFAILED] Authentication failed."
            await imap.login("user", "pass")
            await imap.noop()


@pytest.mark.parametrize(
    ("reply", "kind", "temporary"),
    [
        ("NO [AUTHENTICATIONFAILED] Authentication failed.", MailboxAuthError, False),
        ("NO [AUTHORIZATIONFAILED] not for you", MailboxAuthError, False),
        ("NO [EXPIRED] password expired", MailboxAuthError, False),
        ("NO [INUSE] mailbox locked", MailboxInUseError, True),
        ("NO [UNAVAILABLE] backend down", MailboxCommandError, True),
        ("NO [SERVERBUG] oops", MailboxCommandError, True),
        ("NO [LIMIT] too many connections", MailboxCommandError, True),
        ("NO [CONTACTADMIN] call us", MailboxCommandError, True),
        ("BAD unknown command", MailboxProtocolError, True),
    ],
)
async def test_refusals_mean_what_their_code_says(reply: str, kind: type[MailboxCommandError],
                                                  temporary: bool) -> None:
    async with ScriptedImapServer([MSG1], replies={"AUTHENTICATE": reply}) as srv:
        async with client(srv) as imap:
            with pytest.raises(kind) as info:
                await imap.login("user", "pass")
    err = info.value
    assert type(err) is kind
    explained(err)
    assert err.temporary is temporary and err.reply == reply
    assert (kind is MailboxAuthError) == isinstance(err, MailboxAuthError)


async def test_a_refusal_that_asks_for_an_app_password_says_so() -> None:
    reply = "NO [ALERT] Application-specific password required"
    async with ScriptedImapServer([MSG1], replies={"AUTHENTICATE": reply}) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxAuthError) as info:
                await imap.login("user", "pass")
    assert "app password" in info.value.cause


@pytest.mark.parametrize("bad", ["a\r\nb", "a\nb", "a\0b"])
async def test_a_user_or_password_with_a_line_break_is_a_config_error(bad: str) -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        async with client(srv) as imap:
            with pytest.raises(ConfigError):
                await imap.login("user", bad)
            with pytest.raises(ConfigError):
                await imap.login(bad, "pass")
        assert srv.commands == ["P0001 LOGOUT"]


async def test_preauth_needs_no_login() -> None:
    async with ScriptedImapServer([MSG1], preauth=True) as srv:
        async with client(srv) as imap:
            await imap.login("user", "anything")
            await imap.login_oauth("user", "anything")
            assert (await imap.select("INBOX")).exists == 1
        assert [c.split()[1] for c in srv.commands] == ["SELECT", "LOGOUT"]


# -------------------------------------------------------- insecure connections


async def test_logindisabled_refuses_the_password_before_it_goes_out() -> None:
    async with ScriptedImapServer([MSG1], logindisabled=True) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxInsecureError, match="does not allow a password login") as info:
                await imap.login("user", "pass")
            explained(info.value)
            assert not info.value.temporary and "tls" in info.value.fix
        assert srv.commands == ["P0001 LOGOUT"]


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_no_password_or_token_over_an_unencrypted_connection_unless_allowed(security: str) -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH) as srv:
        async with client(srv) as imap:
            imap.security = security  # as if TLS had been asked for and somehow not set up
            with pytest.raises(MailboxInsecureError, match="without encryption") as info:
                await imap.login("user", "pass")
            explained(info.value)
            with pytest.raises(MailboxInsecureError, match="access token"):
                await imap.login_oauth("user", TOKEN)
            imap.security = "none"
        assert srv.commands == ["P0001 LOGOUT"]


# ---------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> test_certs.TestCertificates:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return test_certs.make_certificates(Path(tmp_path_factory.mktemp("imap-tls")))


def server_tls(certs: test_certs.TestCertificates) -> object:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(certs.cert_path), str(certs.key_path))
    return ctx


async def test_implicit_tls(certs: test_certs.TestCertificates) -> None:
    async with ScriptedImapServer([MSG1], tls_context=server_tls(certs)) as srv:  # type: ignore[arg-type]
        async with client(srv, security="tls", ssl_context=certs.client_context()) as imap:
            assert imap.encrypted
            await imap.login("user", "pass")
            assert (await imap.select("INBOX")).exists == 1


async def test_starttls_upgrades_forgets_old_capabilities_and_then_allows_the_password(
        certs: test_certs.TestCertificates) -> None:
    async with ScriptedImapServer([MSG1], starttls_context=server_tls(certs),  # type: ignore[arg-type]
                                  logindisabled=True, greeting_capability=False) as srv:
        async with client(srv, security="starttls", ssl_context=certs.client_context()) as imap:
            assert imap.encrypted
            assert "STARTTLS" not in imap.capabilities and "LOGINDISABLED" not in imap.capabilities
            assert "-- TLS started" in imap.transcript
            await imap.login("user", "pass")
        assert [c.split()[1] for c in srv.commands] == ["CAPABILITY", "STARTTLS", "CAPABILITY", "AUTHENTICATE",
                                                        "LOGOUT"]


async def test_data_injected_after_the_starttls_ok_is_refused(certs: test_certs.TestCertificates) -> None:
    inject = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] injected\r\n"
    async with ScriptedImapServer([MSG1], starttls_context=server_tls(certs),  # type: ignore[arg-type]
                                  starttls_inject=inject) as srv:
        imap = client(srv, security="starttls", ssl_context=certs.client_context())
        with pytest.raises(MailboxTlsError, match="unexpected data right after STARTTLS") as info:
            await imap.connect()
        explained(info.value)
        assert not imap.connected and not info.value.temporary
        assert [c.split()[1] for c in srv.commands] == ["STARTTLS"]


async def test_starttls_not_offered_is_refused_before_any_secret() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        imap = client(srv, security="starttls")
        with pytest.raises(MailboxTlsError, match="does not offer STARTTLS") as info:
            await imap.connect()
        explained(info.value)
        assert not imap.connected and srv.commands == []


async def test_starttls_refused(certs: test_certs.TestCertificates) -> None:
    async with ScriptedImapServer([MSG1], starttls_context=server_tls(certs),  # type: ignore[arg-type]
                                  replies={"STARTTLS": "NO not now"}) as srv:
        imap = client(srv, security="starttls", ssl_context=certs.client_context())
        with pytest.raises(MailboxTlsError, match="refused STARTTLS: not now"):
            await imap.connect()
        assert not imap.connected


async def test_preauth_on_a_plain_connection_cannot_skip_starttls(certs: test_certs.TestCertificates) -> None:
    """A PREAUTH greeting (a man in the middle's trick) must not turn a starttls account into plaintext."""
    async with ScriptedImapServer([MSG1], preauth=True,
                                  starttls_context=server_tls(certs)) as srv:  # type: ignore[arg-type]
        imap = client(srv, security="starttls", ssl_context=certs.client_context())
        with pytest.raises(MailboxTlsError):
            await imap.connect()
        assert not imap.connected


# -------------------------------------------------------------------- OAuth2


@pytest.mark.parametrize("sasl_ir", [True, False])
@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
async def test_an_accepted_token(mechanism: str, sasl_ir: bool) -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH, sasl_ir=sasl_ir, token=TOKEN) as srv:
        async with client(srv) as imap:
            await imap.login_oauth("user", TOKEN, mechanism=mechanism)
            assert (await imap.select("INBOX")).exists == 1
        record = srv.oauth_logins[0]
        assert (record["mechanism"], record["user"], record["token"]) == (mechanism.upper(), "user", TOKEN)
        assert record["form"] == ("initial" if sasl_ir else "continued")
        if mechanism == "oauthbearer":
            assert (record["host"], record["port"], record["gs2"]) == ("127.0.0.1", str(srv.port), "n,a=user,")
        assert f"{mechanism.upper()} **** (token, redacted)" in "\n".join(imap.transcript)
        no_secret_in(imap, TOKEN)


async def test_the_mechanism_is_tried_even_when_not_announced() -> None:
    async with ScriptedImapServer([MSG1], sasl=["PLAIN"], unlisted_sasl=["XOAUTH2"]) as srv:
        async with client(srv) as imap:
            await imap.login_oauth("user", "token")
            await imap.noop()


@pytest.mark.parametrize(
    ("mechanism", "answer", "status", "scope"),
    [("xoauth2", "", "401", "https://mail.example/.default"), ("oauthbearer", "AQ==", "invalid_token", "mail")],
)
@pytest.mark.parametrize("sasl_ir", [True, False])
async def test_a_refused_token_gets_its_challenge_answered_and_is_token_refused(
        mechanism: str, answer: str, status: str, scope: str, sasl_ir: bool) -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH, sasl_ir=sasl_ir) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxTokenRefused) as info:
                await imap.login_oauth("user", TOKEN, mechanism=mechanism)
            await imap.login("user", "pass")  # still in step
        assert srv.oauth_logins[0]["answer"] == answer
        no_secret_in(imap, TOKEN)
    err = info.value
    explained(err)
    assert (err.status, err.scope, err.resp_code) == (status, scope, "AUTHENTICATIONFAILED")
    assert isinstance(err, MailboxAuthError) and not err.temporary
    assert f"status {status}" in err.cause and "Sign in again" in err.fix
    assert any(line.startswith("-- the server's error: {") for line in imap.transcript)


async def test_a_refusal_without_challenge_is_token_refused() -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH, oauth_challenge=False) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxTokenRefused) as info:
                await imap.login_oauth("user", "wrong")
        assert "answer" not in srv.oauth_logins[0]
    assert (info.value.status, info.value.scope) == ("", "")


@pytest.mark.parametrize("challenge", ["not base64!", b64("[1]"), b64("{" * 3000), ""])
async def test_a_garbled_error_challenge_is_still_token_refused(challenge: str) -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH, oauth_challenge=challenge) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxTokenRefused):
                await imap.login_oauth("user", "wrong")
            await imap.login("user", "pass")
    assert all(line.isprintable() and len(line) < 600 for line in imap.transcript)


async def test_the_mechanism_refused_before_the_token_says_it_may_not_be_offered() -> None:
    async with ScriptedImapServer([MSG1], sasl=["PLAIN"], sasl_ir=False) as srv:
        async with client(srv) as imap:
            with pytest.raises(MailboxAuthError) as info:
                await imap.login_oauth("user", TOKEN)
            assert not isinstance(info.value, MailboxTokenRefused)
            assert "does not list XOAUTH2" in info.value.cause
        assert srv.commands[0] == "P0001 AUTHENTICATE XOAUTH2"
        assert srv.oauth_logins == []


async def test_ok_after_an_error_challenge_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH, oauth_final="OK but you were refused") as srv:
        imap = await _connected(srv)
        with pytest.raises(MailboxProtocolError, match="then accepted it") as info:
            await imap.login_oauth("user", "wrong")
        explained(info.value)
        assert not imap.connected


async def test_a_second_challenge_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH, oauth_final="+ again") as srv:
        imap = await _connected(srv)
        with pytest.raises(MailboxProtocolError, match="kept challenging"):
            await imap.login_oauth("user", "wrong")
        assert not imap.connected


async def test_no_final_answer_times_out_and_closes() -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH, oauth_final=None) as srv:
        imap = await _connected(srv, timeout=0.3)
        with pytest.raises(MailboxTimeoutError) as info:
            await imap.login_oauth("user", "wrong")
        explained(info.value)
        assert not imap.connected


@pytest.mark.parametrize("token", ["", "has space", "line\r\nbreak", "tab\there", "caf\u00e9"])
async def test_a_malformed_token_is_never_sent(token: str) -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH) as srv:
        async with client(srv) as imap:
            with pytest.raises(OAuthError):
                await imap.login_oauth("user", token)
        assert srv.commands == ["P0001 LOGOUT"]


async def test_unknown_mechanism_and_bad_user_are_config_errors() -> None:
    async with ScriptedImapServer([MSG1], sasl=OAUTH) as srv:
        async with client(srv) as imap:
            with pytest.raises(ConfigError, match="mechanism"):
                await imap.login_oauth("user", TOKEN, mechanism="gssapi")
            for user in ("", "a\x01b", "a\r\nb"):
                with pytest.raises(ConfigError):
                    await imap.login_oauth(user, TOKEN)
        assert srv.commands == ["P0001 LOGOUT"]


async def _connected(srv: ScriptedImapServer, **kw: object) -> ImapClient:
    imap = client(srv, **kw)
    await imap.connect()
    return imap
