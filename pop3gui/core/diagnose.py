"""Cause and fix, in plain words, for the replies a local mail server gives.

This is the KB article's lesson turned into code: a refusal is never just a
number in a log; it says what the admin should change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    fix: str


def enhanced_status(message: str) -> str:
    """The RFC 3463 status code at the start of a reply text ('5.7.1'), or ''."""
    match = _ENHANCED.match(message)
    return ".".join(match.groups()) if match else ""


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def diagnose_recipient(code: int, message: str, recipient: str) -> Diagnosis:
    """Explain a refused (5xx) or deferred (4xx) RCPT TO for ``recipient``."""
    status = enhanced_status(message)
    text = message.lower()
    domain = domain_of(recipient)
    if status == "5.7.1" or "relay" in text:
        return Diagnosis(
            cause=f"The local mail server does not accept mail for the domain {domain}: it treats "
            f"{recipient} as a foreign address and refuses to relay to it (reply {code} {message.strip()}).",
            fix=f"Add {domain} to the local server's accepted domains and to a recipient policy, or map "
            "the account to an address in a domain the server accepts.",
        )
    if status in ("5.1.1", "5.1.0", "5.1.6") or "unknown" in text or "does not exist" in text:
        return Diagnosis(
            cause=f"The local mail server has no mailbox {recipient} (reply {code} {message.strip()}).",
            fix=f"Create the mailbox or an alias for {recipient} on the local server, or correct the "
            "account's deliver_to or the routing rule that produced it.",
        )
    if code == 552 or status.startswith("5.3.4") or status == "5.2.2":
        return Diagnosis(
            cause=f"The message is too big for the local mail server or {recipient}'s mailbox is full "
            f"(reply {code} {message.strip()}).",
            fix="Raise the local server's message size limit or the mailbox quota, or lower "
            "delivery.max_message_kb so such messages stay on the POP3 server.",
        )
    if 400 <= code < 500:
        return Diagnosis(
            cause=f"The local mail server deferred {recipient} temporarily (reply {code} {message.strip()}).",
            fix="Nothing to do if it passes: the message stays on the POP3 server and is retried next "
            "cycle. If it persists, check the local server's queue, disk space and logs.",
        )
    return Diagnosis(
        cause=f"The local mail server refused {recipient} (reply {code} {message.strip()}).",
        fix="Read the server's reply and its log for the reason; correct the recipient mapping or the "
        "server's settings.",
    )


def diagnose_message(code: int, message: str) -> Diagnosis:
    """Explain a refusal of the whole message (MAIL FROM or DATA)."""
    status = enhanced_status(message)
    if code == 552 or status == "5.3.4":
        return Diagnosis(
            cause=f"The local mail server refuses messages of this size (reply {code} {message.strip()}).",
            fix="Raise the local server's message size limit, or lower delivery.max_message_kb so such "
            "messages stay on the POP3 server instead.",
        )
    if 400 <= code < 500:
        return Diagnosis(
            cause=f"The local mail server deferred the message temporarily (reply {code} {message.strip()}).",
            fix="It stays on the POP3 server and is retried next cycle; if it persists, check the local "
            "server's disk space, queue and logs.",
        )
    if status.startswith("5.7"):
        return Diagnosis(
            cause=f"The local mail server's policy refused the message (reply {code} {message.strip()}).",
            fix="Check the local server's sender and content restrictions (for instance that it accepts "
            "mail from the connector's address without authentication, or set smtp.username).",
        )
    return Diagnosis(
        cause=f"The local mail server refused the message (reply {code} {message.strip()}).",
        fix="Read the server's reply and its log for the reason.",
    )
