"""Editing the routing rules of one global mailbox inside the whole list, keeping their order.

Rules are tried in order, so an edited or renamed account's rules go back
where its old ones were, not to the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from pop3gui.core.config.model import AccountConfig, RoutingRuleConfig


def splice_rules(rules: Sequence[RoutingRuleConfig], old_name: str, account: AccountConfig,
                 new: Iterable[RoutingRuleConfig]) -> list[RoutingRuleConfig]:
    """*rules* with ``old_name``'s replaced by *new* (renamed to *account*); a user mailbox keeps none."""
    mine = [replace(r, account=account.name) for r in new] if account.kind == "global" else []
    positions = [i for i, r in enumerate(rules) if r.account == old_name]
    at = positions[0] if positions else len(rules)
    kept = [r for r in rules if r.account != old_name]
    at -= sum(1 for i in positions if i < at)
    return kept[:at] + mine + kept[at:]
