"""An IMAP account that signs in with OAuth2, through the real Connector against a real Dovecot.

Dovecot (tests/servers/pop3_fixtures.py: ``dovecot_oauth``) asks the fake
provider about every token it is shown, so a token gets in exactly while the
provider calls it active.  The sign-in is made the way ``pop3gui auth login``
makes it (the browser flow with PKCE against the fake provider) and kept in an
in-memory keyring; the office server is an SMTP sink.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from pop3gui.core.config.model import (
    AccountConfig,
    Config,
    DeliveryConfig,
    LoggingConfig,
    OAuthProviderConfig,
    RecipientPolicy,
    SmtpConfig,
)
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import CycleResult
from pop3gui.core.events.model import Event, EventBus, EventId
from pop3gui.core.failures import Failure
from pop3gui.core.oauth.endpoints import mailbox_purpose
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import SignIn, sign_in_key
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.paths import Paths
from pop3gui.demo.keyring_backend import MemoryKeyring
from tests.servers.pop3_fixtures import OAuthDovecot, require_imap
from tests.support.oauth_server import FakeAuthServer
from tests.support.rig import ADMIN, ALICE, message
from tests.support.smtp_sink import SmtpSink

pytestmark = pytest.mark.servers

IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
POP_SCOPE = "https://outlook.office.com/POP.AccessAsUser.All"


async def browse(url: str) -> None:
    """What the user's browser does: open the sign-in page and follow its redirect back to pop3gui."""
    async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
        await browser.get(url)


def revoke(idp: FakeAuthServer, token: str) -> None:
    """RFC 7009 at the provider: this one token stops working (an access token takes nothing else with it)."""
    request = urllib.request.Request(idp.revoke_url, data=urlencode({"token": token}).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def refreshes(idp: FakeAuthServer) -> list[dict[str, Any]]:
    """The refresh token requests the provider received (secrets recorded only as booleans)."""
    return [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]


@dataclass
class OAuthRig:
    """A connector installation under tmp_path whose accounts sign in at the fake provider."""

    home: Path
    dovecot: OAuthDovecot
    sink: SmtpSink
    accounts: tuple[AccountConfig, ...] = ()
    provider: OAuthProviderConfig | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def idp(self) -> FakeAuthServer:
        return self.dovecot.auth

    @property
    def paths(self) -> Paths:
        return Paths(self.home / "config.toml", self.home / "state", self.home / "logs")

    @property
    def config(self) -> Config:
        assert self.provider is not None
        return Config(smtp=SmtpConfig(host="127.0.0.1", port=self.sink.port, timeout_s=5),
                      delivery=DeliveryConfig(undeliverable_to=ADMIN),
                      policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
                      accounts=self.accounts, oauth_providers=(self.provider,), logging=LoggingConfig(level="debug"))

    def connector(self) -> Connector:
        bus = EventBus()
        bus.subscribe(self.events.append)
        return Connector(self.config, self.paths, bus)

    async def sign_in(self, account: AccountConfig, sign_ins: SignIns | None = None) -> SignIn:
        """``pop3gui auth login ACCOUNT``: the browser sign-in, kept in the keyring (and *sign_ins*' memory)."""
        assert self.provider is not None
        session = sign_ins or SignIns(Credentials(), self.paths.sign_in_locks)
        return await session.sign_in(sign_in_key(account.name), self.provider, mailbox_purpose(account.protocol),
                                     open_page=browse)

    async def cycle(self, connector: Connector | None = None, only: set[str] | None = None) -> CycleResult:
        own = connector or self.connector()
        try:
            return await own.run_cycle(only)
        finally:
            if connector is None:
                own.close()

    def of(self, eid: EventId) -> list[Event]:
        return [e for e in self.events if e.id == eid]

    def subjects(self) -> list[str]:
        return sorted(r.content.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for r in self.sink.received)

    def written(self) -> str:
        """Everything the connector said or wrote down: events (with transcripts), logs and state."""
        text = "".join(e.full_text() + e.transcript for e in self.events)
        for folder in (self.paths.state_dir, self.paths.log_dir):
            if folder.exists():
                text += "".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())
        return text


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server


@pytest.fixture
def rig(tmp_path: Path, dovecot_oauth: OAuthDovecot, sink: SmtpSink,
        memory_keyring: MemoryKeyring) -> Iterator[OAuthRig]:
    require_imap(dovecot_oauth.server)
    idp = dovecot_oauth.auth
    provider = OAuthProviderConfig(name="lab", client_id=idp.client_id, kind="generic",
                                   authorize_url=idp.authorize_url, token_url=idp.token_url,
                                   device_url=idp.device_url, scopes=("mail", "offline_access"))
    yield OAuthRig(tmp_path / "home", dovecot_oauth, sink, (imap_account(dovecot_oauth),), provider)


def imap_account(dovecot: OAuthDovecot, name: str = "m365", **changes: Any) -> AccountConfig:
    account = AccountConfig(name=name, host="127.0.0.1", port=dovecot.imap_port, security="starttls",
                            ca_file=str(dovecot.ca_path), username=dovecot.user, kind="user", deliver_to=ALICE,
                            protocol="imap", timeout_s=10, auth="oauth2", oauth_provider="lab")
    return replace(account, **changes)


# -- (1) mail flows over XOAUTH2 and OAUTHBEARER --------------------------------------------------------------


@pytest.mark.parametrize("sasl", ["xoauth2", "oauthbearer"])
async def test_a_signed_in_imap_account_delivers_its_mail_and_removes_it_from_the_server(
        rig: OAuthRig, sasl: str) -> None:
    rig.accounts = (imap_account(rig.dovecot, sasl=sasl),)
    for n in range(2):
        rig.dovecot.deliver(message(f"m{n}"))
    signed_in = await rig.sign_in(rig.accounts[0])
    assert signed_in.identity == rig.idp.user

    result = await rig.cycle()  # a fresh process: it holds no access token and refreshes first

    [account] = result.accounts
    assert result.exit_code == 0, [e.full_text() for e in rig.events]
    assert (account.delivered, account.deleted, account.failed) == (2, 2, False)
    assert rig.subjects() == ["m0", "m1"]
    assert rig.dovecot.messages() == []
    assert [r["status"] for r in refreshes(rig.idp)] == [200]
    assert rig.idp.introspections == 1  # the token got in at the first try
    leaks = [t[:12] for t in rig.idp._tokens if t in rig.written()]  # every token it ever issued
    assert leaks == []


# -- (2) a refused access token is renewed once ---------------------------------------------------------------


@pytest.mark.parametrize("end", ["expired", "revoked"])
async def test_an_ended_access_token_is_renewed_exactly_once_and_the_renewed_one_gets_in(
        rig: OAuthRig, end: str) -> None:
    idp = rig.idp
    rig.dovecot.deliver(message("after the renewal"))
    connector = rig.connector()
    try:
        await rig.sign_in(rig.accounts[0], connector.sign_ins)  # the connector holds the sign-in's access token
        [held] = idp.live_access_tokens()
        if end == "expired":
            idp.expire_access_tokens()  # the provider ends it early; the connector still thinks it good
        else:
            revoke(idp, held)
        assert not idp.is_live(held) and len(idp.live_refresh_tokens()) == 1
        result = await rig.cycle(connector)
    finally:
        connector.close()

    [account] = result.accounts
    assert result.exit_code == 0, [e.full_text() for e in rig.events]
    assert (account.delivered, account.deleted) == (1, 1)
    assert rig.subjects() == ["after the renewal"] and rig.dovecot.messages() == []
    renewals = refreshes(idp)
    assert len(renewals) == 1 and renewals[0]["status"] == 200, idp.token_requests
    [renewed] = idp.live_access_tokens()
    assert renewed != held
    assert idp.introspections == 2  # the ended token, then the renewed one: no third try
    assert not rig.of(EventId.POP3_LOGIN_FAILED) and not rig.of(EventId.SIGN_IN_FAILED)
    stored = connector.sign_ins.store.load(sign_in_key("m365"))
    assert stored is not None and idp.live_refresh_tokens() == [stored.refresh_token]  # rotation kept


# -- (3) a renewed token that is refused too -----------------------------------------------------------------


async def test_a_refused_renewed_token_fails_the_account_names_the_imap_permission_and_keeps_the_mail(
        rig: OAuthRig) -> None:
    idp = rig.idp
    bob = f"bob-{uuid.uuid4().hex[:8]}@contoso.com"  # signed in as alice, pointed at bob's mailbox
    rig.dovecot.add_mailbox(bob)
    rig.dovecot.deliver(message("for bob"), user=bob)
    rig.accounts = (imap_account(rig.dovecot, username=bob),)
    connector = rig.connector()
    try:
        await rig.sign_in(rig.accounts[0], connector.sign_ins)
        result = await rig.cycle(connector)
    finally:
        connector.close()

    [account] = result.accounts
    assert account.failed and result.exit_code != 0
    assert account.diagnosis is Failure.OAUTH_TOKEN_REFUSED
    assert (account.delivered, account.deleted) == (0, 0) and rig.sink.received == []
    assert len(rig.dovecot.messages(user=bob)) == 1  # still on the server
    [event] = [e for e in rig.events if e.diagnosis is Failure.OAUTH_TOKEN_REFUSED]
    assert event.id is EventId.POP3_LOGIN_FAILED  # 2002: the mailbox server refused the login
    assert int(event.id) == 2002 and not rig.of(EventId.SIGN_IN_FAILED)
    assert event.account == "m365" and bob in event.text
    assert "freshly renewed token was refused too" in event.cause
    assert "IMAP permission" in event.fix and "POP permission" not in event.fix
    assert bob in event.fix and "`pop3gui auth login m365`" in event.fix
    renewals = refreshes(idp)
    assert len(renewals) == 1 and renewals[0]["status"] == 200  # renewed once, not again and again
    assert idp.introspections == 2
    # both tries went over the one connection, each token redacted in the transcript
    assert event.transcript.count("AUTHENTICATE XOAUTH2 **** (token, redacted)") == 2, event.transcript
    leaks = [t[:12] for t in idp._tokens if t in rig.written()]
    assert leaks == []


# -- (4) what a Microsoft sign-in asks for depends on the protocol ------------------------------------------


async def test_a_microsoft_provider_asks_for_the_imap_scope_for_imap_and_the_pop_scope_for_pop3(
        rig: OAuthRig) -> None:
    idp, dovecot = rig.idp, rig.dovecot
    rig.provider = OAuthProviderConfig(name="lab", client_id=idp.client_id, kind="microsoft", tenant="contoso.com",
                                       authorize_url=idp.authorize_url, token_url=idp.token_url,
                                       device_url=idp.device_url)
    over_imap = imap_account(dovecot, "imap-m365", port=dovecot.imaps_port, security="tls")
    over_pop3 = AccountConfig(name="pop-m365", host="127.0.0.1", port=dovecot.pop3s_port, security="tls",
                              ca_file=str(dovecot.ca_path), username=dovecot.user, kind="user", deliver_to=ALICE,
                              protocol="pop3", timeout_s=10, auth="oauth2", oauth_provider="lab")
    rig.accounts = (over_imap, over_pop3)
    for account in rig.accounts:
        await rig.sign_in(account)
    signed_in = [r["scope"].split() for r in idp.authorize_requests]
    assert [s[0] for s in signed_in] == [IMAP_SCOPE, POP_SCOPE]
    assert all("offline_access" in s for s in signed_in)

    connector = rig.connector()  # holds no access token: each account's first login refreshes
    try:
        dovecot.deliver(message("over imap"))
        by_imap = await rig.cycle(connector, only={"imap-m365"})
        after_imap = refreshes(idp)
        dovecot.deliver(message("over pop3"))
        by_pop3 = await rig.cycle(connector, only={"pop-m365"})
    finally:
        connector.close()

    assert [a.delivered for a in by_imap.accounts + by_pop3.accounts] == [1, 1], [e.full_text() for e in rig.events]
    assert rig.subjects() == ["over imap", "over pop3"] and dovecot.messages() == []
    [imap_refresh] = after_imap
    [pop3_refresh] = refreshes(idp)[len(after_imap):]
    assert imap_refresh["scope"].split()[0] == IMAP_SCOPE and POP_SCOPE not in imap_refresh["scope"]
    assert pop3_refresh["scope"].split()[0] == POP_SCOPE and IMAP_SCOPE not in pop3_refresh["scope"]
    assert {"offline_access", "openid", "email"} <= set(imap_refresh["scope"].split())
    assert all(r["status"] == 200 and r["refresh_token"] is True for r in (imap_refresh, pop3_refresh))
    assert all(req["client_id"] == idp.client_id for req in (imap_refresh, pop3_refresh))
    # what the provider granted is kept with each rotated sign-in
    stored = {name: connector.sign_ins.store.load(sign_in_key(name)) for name in ("imap-m365", "pop-m365")}
    assert {name: s.scope if s else None for name, s in stored.items()} == {
        "imap-m365": imap_refresh["scope"], "pop-m365": pop3_refresh["scope"]}
