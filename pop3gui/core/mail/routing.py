"""Routing rules of a global mailbox: text in To/Cc or Subject -> a local address.

The SBS "Routing Rules": a list address such as "sales@" in To/Cc, or a word
in the subject, sends the message to a mailbox.  This module says what a rule
is and whether a message's headers match it; recipient resolution decides
what a match adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pop3gui.core.mail.headers import decoded_text

__all__ = ["RULE_FIELDS", "RoutingRule"]

RULE_FIELDS = ("to-cc", "subject")
"""The header parts a routing rule can look at."""


@dataclass(frozen=True)
class RoutingRule:
    """Deliver to *deliver_to* when *contains* is in To/Cc or Subject (any case).

    An empty *contains* matches nothing, so a half-filled rule cannot swallow
    the whole mailbox.
    """

    field: str
    contains: str
    deliver_to: str

    def __post_init__(self) -> None:
        if self.field not in RULE_FIELDS:
            raise ValueError(f"routing rule field must be one of {RULE_FIELDS}, not {self.field!r}")

    def matches(self, to_cc: Sequence[str], subjects: Sequence[str]) -> bool:
        """Case-insensitive substring test against the rule's header part (raw values given).

        To/Cc are tried both raw and decoded, so a rule can name an address or a
        display name that was sent as an encoded word; Subject is decoded.
        """
        needle = self.contains.casefold()
        if not needle:
            return False
        if self.field == "to-cc":
            texts = [t for raw in to_cc for t in (raw, decoded_text(raw))]
        else:
            texts = [decoded_text(raw) for raw in subjects]
        return any(needle in text.casefold() for text in texts)
