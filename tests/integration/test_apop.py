"""An account with ``auth = "apop"`` against a real Dovecot that offers APOP.

Dovecot offers APOP when its passdb keeps passwords in plain text and
``auth_mechanisms`` lists apop: its greeting then carries the <timestamp>
the digest is made with. Its log names the method each login used.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pop3gui.core.config.model import Config, DeliveryConfig, RecipientPolicy, SmtpConfig
from pop3gui.core.engine.preflight import check_account
from pop3gui.core.events.model import EventId
from pop3gui.core.failures import Failure
from pop3gui.core.state.credentials import Credentials
from tests.conftest import Pop3User
from tests.servers.dovecot import DovecotServer
from tests.servers.postfix import PostfixServer
from tests.support.office import ADMIN, Office, make_message
from tests.support.requirements import require

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def apop_dovecot() -> Iterator[DovecotServer]:
    require("Dovecot", ["dovecot", "doveadm"], "dovecot-pop3d")
    server = DovecotServer(apop=True, imap=False).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def apop_user(apop_dovecot: DovecotServer) -> Pop3User:
    name = f"apop-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    return Pop3User(name=name, password=password, maildir=apop_dovecot.add_user(name, password))


@pytest.fixture
def apop_office(tmp_path: Path, apop_dovecot: DovecotServer, postfix_clean: PostfixServer,
                secret_service: object, monkeypatch: pytest.MonkeyPatch) -> Office:
    home = tmp_path / "home"
    monkeypatch.setenv("POP3GUI_HOME", str(home))
    config = Config(
        smtp=SmtpConfig(host=postfix_clean.host, port=postfix_clean.port, timeout_s=20),
        delivery=DeliveryConfig(undeliverable_to=ADMIN),
        policies=(RecipientPolicy("Default Policy", ("contoso.com", "contoso.local"), "contoso.com"),),
    )
    return Office(home=home, isp=apop_dovecot, local=postfix_clean, config=config)


def _logins(server: DovecotServer, user: str) -> list[str]:
    return [line for line in server.log_path.read_text(errors="replace").splitlines()
            if "Login: user=<" + user + ">" in line]


@pytest.mark.parametrize("security", ["none", "tls"])
async def test_an_apop_account_logs_in_with_apop_and_delivers(
        apop_office: Office, apop_user: Pop3User, security: str) -> None:
    isp = apop_office.isp
    assert isinstance(isp, DovecotServer)
    isp.deliver(apop_user.name, make_message(to="x@isp.example", subject="by apop"))
    port = isp.pop3_port if security == "none" else isp.pop3s_port
    apop_office.use(apop_office.account_for(apop_user, "alice", auth="apop", security=security, port=port))

    result = await apop_office.run_cycle()

    assert result.exit_code == 0, [e.text for e in apop_office.events]
    assert apop_office.local.wait_for_delivered(1)[0]["Subject"] == "by apop"
    assert isp.messages(apop_user.name) == []
    logins = _logins(isp, apop_user.name)
    assert logins and all("method=APOP" in line for line in logins), logins


async def test_a_wrong_password_with_apop_is_a_refused_login(apop_office: Office, apop_user: Pop3User) -> None:
    isp = apop_office.isp
    assert isinstance(isp, DovecotServer)
    isp.deliver(apop_user.name, make_message(to="x@isp.example"))
    account = apop_office.account_for(apop_user, "alice", auth="apop", security="none", port=isp.pop3_port)
    Credentials().set_pop3_password("alice", "not the password")
    apop_office.use(account)

    result = await apop_office.run_cycle()

    assert result.exit_code != 0
    (event,) = apop_office.of(EventId.POP3_LOGIN_FAILED)
    assert event.diagnosis is Failure.AUTH_FAILED and event.fix
    assert "not the password" not in (event.transcript or "")
    assert len(isp.messages(apop_user.name)) == 1


async def test_apop_to_a_server_that_does_not_offer_it_says_so(
        office: Office, pop3_user: Pop3User) -> None:
    isp = office.isp
    assert isinstance(isp, DovecotServer) and not isp.apop
    account = office.account_for(pop3_user, "alice", auth="apop")
    finding = await check_account(account, Credentials())
    assert not finding.ok and "does not offer APOP" in finding.text and finding.cause and finding.fix


def test_check_reports_the_apop_login(apop_office: Office, apop_user: Pop3User) -> None:
    isp = apop_office.isp
    assert isinstance(isp, DovecotServer)
    apop_office.use(apop_office.account_for(apop_user, "alice", auth="apop", security="none", port=isp.pop3_port))

    out = subprocess.run([sys.executable, "-m", "pop3gui", "check"], capture_output=True, text=True,
                         env=dict(os.environ), timeout=120, check=False)

    assert out.returncode == 0, out.stdout + out.stderr
    assert f"[ok] account 'alice': logged in to 127.0.0.1:{isp.pop3_port} with APOP" in out.stdout
    assert any("method=APOP" in line for line in _logins(isp, apop_user.name))
