"""Configured addresses that no recipient policy covers: the local server will refuse them."""

from __future__ import annotations

from pop3gui.core.config.model import AccountConfig, Config, DeliveryConfig, RecipientPolicy, RoutingRuleConfig
from pop3gui.core.config.policies import policy_warnings

CONTOSO = RecipientPolicy("Default", ("contoso.com",))


def test_policy_warning_names_the_uncovered_domain() -> None:
    config = Config(
        policies=(CONTOSO,),
        accounts=(AccountConfig(name="bob", host="h", username="u", deliver_to="bob@fabrikam.com"),),
    )
    warnings = policy_warnings(config)
    assert [(w.address, w.domain) for w in warnings] == [("bob@fabrikam.com", "fabrikam.com")]
    assert "fabrikam.com" in warnings[0].fix and "account 'bob'" in warnings[0].where
    assert "bob@fabrikam.com" in warnings[0].text and "5.7.1" in warnings[0].text
    assert "change the local recipient of account 'bob'" in warnings[0].fix


def test_policy_domains_compare_case_and_idn_insensitively() -> None:
    config = Config(
        policies=(RecipientPolicy("Default", ("Bücher.example",)),),
        accounts=(AccountConfig(name="b", host="h", username="u", deliver_to="b@BÜCHER.example"),),
    )
    assert policy_warnings(config) == []


def test_rule_targets_and_the_undeliverable_mailbox_are_checked_too() -> None:
    config = Config(
        policies=(CONTOSO,),
        delivery=DeliveryConfig(undeliverable_to="admin@fabrikam.com"),
        accounts=(AccountConfig(name="office", host="h", username="u", kind="global"),),
        rules=(RoutingRuleConfig(account="office", contains="sales@", deliver_to="sales@contoso.com"),
               RoutingRuleConfig(account="office", contains="jobs", deliver_to="hr@fabrikam.com")),
    )
    assert [w.where for w in policy_warnings(config)] == [
        "The target of routing rule 2 ('jobs')", "The mailbox for undeliverable mail"]


def test_a_subdomain_is_not_covered_by_its_parent() -> None:
    config = Config(
        policies=(CONTOSO,),
        accounts=(AccountConfig(name="b", host="h", username="u", deliver_to="b@sales.contoso.com"),),
    )
    assert [w.domain for w in policy_warnings(config)] == ["sales.contoso.com"]


def test_without_any_policy_every_target_is_uncovered() -> None:
    config = Config(accounts=(AccountConfig(name="b", host="h", username="u", deliver_to="b@contoso.com"),))
    assert [w.domain for w in policy_warnings(config)] == ["contoso.com"]
