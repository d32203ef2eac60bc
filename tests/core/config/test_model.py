"""The configuration model: one home for every default, and the questions a Config answers."""

from __future__ import annotations

import pytest

from pop3gui.core.config.model import (
    POP3_PORTS,
    AccountConfig,
    Config,
    RecipientPolicy,
    RoutingRuleConfig,
)
from pop3gui.core.pop3.transport import SECURITY_MODES


def test_every_pop3_security_mode_has_its_usual_port() -> None:
    assert set(POP3_PORTS) == set(SECURITY_MODES)
    assert POP3_PORTS["tls"] == 995 and POP3_PORTS["starttls"] == POP3_PORTS["none"] == 110


def test_an_accounts_default_port_goes_with_its_default_security() -> None:
    account = AccountConfig(name="a", host="h", username="u")
    assert account.port == POP3_PORTS[account.security]


def test_account_and_rules_are_found_by_name() -> None:
    alice = AccountConfig(name="alice", host="h", username="u", deliver_to="alice@contoso.com")
    office = AccountConfig(name="office", host="h", username="o", kind="global")
    sales = RoutingRuleConfig(account="office", contains="sales@", deliver_to="s@contoso.com")
    config = Config(accounts=(alice, office), rules=(sales,))
    assert config.account("office") is office
    assert config.rules_for("office") == (sales,) and config.rules_for("alice") == ()
    with pytest.raises(KeyError):
        config.account("bob")


def test_local_domains_are_normalised_deduped_and_in_order() -> None:
    config = Config(policies=(
        RecipientPolicy("Default", ("Contoso.COM", "dömain.de")),
        RecipientPolicy("Second", ("contoso.com", "fabrikam.example")),
    ))
    assert config.local_domains() == ("contoso.com", "xn--dmain-jua.de", "fabrikam.example")


def test_a_half_typed_domain_in_a_draft_is_left_out() -> None:
    config = Config(policies=(RecipientPolicy("Default", ("contoso.com", "not a domain", "")),))
    assert config.local_domains() == ("contoso.com",)
