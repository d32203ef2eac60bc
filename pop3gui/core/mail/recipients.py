"""Who a downloaded message is for: the envelope handed to the local server.

A user mailbox always goes to its one mapped recipient. A global (catch-all)
mailbox is resolved from the envelope headers the ISP wrote, else from To and
Cc, plus the routing rules. Whatever the headers say, only addresses in a local
domain (a recipient policy) ever come out as recipients: a connector that passed
on a stranger's Cc would be an open relay (or a backscatter source), and the
local server would refuse it with "Unable to relay" anyway.

The types :func:`resolve_global` takes, :class:`LocalDomains` and
:class:`RoutingRule`, are named here too, so that a caller of the resolver
needs only this module.

Header text comes from the network and is hostile or broken often enough, so
every parser here returns "nothing usable" rather than raising.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import Parser

from pop3gui.core.mail.addresses import address_list, domain_of, normalize_address
from pop3gui.core.mail.headers import raw_fields
from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.mail.routing import RoutingRule

__all__ = [
    "Resolution",
    "envelope_sender",
    "parse_headers",
    "resolve_global",
    "resolve_user",
]

SOURCES = ("mapping", "envelope", "headers", "undeliverable")
"""Where a Resolution's recipients came from."""


@dataclass(frozen=True)
class Resolution:
    """The outcome for one message: who gets it, and why, for the log."""

    recipients: tuple[str, ...]
    """For RCPT TO: unique, in order of discovery."""
    source: str
    """"mapping", "envelope", "headers" or "undeliverable"."""
    foreign: tuple[str, ...] = ()
    """Addresses seen (envelope headers, To/Cc when used, rule targets) but
    dropped because no recipient policy covers their domain."""
    rules_matched: tuple[RoutingRule, ...] = ()
    """The rules whose text matched, in configured order, even if their target was foreign."""


def resolve_user(deliver_to: str) -> Resolution:
    """A user mailbox: everything in it is for its one mapped recipient.

    The headers are not consulted at all; a Cc of a stranger changes nothing.
    The address is normalised when it is one; otherwise it is passed on as
    configured so that the local server's refusal explains it. Empty gives no
    recipient (the caller treats that as undeliverable).
    """
    target = deliver_to.strip()
    if not target:
        return Resolution(recipients=(), source="mapping")
    return Resolution(recipients=(normalize_address(target) or target,), source="mapping")


def resolve_global(
    headers: Message,
    *,
    envelope_headers: Sequence[str],
    rules: Sequence[RoutingRule],
    local: LocalDomains,
    undeliverable_to: str,
) -> Resolution:
    """A catch-all mailbox: find the local recipients of this copy.

    If an envelope header (Delivered-To, X-Original-To ...) names a local
    address, those headers alone decide: they reveal Bcc recipients, and ISPs
    that keep one copy per recipient mark each copy this way, so also using
    To/Cc would hand every copy to everybody. Otherwise To and Cc are read.
    "Received" among the envelope headers stands for the ``for <address>``
    clause of the topmost Received line (see _received_for).
    Matching routing rules add their targets. Only local-domain addresses
    survive; the rest is listed in ``foreign``. With nobody left, the message
    goes to *undeliverable_to* as configured (no recipient if that is empty).
    """
    fields = raw_fields(headers)
    envelope_names = {name.strip().lower() for name in envelope_headers}

    recipients: dict[str, None] = {}
    foreign: dict[str, None] = {}

    def sort(addresses: Iterable[str]) -> None:
        for address in addresses:
            if domain_of(address) in local:
                recipients.setdefault(address)
            else:
                foreign.setdefault(address)

    envelope = [a for name, text in fields if name in envelope_names and name != "received"
                for a in address_list(text)]
    if "received" in envelope_names:
        envelope.extend(_received_for(fields))
    if any(domain_of(a) in local for a in envelope):
        source = "envelope"
        sort(envelope)
    else:
        source = "headers"
        sort(envelope)
        sort(a for name, text in fields if name in ("to", "cc") for a in address_list(text))

    to_cc = [text for name, text in fields if name in ("to", "cc")]
    subjects = [text for name, text in fields if name == "subject"]
    matched: list[RoutingRule] = []
    for rule in rules:
        if not rule.matches(to_cc, subjects):
            continue
        matched.append(rule)
        target = normalize_address(rule.deliver_to)
        if target is None:
            foreign.setdefault(rule.deliver_to)
        else:
            sort([target])

    if not recipients:
        undeliverable = (undeliverable_to,) if undeliverable_to else ()
        return Resolution(undeliverable, "undeliverable", tuple(foreign), tuple(matched))
    return Resolution(tuple(recipients), source, tuple(foreign), tuple(matched))


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_COMMENT = re.compile(r"\([^()]*\)")
_LAST_FOR_CLAUSE = re.compile(r"(?:^|\s)for\s+(<[^<>\s]*>|[^\s<>;]+)\s*$", re.IGNORECASE)


def _received_for(fields: Sequence[tuple[str, str]]) -> list[str]:
    """The address in the ``for <...>`` clause of the topmost Received line, if it has one.

    Only the topmost line is the ISP's own delivery into this mailbox; an older
    hop's clause names whom some earlier server relayed for, which may be one of
    several recipients, and taking it as the envelope would hide the others.
    The sender controls parts of that line too (the HELO name, the envelope
    sender in a comment), so quoted strings and comments are dropped first, and
    the clause must be the last thing before the date (RFC 5321 4.4).
    """
    for name, text in fields:
        if name == "received":
            clauses = text.rpartition(";")[0] if ";" in text else text
            clauses = _QUOTED.sub(" ", clauses)
            while (uncommented := _COMMENT.sub(" ", clauses)) != clauses:
                clauses = uncommented
            if "(" in clauses or ")" in clauses or '"' in clauses:
                return []  # unbalanced: not worth guessing at
            match = _LAST_FOR_CLAUSE.search(clauses)
            return address_list(match.group(1)) if match else []
    return []


def envelope_sender(headers: Message) -> str:
    """The MAIL FROM for resubmission: Return-Path's address, else "" (null sender).

    The null sender is the safe default: a bounce from the local server then
    goes nowhere instead of to a forged address (no backscatter).
    """
    for name, text in raw_fields(headers):
        if name == "return-path":
            found = address_list(text)
            return found[0] if len(found) == 1 else ""
    return ""


def parse_headers(raw: bytes) -> EmailMessage:
    """The header block of a raw message (stops at the first blank line).

    Bytes are read as UTF-8 (RFC 6532), undecodable ones become U+FFFD, so the
    result holds only real text. Never raises: garbage gives a message with
    fewer or no headers.
    """
    ends = [i for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    head = raw[: min(ends) + 1] if ends else raw
    text = head.decode("utf-8", "replace")
    try:
        message = Parser(policy=policy.default).parsestr(text, headersonly=True)
    except Exception:  # noqa: BLE001 - never let one message stop the mailbox
        return EmailMessage(policy=policy.default)
    if isinstance(message, EmailMessage):
        return message
