"""Routing rules: which header part a rule reads, and when its text matches."""

from __future__ import annotations

import pytest

from pop3gui.core.mail.routing import RULE_FIELDS, RoutingRule


def test_a_rule_reads_to_cc_or_subject() -> None:
    assert RULE_FIELDS == ("to-cc", "subject")
    for field in RULE_FIELDS:
        RoutingRule(field, "x", "a@contoso.com")


@pytest.mark.parametrize("field", ["from", "To-Cc", "", "body"])
def test_unknown_rule_field_is_refused(field: str) -> None:
    with pytest.raises(ValueError):
        RoutingRule(field, "x", "a@contoso.com")


def test_to_cc_rule_matches_raw_and_decoded_text_in_any_case() -> None:
    rule = RoutingRule("to-cc", "Sales@", "bob@contoso.com")
    assert rule.matches(["partner@fabrikam.example", "SALES@contoso.com"], [])
    named = RoutingRule("to-cc", "verkäufe", "bob@contoso.com")
    assert named.matches(["=?utf-8?q?Verk=C3=A4ufe?= <v@fabrikam.example>"], [])
    assert RoutingRule("to-cc", "=?utf-8?q?", "b@contoso.com").matches(["=?utf-8?q?x?= <v@x.example>"], [])


def test_each_rule_reads_only_its_own_header_part() -> None:
    assert not RoutingRule("to-cc", "sales", "b@contoso.com").matches(["x@fabrikam.example"], ["sales figures"])
    assert not RoutingRule("subject", "sales", "b@contoso.com").matches(["sales@contoso.com"], ["figures"])


def test_subject_rule_matches_the_decoded_subject_with_unicode_case_folding() -> None:
    assert RoutingRule("subject", "INVOICE", "a@contoso.com").matches([], ["=?utf-8?q?Your_invoice_n=C2=B0_42?="])
    assert RoutingRule("subject", "GRÜSSE", "a@contoso.com").matches([], ["Grüße"])
    assert not RoutingRule("subject", "invoice", "a@contoso.com").matches([], ["receipt"])


def test_empty_rule_text_matches_nothing() -> None:
    assert not RoutingRule("to-cc", "", "b@contoso.com").matches(["a@contoso.com"], ["a"])
    assert not RoutingRule("subject", "", "b@contoso.com").matches([], ["anything"])
