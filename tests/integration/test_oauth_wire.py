"""OAuth2 on the wire: access tokens from the fake provider, checked by a real Dovecot's oauth2 passdb.

Dovecot asks the provider about every token (RFC 7662 introspection), so a
token works exactly while the provider calls it active: revoking or expiring
it there is what makes Dovecot refuse it.  The later tests hold the fake
provider itself to the flows the connector's sign-in code relies on: PKCE
authorization code, refresh token rotation, the device flow, client
credentials, introspection and revocation.
"""

from __future__ import annotations

import base64
import io
import json
import secrets
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from pop3gui.core.errors import MailboxCommandError, MailboxTokenRefused
from pop3gui.core.pop3.client import Pop3Client
from tests.servers.pop3_fixtures import OAuthDovecot
from tests.support.oauth_server import DEVICE_GRANT, FakeAuthServer, pkce_challenge
from tests.support.office import make_message

REDIRECT = "http://127.0.0.1:53682/callback"


# -- talking to the provider over HTTP ---------------------------------------------------------------


def post(url: str, **form: str) -> tuple[int, dict[str, Any]]:
    """POST a form; the status and the JSON answer (errors included)."""
    request = urllib.request.Request(url, data=urlencode(form).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def authorize(server: FakeAuthServer, **params: str) -> tuple[int, dict[str, str]]:
    """The browser step: GET /authorize; the status and the query of where it redirects to."""
    query = {"response_type": "code", "client_id": server.client_id, "redirect_uri": REDIRECT,
             "scope": "https://outlook.office.com/POP.AccessAsUser.All offline_access", "state": "st-1",
             **params}
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(server.authorize_url + "?" + urlencode(query), timeout=10) as response:
            return response.status, {}
    except urllib.error.HTTPError as exc:
        with exc:
            location = exc.headers.get("Location") or ""
            if location:
                assert location.startswith(REDIRECT + "?")
            return exc.code, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def sign_in(server: FakeAuthServer) -> dict[str, Any]:
    """A whole authorization code sign-in with PKCE, as the connector makes it; the token response."""
    verifier = secrets.token_urlsafe(64)
    status, back = authorize(server, code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    assert status == 302 and back["state"] == "st-1"
    status, tokens = post(server.token_url, grant_type="authorization_code", code=back["code"],
                          redirect_uri=REDIRECT, code_verifier=verifier, client_id=server.client_id)
    assert status == 200, tokens
    return tokens


def claims(id_token: str) -> dict[str, Any]:
    header, body, signature = id_token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "none", "typ": "JWT"}
    assert signature == ""
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


# -- a real Dovecot takes the provider's tokens --------------------------------------------------------


def pop3(dovecot: OAuthDovecot, security: str) -> Pop3Client:
    if security == "tls":
        return Pop3Client("127.0.0.1", dovecot.pop3s_port, security="tls", ssl_context=dovecot.server.ssl_context(),
                          timeout=20)
    if security == "starttls":
        return Pop3Client("localhost", dovecot.pop3_port, security="starttls",
                          ssl_context=dovecot.server.ssl_context(), timeout=20)
    return Pop3Client("127.0.0.1", dovecot.pop3_port, security="none", timeout=20)


@pytest.mark.servers
@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
async def test_a_signed_in_token_logs_in_and_retrieves_the_mail(
        dovecot_oauth: OAuthDovecot, mechanism: str, security: str) -> None:
    message = make_message(to=dovecot_oauth.user, subject="over OAuth2")
    dovecot_oauth.deliver(message)
    tokens = sign_in(dovecot_oauth.auth)
    assert len(tokens["access_token"]) == 1500  # a Microsoft-sized token fits Dovecot's limits
    async with pop3(dovecot_oauth, security) as pop:
        assert pop.encrypted is (security != "none")
        await pop.login_oauth(dovecot_oauth.user, tokens["access_token"], mechanism=mechanism)
        assert "UIDL" in pop.capabilities  # asked again once logged in
        sizes = await pop.list()
        assert list(sizes) == [1]
        got = io.BytesIO()
        await pop.retr_to(1, got)
    assert got.getvalue() == message
    assert dovecot_oauth.auth.introspections == 1
    text = "\n".join(pop.transcript)
    assert tokens["access_token"] not in text and tokens["access_token"][:64] not in text
    assert f"C: **** ({mechanism.upper()} token, redacted)" in pop.transcript


@pytest.mark.servers
@pytest.mark.parametrize(("mechanism", "status", "scope"),
                         [("xoauth2", "401", "mail"), ("oauthbearer", "invalid_token", "")])
async def test_a_revoked_token_is_refused_with_what_dovecot_said(
        dovecot_oauth: OAuthDovecot, mechanism: str, status: str, scope: str) -> None:
    tokens = dovecot_oauth.auth.issue_tokens()
    dovecot_oauth.auth.revoke_all()
    async with pop3(dovecot_oauth, "tls") as pop:
        with pytest.raises(MailboxTokenRefused) as caught:
            await pop.login_oauth(dovecot_oauth.user, tokens["access_token"], mechanism=mechanism)
        # The refusal ended the exchange cleanly: the session goes on (and QUITs).
        with pytest.raises(MailboxCommandError):
            await pop.stat()
    exc = caught.value
    assert (exc.status, exc.scope) == (status, scope)
    assert exc.reply == "-ERR [AUTH] Authentication failed." and exc.resp_code == "AUTH"
    assert not exc.temporary and "expired" in exc.cause and "Sign in again" in exc.fix


@pytest.mark.servers
async def test_an_expired_token_is_refused_and_the_refreshed_one_gets_in(dovecot_oauth: OAuthDovecot) -> None:
    auth = dovecot_oauth.auth
    dovecot_oauth.deliver(make_message(subject="after the refresh"))
    first = sign_in(auth)
    auth.expire_access_tokens()
    async with pop3(dovecot_oauth, "tls") as pop:
        with pytest.raises(MailboxTokenRefused):
            await pop.login_oauth(dovecot_oauth.user, first["access_token"])
    status, fresh = post(auth.token_url, grant_type="refresh_token", refresh_token=first["refresh_token"],
                         client_id=auth.client_id)
    assert status == 200
    assert auth.live_refresh_tokens() == [fresh["refresh_token"]]  # rotated: the old one is gone
    async with pop3(dovecot_oauth, "tls") as pop:
        await pop.login_oauth(dovecot_oauth.user, fresh["access_token"])
        assert await pop.stat() == (1, len(dovecot_oauth.messages()[0]))


@pytest.mark.servers
async def test_a_token_opens_only_its_own_mailbox(dovecot_oauth: OAuthDovecot) -> None:
    dovecot_oauth.add_mailbox("bob@contoso.com")
    tokens = dovecot_oauth.auth.issue_tokens()  # alice's
    async with pop3(dovecot_oauth, "tls") as pop:
        with pytest.raises(MailboxTokenRefused) as caught:
            await pop.login_oauth("bob@contoso.com", tokens["access_token"])
    assert "another user than bob@contoso.com" in caught.value.cause


@pytest.mark.servers
async def test_the_user_name_is_matched_as_dovecot_lower_cases_it(dovecot_oauth: OAuthDovecot) -> None:
    dovecot_oauth.auth.user = "Alice@Contoso.com"  # as the directory spells it
    tokens = dovecot_oauth.auth.issue_tokens()
    async with pop3(dovecot_oauth, "tls") as pop:
        await pop.login_oauth("alice@contoso.com", tokens["access_token"])
        assert await pop.stat() == (0, 0)


@pytest.mark.servers
async def test_a_provider_that_is_down_is_a_temporary_failure_not_a_refused_token(
        dovecot_oauth: OAuthDovecot) -> None:
    tokens = dovecot_oauth.auth.issue_tokens()
    dovecot_oauth.auth.introspection_down = True
    async with pop3(dovecot_oauth, "tls") as pop:
        with pytest.raises(MailboxCommandError) as caught:
            await pop.login_oauth(dovecot_oauth.user, tokens["access_token"])
    assert not isinstance(caught.value, MailboxTokenRefused)
    assert caught.value.resp_code == "SYS/TEMP" and caught.value.temporary


@pytest.mark.servers
async def test_password_users_log_in_beside_the_oauth_users(dovecot_oauth: OAuthDovecot) -> None:
    name = f"pw-{secrets.token_hex(4)}"
    dovecot_oauth.server.add_user(name, "s3cret")
    dovecot_oauth.deliver(b"Subject: by password\r\n\r\nhi\r\n", user=name)
    async with pop3(dovecot_oauth, "tls") as pop:
        assert {"PLAIN", "XOAUTH2", "OAUTHBEARER"} <= set(pop.capabilities["SASL"])
        await pop.login(name, "s3cret")
        assert (await pop.stat())[0] == 1
    async with pop3(dovecot_oauth, "tls") as pop:  # and a password is no token
        with pytest.raises(MailboxTokenRefused):
            await pop.login_oauth(name, "s3cret")


# -- the fake provider: authorization code with PKCE ---------------------------------------------------


def test_the_authorization_code_flow_gives_tokens_that_name_the_user(oauth_server: FakeAuthServer) -> None:
    tokens = sign_in(oauth_server)
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert len(tokens["access_token"]) == 1500 and tokens["refresh_token"]
    assert "POP.AccessAsUser.All" in tokens["scope"]
    seen = claims(tokens["id_token"])
    assert seen["preferred_username"] == seen["email"] == "alice@contoso.com"
    assert seen["aud"] == "pop3gui-test"
    assert oauth_server.is_live(tokens["access_token"]) and oauth_server.is_live(tokens["refresh_token"])


def test_a_wrong_code_verifier_or_a_reused_code_gets_no_tokens(oauth_server: FakeAuthServer) -> None:
    verifier = secrets.token_urlsafe(64)
    _, back = authorize(oauth_server, code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    form = dict(grant_type="authorization_code", code=back["code"], redirect_uri=REDIRECT,
                client_id=oauth_server.client_id)
    status, body = post(oauth_server.token_url, **form, code_verifier=secrets.token_urlsafe(64))
    assert (status, body["error"]) == (400, "invalid_grant") and "AADSTS501481" in body["error_description"]
    status, body = post(oauth_server.token_url, **form, code_verifier=verifier)
    assert status == 200
    status, body = post(oauth_server.token_url, **form, code_verifier=verifier)
    assert (status, body["error"]) == (400, "invalid_grant") and "AADSTS54005" in body["error_description"]
    recorded = oauth_server.token_requests
    assert [r["status"] for r in recorded] == [400, 200, 400]
    assert all(r["code"] is True and r["code_verifier"] is True for r in recorded)  # secrets only as booleans
    assert back["code"] not in json.dumps(recorded)


def test_a_redirect_uri_other_than_the_authorized_one_gets_no_tokens(oauth_server: FakeAuthServer) -> None:
    verifier = secrets.token_urlsafe(64)
    _, back = authorize(oauth_server, code_challenge=pkce_challenge(verifier), code_challenge_method="S256")
    status, body = post(oauth_server.token_url, grant_type="authorization_code", code=back["code"],
                        redirect_uri="http://127.0.0.1:1/other", code_verifier=verifier,
                        client_id=oauth_server.client_id)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_declined_consent_comes_back_to_the_redirect_uri_as_access_denied(oauth_server: FakeAuthServer) -> None:
    oauth_server.deny_consent = True
    status, back = authorize(oauth_server, code_challenge=pkce_challenge("v" * 43), code_challenge_method="S256")
    assert status == 302 and back["error"] == "access_denied" and back["state"] == "st-1"
    assert "AADSTS65001" in back["error_description"] and "code" not in back


def test_authorize_without_pkce_is_refused(oauth_server: FakeAuthServer) -> None:
    status, back = authorize(oauth_server)
    assert status == 302 and back["error"] == "invalid_request" and "code" not in back


@pytest.mark.parametrize("params", [{"client_id": "someone-else"}, {"redirect_uri": "https://evil.example/cb"}],
                         ids=["unknown-client", "foreign-redirect"])
def test_authorize_never_redirects_for_an_unknown_client_or_a_foreign_redirect_uri(
        oauth_server: FakeAuthServer, params: dict[str, str]) -> None:
    status, back = authorize(oauth_server, code_challenge=pkce_challenge("v" * 43), code_challenge_method="S256",
                             **params)
    assert status == 400 and back == {}


def test_an_unknown_client_id_at_the_token_endpoint_is_invalid_client(oauth_server: FakeAuthServer) -> None:
    status, body = post(oauth_server.token_url, grant_type="refresh_token", refresh_token="x", client_id="nobody")
    assert (status, body["error"]) == (400, "invalid_client") and "AADSTS700016" in body["error_description"]


# -- the fake provider: refresh tokens ------------------------------------------------------------------


def test_a_refresh_rotates_the_refresh_token(oauth_server: FakeAuthServer) -> None:
    first = oauth_server.issue_tokens()
    status, second = post(oauth_server.token_url, grant_type="refresh_token", refresh_token=first["refresh_token"],
                          client_id=oauth_server.client_id)
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    assert claims(second["id_token"])["email"] == "alice@contoso.com"
    assert oauth_server.live_refresh_tokens() == [second["refresh_token"]]
    status, body = post(oauth_server.token_url, grant_type="refresh_token", refresh_token=first["refresh_token"],
                        client_id=oauth_server.client_id)
    assert (status, body["error"]) == (400, "invalid_grant") and "AADSTS700082" in body["error_description"]
    assert oauth_server.token_requests[0]["refresh_token"] is True


def test_a_provider_that_does_not_rotate_keeps_the_refresh_token(oauth_server: FakeAuthServer) -> None:
    oauth_server.rotate_refresh_tokens = False
    first = oauth_server.issue_tokens()
    for _ in range(2):
        status, again = post(oauth_server.token_url, grant_type="refresh_token",
                             refresh_token=first["refresh_token"], client_id=oauth_server.client_id)
        assert status == 200 and "refresh_token" not in again
    assert oauth_server.live_refresh_tokens() == [first["refresh_token"]]


@pytest.mark.parametrize("end", ["revoke_all", "inactivity", "revoke_endpoint"])
def test_a_revoked_or_expired_refresh_token_is_invalid_grant(oauth_server: FakeAuthServer, end: str) -> None:
    tokens = oauth_server.issue_tokens()
    if end == "revoke_all":
        oauth_server.revoke_all()
    elif end == "inactivity":
        oauth_server.advance(91 * 86400)
    else:
        assert post(oauth_server.revoke_url, token=tokens["refresh_token"])[0] == 200
    status, body = post(oauth_server.token_url, grant_type="refresh_token", refresh_token=tokens["refresh_token"],
                        client_id=oauth_server.client_id)
    assert (status, body["error"]) == (400, "invalid_grant") and "AADSTS700082" in body["error_description"]
    assert oauth_server.live_refresh_tokens() == []
    assert not oauth_server.is_live(tokens["access_token"])  # its access token went with it


# -- the fake provider: device flow ---------------------------------------------------------------------


def test_the_device_flow_is_pending_slows_down_once_and_gives_tokens_when_approved(
        oauth_server: FakeAuthServer) -> None:
    oauth_server.slow_down_once = True
    oauth_server.interval = 0
    status, device = post(oauth_server.device_url, client_id=oauth_server.client_id, scope="mail offline_access")
    assert status == 200 and device["interval"] == 0 and device["expires_in"] == 900
    assert device["verification_uri"].startswith(oauth_server.base_url) and device["user_code"] in device["message"]
    poll = dict(grant_type=DEVICE_GRANT, device_code=device["device_code"], client_id=oauth_server.client_id)
    errors = [post(oauth_server.token_url, **poll)[1]["error"] for _ in range(3)]
    assert errors == ["slow_down", "authorization_pending", "authorization_pending"]
    assert oauth_server.pending_user_codes() == [device["user_code"]]
    oauth_server.approve_device(device["user_code"])
    status, tokens = post(oauth_server.token_url, **poll)
    assert status == 200 and claims(tokens["id_token"])["preferred_username"] == "alice@contoso.com"
    status, body = post(oauth_server.token_url, **poll)
    assert (status, body["error"]) == (400, "invalid_grant")  # a device code is good for one sign-in


@pytest.mark.parametrize(("end", "error"), [("expire", "expired_token"), ("deny", "access_denied")])
def test_a_device_sign_in_can_expire_or_be_declined(oauth_server: FakeAuthServer, end: str, error: str) -> None:
    _, device = post(oauth_server.device_url, client_id=oauth_server.client_id, scope="mail")
    if end == "expire":
        oauth_server.advance(901)
    else:
        oauth_server.deny_device(device["user_code"])
    status, body = post(oauth_server.token_url, grant_type=DEVICE_GRANT, device_code=device["device_code"],
                        client_id=oauth_server.client_id)
    assert (status, body["error"]) == (400, error)


# -- the fake provider: client credentials, introspection, revocation -----------------------------------


def test_client_credentials_need_the_right_secret_and_give_no_refresh_token() -> None:
    with FakeAuthServer(client_secret="app-secret", token_length=2000) as server:
        form = dict(grant_type="client_credentials", client_id=server.client_id,
                    scope="https://outlook.office365.com/.default")
        status, tokens = post(server.token_url, **form, client_secret="app-secret")
        assert status == 200 and len(tokens["access_token"]) == 2000
        assert "refresh_token" not in tokens and "id_token" not in tokens
        status, body = post(server.token_url, **form, client_secret="wrong")
        assert (status, body["error"]) == (401, "invalid_client") and "AADSTS7000215" in body["error_description"]
        assert [r["client_secret"] for r in server.token_requests] == [True, True]
        assert "app-secret" not in json.dumps(server.token_requests)


def test_a_public_client_cannot_use_client_credentials(oauth_server: FakeAuthServer) -> None:
    status, body = post(oauth_server.token_url, grant_type="client_credentials", client_id=oauth_server.client_id)
    assert (status, body["error"]) == (401, "invalid_client")


def test_introspection_says_active_only_for_a_live_access_token(oauth_server: FakeAuthServer) -> None:
    tokens = oauth_server.issue_tokens()
    status, answer = post(oauth_server.introspect_url, token=tokens["access_token"])
    assert status == 200 and answer.pop("exp") > 0
    assert answer == {"active": True, "email": "alice@contoso.com", "username": "alice@contoso.com",
                      "scope": "mail", "client_id": "pop3gui-test", "token_type": "Bearer"}
    assert post(oauth_server.introspect_url, token=tokens["refresh_token"]) == (200, {"active": False})
    assert post(oauth_server.introspect_url, token="never-issued") == (200, {"active": False})
    oauth_server.advance(3601)
    assert post(oauth_server.introspect_url, token=tokens["access_token"]) == (200, {"active": False})
    assert oauth_server.introspections == 4


async def test_the_provider_serves_async_tests_too() -> None:
    async with FakeAuthServer(user="bob@contoso.com") as server:
        tokens = server.issue_tokens()
        status, answer = post(server.introspect_url, token=tokens["access_token"])
    assert status == 200 and answer["email"] == "bob@contoso.com"


def test_reset_forgets_tokens_and_restores_the_knobs(oauth_server: FakeAuthServer) -> None:
    tokens = oauth_server.issue_tokens()
    oauth_server.deny_consent = True
    oauth_server.reset()
    assert not oauth_server.deny_consent and oauth_server.live_refresh_tokens() == []
    assert not oauth_server.is_live(tokens["access_token"])
