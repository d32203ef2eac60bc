"""Signing in and keeping tokens fresh, end to end against a local OAuth2 authorization server.

The fake server (tests/support/oauth_server.py) checks PKCE, rotates refresh
tokens on every use, runs device sign-ins and knows Microsoft's error texts.
The keyring is an in-memory one here; tests/integration does the same against
the real gnome-keyring.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from pop3gui.core.config.model import OAuthProviderConfig
from pop3gui.core.errors import CredentialError, OAuthClientInvalid, OAuthConsentMissing, SignInNeeded
from pop3gui.core.oauth import flows
from pop3gui.core.oauth.endpoints import endpoints
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import sign_in_key
from pop3gui.core.state.credentials import Credentials
from pop3gui.demo.keyring_backend import MemoryKeyring
from tests.support.oauth_server import FakeAuthServer

KEY = sign_in_key("m365")


@pytest.fixture
async def idp() -> AsyncIterator[FakeAuthServer]:
    async with FakeAuthServer(token_length=1800) as server:
        yield server


def provider_for(idp: FakeAuthServer, **changes: object) -> OAuthProviderConfig:
    base = OAuthProviderConfig(name="lab", client_id=idp.client_id, kind="generic",
                               authorize_url=idp.authorize_url, token_url=idp.token_url,
                               device_url=idp.device_url, scopes=("mail", "offline_access"))
    return replace(base, **changes)  # type: ignore[arg-type]


async def browse(url: str) -> None:
    """What the user's browser does: open the page and follow its redirect back to pop3gui."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
        await browser.get(url)


def sign_ins(tmp_path: Path) -> SignIns:
    return SignIns(Credentials(), tmp_path / "locks")


async def test_browser_sign_in_with_pkce_keeps_the_refresh_token_and_who_signed_in(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer) -> None:
    session = sign_ins(tmp_path)
    record = await session.sign_in(KEY, provider_for(idp), open_page=browse)
    assert record.identity == idp.user and record.refresh_token in idp.live_refresh_tokens()
    [request] = idp.authorize_requests
    assert request["code_challenge_method"] == "S256" and request["redirect_uri"].startswith("http://127.0.0.1:")
    [grant] = idp.token_requests
    assert grant["grant_type"] == "authorization_code" and grant["code_verifier"] is True
    token = await session.access_token(KEY, provider_for(idp))
    assert idp.is_live(token) and len(idp.token_requests) == 1  # the sign-in's own token, from memory


async def test_an_access_token_near_its_end_is_refreshed_and_the_rotated_refresh_token_stored_first(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer) -> None:
    session = sign_ins(tmp_path)
    first = await session.sign_in(KEY, provider_for(idp), open_page=browse)
    idp.advance(idp.access_lifetime - 60)  # inside the refresh margin
    clock_then = session._clock
    session._clock = lambda: clock_then() + idp.access_lifetime - 60
    token = await session.access_token(KEY, provider_for(idp))
    stored = session.store.load(KEY)
    assert stored is not None and stored.refresh_token != first.refresh_token
    assert idp.live_refresh_tokens() == [stored.refresh_token]  # the old one died with the rotation
    assert idp.is_live(token) and idp.token_requests[-1]["grant_type"] == "refresh_token"


async def test_a_refused_token_is_renewed_once_on_request(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                          idp: FakeAuthServer) -> None:
    session = sign_ins(tmp_path)
    await session.sign_in(KEY, provider_for(idp), open_page=browse)
    idp.expire_access_tokens()
    renewed = await session.access_token(KEY, provider_for(idp), renew=True)
    assert idp.is_live(renewed)


async def test_two_processes_renewing_at_once_never_spend_a_replaced_refresh_token(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer) -> None:
    """The tray and a command line share the keyring: their refreshes take turns, each reads the newest."""
    await sign_ins(tmp_path).sign_in(KEY, provider_for(idp), open_page=browse)
    tray, command_line = sign_ins(tmp_path), sign_ins(tmp_path)
    tokens = await asyncio.gather(*(s.access_token(KEY, provider_for(idp), renew=True)
                                    for s in (tray, command_line, tray, command_line)))
    assert all(idp.is_live(t) for t in tokens)
    refreshes = [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) == 4 and all(r["status"] == 200 for r in refreshes), refreshes


async def test_a_revoked_sign_in_asks_for_the_command_of_that_account(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                                      idp: FakeAuthServer) -> None:
    session = sign_ins(tmp_path)
    record = await session.sign_in(KEY, provider_for(idp), open_page=browse)
    idp.revoke_all()
    with pytest.raises(SignInNeeded) as caught:
        await session.access_token(KEY, provider_for(idp), renew=True)
    error = caught.value
    assert "AADSTS700082" in str(error) or "invalid_grant" in str(error)
    assert error.fix.startswith("Sign in again") and "`pop3gui auth login m365`" in error.fix
    assert record.refresh_token not in f"{error} {error.cause} {error.fix}"
    assert session.store.load(KEY) == record  # the sign-in is kept: signing in again replaces it


async def test_no_sign_in_yet_says_how_to_sign_in(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                  idp: FakeAuthServer) -> None:
    with pytest.raises(SignInNeeded) as caught:
        await sign_ins(tmp_path).access_token(KEY, provider_for(idp))
    assert "not signed in" in str(caught.value) and "`pop3gui auth login m365`" in caught.value.fix
    assert idp.token_requests == []


async def test_refused_consent_and_an_unknown_app_are_told_apart(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                                 idp: FakeAuthServer) -> None:
    idp.deny_consent = True
    with pytest.raises(OAuthConsentMissing) as consent:
        await sign_ins(tmp_path).sign_in(KEY, provider_for(idp), open_page=browse)
    assert "admin consent" in consent.value.fix
    idp.deny_consent = False
    session = sign_ins(tmp_path)
    await session.sign_in(KEY, provider_for(idp), open_page=browse)
    with pytest.raises(OAuthClientInvalid) as client:  # the provider's client_id was changed in the file
        await session.access_token(KEY, provider_for(idp, client_id="not-registered"), renew=True)
    assert "client_id" in client.value.fix and "AADSTS700016" in str(client.value)


async def test_device_sign_in_polls_slows_down_when_told_and_finishes_once_approved(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer) -> None:
    idp.slow_down_once = True
    shown: list[flows.DeviceCode] = []
    waits: list[float] = []

    async def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:  # the user types the code after two polls
            idp.approve_device(shown[0].user_code)

    tokens = await flows.device_sign_in(endpoints(provider_for(idp)), idp.client_id, shown.append, sleep=wait)
    assert shown[0].user_code and shown[0].verification_uri
    assert idp.is_live(tokens.access_token) and tokens.refresh_token and tokens.identity == idp.user
    assert waits[1] == waits[0] + 5  # slow_down adds five seconds to the interval (RFC 8628)


async def test_a_device_code_nobody_enters_expires_with_advice(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                               idp: FakeAuthServer) -> None:
    async def wait(seconds: float) -> None:
        idp.advance(idp.device_expires_in + 1)

    with pytest.raises(SignInNeeded) as caught:
        await flows.device_sign_in(endpoints(provider_for(idp)), idp.client_id, lambda code: None, sleep=wait)
    assert "--device" in caught.value.fix or "sign in" in caught.value.fix.lower()


async def test_an_app_signs_in_with_its_secret_from_the_keyring(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                                idp: FakeAuthServer) -> None:
    idp.client_secret = "app-S3cret"
    app = provider_for(idp, app_only=True)
    session = sign_ins(tmp_path)
    with pytest.raises(CredentialError) as missing:
        await session.access_token(KEY, app)
    assert "secret set --oauth-client lab" in missing.value.fix
    Credentials().set_oauth_client_secret("lab", "wrong")
    with pytest.raises(OAuthClientInvalid) as wrong:
        await session.access_token(KEY, app)
    assert "secret" in wrong.value.cause.lower() and "wrong" not in str(wrong.value)
    Credentials().set_oauth_client_secret("lab", "app-S3cret")
    assert idp.is_live(await session.access_token(KEY, app))
    assert idp.token_requests[-1]["grant_type"] == "client_credentials"


def test_tokens_never_show_in_a_repr() -> None:
    tokens = flows.Tokens("SECRET-ACCESS", 1.0, "SECRET-REFRESH", "mail", "alice@contoso.com")
    assert "SECRET" not in repr(tokens) and "SECRET" not in str(tokens)


async def test_an_installed_app_with_a_client_secret_sends_it_when_one_is_stored(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer) -> None:
    """Google's Desktop clients: PKCE and the client secret together."""
    idp.client_secret = "desktop-secret"
    session = sign_ins(tmp_path)
    with pytest.raises(OAuthClientInvalid):
        await session.sign_in(KEY, provider_for(idp), open_page=browse)
    Credentials().set_oauth_client_secret("lab", "desktop-secret")
    await session.sign_in(KEY, provider_for(idp), open_page=browse)
    assert idp.is_live(await session.access_token(KEY, provider_for(idp), renew=True))
    assert all(r.get("client_secret") is True for r in idp.token_requests if r["status"] == 200)


async def test_a_proxy_in_the_environment_does_not_carry_a_loopback_provider(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = sign_ins(tmp_path)
    await session.sign_in(KEY, provider_for(idp), open_page=browse_direct)
    assert idp.is_live(await session.access_token(KEY, provider_for(idp), renew=True))


async def browse_direct(url: str) -> None:
    async with httpx.AsyncClient(follow_redirects=True, timeout=10, trust_env=False) as browser:
        await browser.get(url)


async def test_a_refresh_whose_caller_gives_up_still_stores_the_rotated_token(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer) -> None:
    """The connection fails while the token is being renewed: the rotation must still reach the keyring."""
    session = sign_ins(tmp_path)
    first = await session.sign_in(KEY, provider_for(idp), open_page=browse)
    caller = asyncio.ensure_future(session.access_token(KEY, provider_for(idp), renew=True))
    await asyncio.sleep(0)  # the refresh has started
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(200):  # the shielded refresh finishes on its own
        stored = session.store.load(KEY)
        if stored is not None and stored.refresh_token != first.refresh_token:
            break
        await asyncio.sleep(0.01)
    assert stored is not None and stored.refresh_token in idp.live_refresh_tokens()
    assert first.refresh_token not in idp.live_refresh_tokens()  # the provider rotated: only the stored one works


async def test_a_rotation_the_keyring_refused_to_store_is_kept_and_stored_at_the_next_refresh(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    session = sign_ins(tmp_path)
    await session.sign_in(KEY, provider_for(idp), open_page=browse)
    real_set = Credentials.set_oauth_entry

    def failing(self: Credentials, name: str, value: str) -> None:
        raise CredentialError("the keyring failed to store a sign-in: D-Bus timeout", fix="Try again.")

    monkeypatch.setattr(Credentials, "set_oauth_entry", failing)
    with pytest.raises(CredentialError):
        await session.access_token(KEY, provider_for(idp), renew=True)
    monkeypatch.setattr(Credentials, "set_oauth_entry", real_set)
    assert idp.is_live(await session.access_token(KEY, provider_for(idp), renew=True))
    stored = session.store.load(KEY)
    assert stored is not None and idp.live_refresh_tokens() == [stored.refresh_token]


async def test_a_provider_echoing_the_token_in_its_error_never_shows_it(tmp_path: Path, memory_keyring: MemoryKeyring,
                                                                        idp: FakeAuthServer) -> None:
    error = flows._oauth_error("invalid_grant", "AADSTS700082: Refresh token SECRET-RT-123456 is not valid")
    weird = flows._oauth_error("<script>SECRET-RT-123456</script>", "SECRET-RT-123456")
    for shown in (error, weird):
        assert "SECRET" not in f"{shown} {shown.cause} {shown.fix}"
    assert "AADSTS700082" in str(error) and isinstance(error, SignInNeeded)


async def test_a_stray_request_to_the_loopback_port_does_not_end_the_sign_in(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer) -> None:
    async def stray_then_browse(url: str) -> None:
        port = int(url.split("redirect_uri=http%3A%2F%2F127.0.0.1%3A")[1].split("%2F")[0])
        async with httpx.AsyncClient(trust_env=False) as local:
            stray = await local.get(f"http://127.0.0.1:{port}/?code=guess&state=guess")
            assert stray.status_code == 400
            await local.get(f"http://127.0.0.1:{port}/?error=access_denied&error_description=visit+evil.example")
        await browse(url)

    record = await sign_ins(tmp_path).sign_in(KEY, provider_for(idp), open_page=stray_then_browse)
    assert record.identity == idp.user


async def test_a_sign_in_held_too_long_by_another_process_is_explained(
        tmp_path: Path, memory_keyring: MemoryKeyring, idp: FakeAuthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    from pop3gui.core.errors import SignInBusy
    from pop3gui.core.oauth import session as session_module
    from pop3gui.core.state.lock import try_lock_file

    session = sign_ins(tmp_path)
    await session.sign_in(KEY, provider_for(idp), open_page=browse)
    lock_path = tmp_path / "locks" / (hashlib.sha256(KEY.encode()).hexdigest()[:24] + ".lock")
    with lock_path.open("a+", encoding="ascii") as other_process:
        assert try_lock_file(other_process)
        monkeypatch.setattr(session_module, "LOCK_WAIT", 0.3)
        with pytest.raises(SignInBusy) as caught:
            await session.access_token(KEY, provider_for(idp), renew=True)
    assert "another pop3gui process" in str(caught.value) and caught.value.fix
    assert idp.is_live(await session.access_token(KEY, provider_for(idp), renew=True))  # free again
