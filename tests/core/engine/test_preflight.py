"""The connection check (``pop3gui check``) in-process, against the real Dovecot and Postfix.

tests/cli/test_commands.py runs the command on a good setup and on a target no
policy covers; this module checks each finding the command prints from.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest

from pop3gui.core.config.model import (
    AccountConfig,
    AlertsConfig,
    Config,
    DeliveryConfig,
    RecipientPolicy,
    RoutingRuleConfig,
    SmtpConfig,
)
from pop3gui.core.engine.preflight import check_account, local_targets, probe_targets, run_preflight
from pop3gui.core.state.credentials import Credentials
from tests.conftest import Pop3User
from tests.support.office import ADMIN, Office, make_message
from tests.support.smtp_sink import SmtpSink, unused_port


def _account(name: str, deliver_to: str, **kw: Any) -> AccountConfig:
    return AccountConfig(name=name, host="127.0.0.1", username=name, deliver_to=deliver_to, **kw)


# -- which addresses are probed (no server needed) ------------------------------------


def test_local_targets_are_every_enabled_target_once_named_by_where_it_is_first_configured() -> None:
    config = Config(
        accounts=(
            _account("alice", "Alice@contoso.com"),
            _account("old", "old@contoso.com", enabled=False),
            _account("shared", "", kind="global"),
            _account("alice2", "alice@contoso.com"),
        ),
        rules=(RoutingRuleConfig("shared", "sales", "sales@contoso.com"),
               RoutingRuleConfig("shared", "info", "ALICE@contoso.com")),
        delivery=DeliveryConfig(undeliverable_to="admin@contoso.com"),
    )
    assert local_targets(config) == [
        ("account 'alice' deliver_to", "alice@contoso.com"),
        ("routing_rule 1 deliver_to", "sales@contoso.com"),
        ("delivery.undeliverable_to", "admin@contoso.com"),
    ]


# -- POP3 accounts -------------------------------------------------------------------------


@pytest.mark.servers
async def test_a_good_account_logs_in_and_reports_the_mailbox_without_touching_it(
        office: Office, pop3_user: Pop3User) -> None:
    for n in range(2):
        office.isp.deliver(pop3_user.name, make_message(to="alice@isp.example", subject=f"m{n}"))
    account = office.account_for(pop3_user, "alice")

    finding = await check_account(account, Credentials())

    assert finding.ok, finding
    assert finding.subject == "account 'alice'"
    assert f"logged in to 127.0.0.1:{office.isp.pop3s_port}; 2 message(s)" in finding.text
    assert "UIDL" in finding.text.partition("capabilities: ")[2]
    assert "no UIDL" not in finding.text
    assert len(office.isp.messages(pop3_user.name)) == 2


@pytest.mark.servers
async def test_a_wrong_password_is_a_finding_with_its_cause_and_fix(office: Office, pop3_user: Pop3User) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="alice@isp.example"))
    account = office.account_for(pop3_user, "alice")
    Credentials().set_pop3_password("alice", "not-" + pop3_user.password)

    finding = await check_account(account, Credentials())

    assert not finding.ok
    assert finding.subject == "account 'alice'"
    assert "login" in finding.text.lower()
    assert finding.cause and finding.fix
    assert len(office.isp.messages(pop3_user.name)) == 1


@pytest.mark.servers
async def test_an_account_without_a_stored_password_says_how_to_store_one(office: Office) -> None:
    name = f"nopw-{uuid.uuid4().hex[:8]}"
    account = _account(name, "alice@contoso.com", port=office.isp.pop3s_port, ca_file=str(office.isp.ca_path))

    finding = await check_account(account, Credentials())

    assert not finding.ok
    assert f"pop3gui secret set {name}" in finding.fix


@pytest.mark.servers
async def test_a_pop3_server_that_is_not_there_is_a_finding_not_a_crash(office: Office, pop3_user: Pop3User) -> None:
    account = office.account_for(pop3_user, "alice", port=unused_port())

    finding = await check_account(account, Credentials())

    assert not finding.ok
    assert finding.cause and finding.fix


@pytest.mark.servers
async def test_a_missing_ca_file_is_a_finding_naming_the_file(office: Office, pop3_user: Pop3User,
                                                               tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    account = office.account_for(pop3_user, "alice", ca_file=str(missing))

    finding = await check_account(account, Credentials())

    assert not finding.ok and str(missing) in finding.text


# -- the whole check ---------------------------------------------------------------------


@pytest.mark.servers
async def test_a_domain_the_policies_cover_but_the_local_server_refuses_is_found_by_the_probe(
        office: Office, pop3_user: Pop3User) -> None:
    """No policy warning can see this one: only the server's reply (Postfix: relay access denied) does."""
    covered = (RecipientPolicy("Default Policy", ("contoso.com", "contoso.local", "fabrikam.com"), "contoso.com"),)
    config = office.use(office.account_for(pop3_user, "alice", deliver_to="alice@fabrikam.com"), policies=covered)

    report = await run_preflight(config, Credentials())

    by_subject = {f.subject: f for f in report.findings}
    assert not report.ok
    smtp = f"smtp {office.local.host}:{office.local.port}"
    assert [f.subject for f in report.findings] == ["account 'alice'", smtp, smtp, "alice@fabrikam.com", ADMIN]
    size = report.findings[2]  # the office's Postfix takes less than the default max_message_kb
    assert office.local.message_size_limit < 25600 * 1024
    assert size.ok and f"SIZE {office.local.message_size_limit}" in size.text
    assert "max_message_kb = 25600" in size.text
    assert "message_size_limit" in size.fix
    assert by_subject["account 'alice'"].ok and by_subject[ADMIN].ok
    refused = by_subject["alice@fabrikam.com"]
    assert refused.text.startswith("account 'alice' deliver_to: refused (domain not accepted): 554 5.7.1")
    assert "fabrikam.com" in refused.fix
    assert office.local.delivered() == []


@pytest.mark.servers
async def test_alert_mail_outside_the_policies_is_probed_and_a_refusing_server_is_a_problem(
        office: Office, pop3_user: Pop3User) -> None:
    """Alert mail may leave the office only if the local server relays it: the probe asks, nothing is sent."""
    config = office.use(office.account_for(pop3_user, "alice"))
    config = dataclasses.replace(config, alerts=AlertsConfig(mail_to="it@fabrikam.example"))

    report = await run_preflight(config, Credentials())

    by_subject = {f.subject: f for f in report.findings}
    assert by_subject["[alerts]"].ok and "must relay it" in by_subject["[alerts]"].text
    refused = by_subject["it@fabrikam.example"]
    assert not refused.ok and refused.text.startswith("alerts.mail_to: refused")
    assert not report.ok
    assert office.local.delivered() == []


@pytest.mark.servers
async def test_a_disabled_account_is_neither_logged_in_to_nor_probed(office: Office, pop3_user: Pop3User) -> None:
    good = office.account_for(pop3_user, "alice")
    off = office.account_for(pop3_user, "off", deliver_to="ghost@contoso.com", enabled=False)
    Credentials().set_pop3_password("off", "wrong")
    config = office.use(good, off)

    report = await run_preflight(config, Credentials())

    assert report.ok, report.findings
    subjects = [f.subject for f in report.findings]
    assert "account 'off'" not in subjects and "ghost@contoso.com" not in subjects


async def test_a_local_server_that_is_not_there_is_one_finding_with_its_fix() -> None:
    port = unused_port()
    config = Config(smtp=SmtpConfig(host="127.0.0.1", port=port, timeout_s=10),
                    accounts=(_account("alice", "alice@contoso.com"),))

    findings = await probe_targets(config, Credentials())

    assert len(findings) == 1
    assert findings[0].subject == f"smtp 127.0.0.1:{port}" and not findings[0].ok
    assert "[smtp]" in findings[0].fix


@pytest.mark.servers
async def test_the_smtp_login_is_checked_with_the_stored_password(secret_service: object) -> None:
    user = f"connector-{uuid.uuid4().hex[:8]}"
    Credentials().set_smtp_password(user, "right-password")
    async with SmtpSink(login=(user, "right-password")) as sink:
        config = Config(smtp=SmtpConfig(host="127.0.0.1", port=sink.port, username=user, timeout_s=10),
                        delivery=DeliveryConfig(undeliverable_to=ADMIN))

        good = await probe_targets(config, Credentials())
        Credentials().set_smtp_password(user, "wrong-password")
        bad = await probe_targets(config, Credentials())

    assert good[0].ok and good[0].text == "connected and logged in"
    assert [f.subject for f in good[1:]] == [ADMIN] and good[1].ok
    assert len(bad) == 1 and not bad[0].ok
    assert user in bad[0].text and "pop3gui secret set --smtp" in bad[0].fix
    assert sink.received == []


@pytest.mark.servers
async def test_an_smtp_login_without_a_stored_password_says_how_to_store_one(secret_service: object) -> None:
    user = f"nobody-{uuid.uuid4().hex[:8]}"
    async with SmtpSink(login=(user, "x")) as sink:
        config = Config(smtp=SmtpConfig(host="127.0.0.1", port=sink.port, username=user),
                        delivery=DeliveryConfig(undeliverable_to=ADMIN))
        findings = await probe_targets(config, Credentials())
        assert sink.connections == 0

    assert len(findings) == 1 and not findings[0].ok
    assert "pop3gui secret set --smtp" in findings[0].fix


async def test_an_oauth_account_whose_provider_is_missing_is_a_finding_not_an_error() -> None:
    from pop3gui.core.config.model import AccountConfig as Account

    account = Account(name="m365", host="127.0.0.1", port=9, username="a@contoso.com", deliver_to="a@contoso.com",
                      auth="oauth2", oauth_provider="gone")
    finding = await check_account(account, Credentials())
    assert not finding.ok and "'gone' is not configured" in finding.text and finding.fix
