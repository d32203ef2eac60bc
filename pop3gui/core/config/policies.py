"""Which configured addresses the local server will likely refuse.

Every address the connector delivers to (a user mailbox's recipient, a
routing rule's target, the mailbox for undeliverable mail) must be in a
domain a recipient policy covers; otherwise the local server refuses it as a
relay attempt, the failure that made the SBS POP3 Connector lose mail.  The
check is a warning, not an error: the configuration stays valid while the
policies are being completed.
"""

from __future__ import annotations

from dataclasses import dataclass

from pop3gui.core.config.model import Config
from pop3gui.core.mail.addresses import domain_of
from pop3gui.core.mail.local_domains import LocalDomains

__all__ = ["PolicyWarning", "policy_warnings"]


@dataclass(frozen=True)
class PolicyWarning:
    """An address the local server will likely refuse: no recipient policy covers it."""

    where: str  # in words, e.g. "The local recipient of account 'alice'"
    address: str
    domain: str

    @property
    def text(self) -> str:
        return (
            f"{self.where} is {self.address}, but no recipient policy covers the domain "
            f"{self.domain}: the local server will refuse it (550/554 5.7.1, the relay "
            "refusal that made the SBS POP3 Connector lose mail)."
        )

    @property
    def fix(self) -> str:
        return (
            f"Add {self.domain} to a recipient policy (and to the local server's accepted "
            f"domains), or change {self.where[:1].lower()}{self.where[1:]} to an address in a local domain."
        )


def policy_warnings(config: Config) -> list[PolicyWarning]:
    """Every configured target whose domain no recipient policy covers (the KB's failure)."""
    local = LocalDomains(config.local_domains())
    targets: list[tuple[str, str]] = []
    for acc in config.accounts:
        if acc.kind == "user":
            targets.append((f"The local recipient of account '{acc.name}'", acc.deliver_to))
    for i, rule in enumerate(config.rules):
        targets.append((f"The target of routing rule {i + 1} ('{rule.contains}')", rule.deliver_to))
    if config.delivery.undeliverable_to:
        targets.append(("The mailbox for undeliverable mail", config.delivery.undeliverable_to))
    warnings = []
    for where, address in targets:
        domain = domain_of(address)
        if domain not in local:
            warnings.append(PolicyWarning(where, address, domain))
    return warnings
