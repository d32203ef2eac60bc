"""OAuth2 end to end: sign in from the command line, deliver, renew, survive revocation — real Dovecot and Postfix.

The ISP mailbox is on a Dovecot that asks the fake provider about every token
(tests/servers/pop3_fixtures.py: ``dovecot_oauth``); the sign-in is stored in
the real gnome-keyring of the test session; the office server is Postfix.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from pop3gui.core.config.model import AccountConfig, OAuthProviderConfig
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.events.model import EventBus, EventId
from pop3gui.core.failures import Failure
from pop3gui.core.oauth.store import SignInStore, sign_in_key
from pop3gui.core.state.credentials import Credentials
from tests.servers.pop3_fixtures import OAuthDovecot
from tests.conftest import Pop3User
from tests.support.office import Office, make_message

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]


def provider(dovecot: OAuthDovecot) -> OAuthProviderConfig:
    idp = dovecot.auth
    return OAuthProviderConfig(name="lab", client_id=idp.client_id, kind="generic",
                               authorize_url=idp.authorize_url, token_url=idp.token_url,
                               device_url=idp.device_url, scopes=("mail", "offline_access"))


def oauth_account(dovecot: OAuthDovecot, name: str = "m365") -> AccountConfig:
    return AccountConfig(name=name, host="127.0.0.1", port=dovecot.pop3s_port, security="tls",
                         ca_file=str(dovecot.ca_path), username=dovecot.user, kind="user",
                         deliver_to="alice@contoso.com", timeout_s=20, auth="oauth2", oauth_provider="lab")


def pop3gui(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pop3gui", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=120, cwd=ROOT)


def with_browser() -> dict[str, str]:
    """The environment of a desktop whose browser is tests/support/browser.py."""
    return dict(os.environ, BROWSER=f"{sys.executable} -m tests.support.browser %s",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))


def secrets_in(tokens: list[str]) -> list[str]:
    """Each token and the SASL strings that would carry it (what must never be written down)."""
    out = []
    for token in tokens:
        out.append(token)
        for sasl in (f"auth=Bearer {token}\x01\x01", f"\x01auth=Bearer {token}"):
            out.append(base64.b64encode(sasl.encode()).decode()[:60])
    return out


async def test_sign_in_with_the_browser_then_mail_flows_and_a_refused_token_is_renewed(
        office: Office, dovecot_oauth: OAuthDovecot) -> None:
    idp = dovecot_oauth.auth
    dovecot_oauth.deliver(make_message(to="alice@isp.example", subject="first"))
    office.use(oauth_account(dovecot_oauth), oauth_providers=(provider(dovecot_oauth),))

    login = pop3gui("auth", "login", "m365", env=with_browser())

    assert login.returncode == 0, login.stdout + login.stderr
    assert f"as {idp.user}" in login.stdout
    status = json.loads(pop3gui("auth", "status", "--json").stdout)
    assert status["identity"] == idp.user and status["needs_sign_in"] is False

    bus = EventBus()
    bus.subscribe(office.events.append)
    connector = Connector(office.config, office.paths, bus)
    try:
        first = await connector.run_cycle()
        assert first.exit_code == 0 and first.accounts[0].delivered == 1
        office.local.wait_for_delivered(1)

        idp.expire_access_tokens()  # the provider ends the token early; the connector still holds it
        dovecot_oauth.deliver(make_message(to="alice@isp.example", subject="second"))
        second = await connector.run_cycle()
    finally:
        connector.close()
    assert second.exit_code == 0 and second.accounts[0].delivered == 1, [e.full_text() for e in office.events]
    office.local.wait_for_delivered(2)
    assert dovecot_oauth.messages() == []
    refreshes = [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) >= 2  # status, then the renewal after the refusal
    stored = SignInStore(Credentials()).load(sign_in_key("m365"))
    assert stored is not None and idp.live_refresh_tokens() == [stored.refresh_token]

    # Nothing token-like in the config, the state folder, the log or the events.
    written = "\n".join(p.read_text(errors="replace") for folder in (office.paths.state_dir, office.paths.log_dir)
                        for p in folder.rglob("*") if p.is_file())
    written += office.paths.config_file.read_text() + "".join(e.full_text() for e in office.events)
    written += pop3gui("events", "--json", "--limit", "1000").stdout
    leaks = [s[:12] for s in secrets_in(list(idp._tokens)) if s in written]  # every token it ever issued
    assert leaks == []


async def test_a_revoked_sign_in_keeps_the_mail_says_how_to_sign_in_and_other_accounts_go_on(
        office: Office, dovecot_oauth: OAuthDovecot, pop3_user: Pop3User) -> None:
    idp = dovecot_oauth.auth
    dovecot_oauth.deliver(make_message(to="alice@isp.example", subject="kept"))
    office.isp.deliver(pop3_user.name, make_message(to="x@isp.example", subject="by password"))
    office.use(oauth_account(dovecot_oauth), office.account_for(pop3_user, "alice"),
               oauth_providers=(provider(dovecot_oauth),))
    assert pop3gui("auth", "login", "m365", env=with_browser()).returncode == 0
    idp.revoke_all()

    result = await office.run_cycle()

    by_account = {a.account: a for a in result.accounts}
    assert by_account["alice"].delivered == 1 and by_account["m365"].failed
    assert by_account["m365"].diagnosis is Failure.SIGN_IN_NEEDED
    [event] = office.of(EventId.SIGN_IN_FAILED)
    assert event.account == "m365" and event.diagnosis is Failure.SIGN_IN_NEEDED
    assert "`pop3gui auth login m365`" in event.fix
    assert len(dovecot_oauth.messages()) == 1  # still on the server
    status = pop3gui("auth", "status", "--json")
    assert status.returncode == 1 and json.loads(status.stdout)["needs_sign_in"] is True
    with_outage = dict(os.environ, HTTPS_PROXY="", HTTP_PROXY="")
    office.use(oauth_account(dovecot_oauth), office.account_for(pop3_user, "alice"), oauth_providers=(
        replace(provider(dovecot_oauth), token_url="http://127.0.0.1:9/token"),))  # the provider is down
    down = json.loads(pop3gui("auth", "status", "--json", env=with_outage).stdout)
    assert down["ok"] is False and down["needs_sign_in"] is False and down["diagnosis"] == "oauth_provider_failed"


def test_sign_in_on_another_device_with_a_code(office: Office, dovecot_oauth: OAuthDovecot) -> None:
    idp = dovecot_oauth.auth
    office.use(oauth_account(dovecot_oauth), oauth_providers=(provider(dovecot_oauth),))
    command = subprocess.Popen([sys.executable, "-m", "pop3gui", "auth", "login", "m365", "--device"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert command.stdout is not None
        line = command.stdout.readline()
        assert "enter the code" in line, line
        code = line.split("enter the code ")[1].split()[0]
        idp.approve_device(code)
        out, err = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            command.kill()
    assert command.returncode == 0, out + err
    assert f"as {idp.user}" in out
    assert Counter(r["grant_type"] for r in idp.token_requests)["urn:ietf:params:oauth:grant-type:device_code"] >= 1
    logout = pop3gui("auth", "logout", "m365")
    assert logout.returncode == 0 and SignInStore(Credentials()).load(sign_in_key("m365")) is None


def test_check_reports_an_account_that_is_not_signed_in_with_the_command_to_run(
        office: Office, dovecot_oauth: OAuthDovecot) -> None:
    office.use(oauth_account(dovecot_oauth), oauth_providers=(provider(dovecot_oauth),))
    out = pop3gui("check")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "[PROBLEM] account 'm365'" in out.stdout and "not signed in" in out.stdout
    assert "pop3gui auth login m365" in out.stdout and "Traceback" not in out.stderr
