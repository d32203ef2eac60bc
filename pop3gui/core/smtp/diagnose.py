"""Cause and fix, in plain words, for the replies a local mail server gives.

This is the KB article's lesson turned into code: a refusal is never just a
number in a log; it says what the admin should change. Servers word the same
refusal in many ways, and not all of them carry an RFC 3463 status code, so the
reply is classified by a table of real servers' default wordings (``WORDINGS``),
then by its status code. Where a reply does not say whether the server refuses
the domain or only the mailbox (OpenSMTPD's "Invalid recipient", a bare 550),
the caller asks the server for ``postmaster@domain``, which RFC 5321 requires
every accepted domain to take, and passes the answer in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pop3gui.core.failures import Failure

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(frozen=True)
class Wording:
    """One way servers word a refusal: a pattern over the reply text, and what it means.

    ``unless_domain_refused`` is, for an unclear wording, what it means when the
    server does take ``postmaster@`` the recipient's domain.
    """

    kind: Failure
    pattern: str
    examples: tuple[str, ...]
    unless_domain_refused: Failure = Failure.OTHER

    def matches(self, text: str) -> bool:
        """Whether the reply's words match; *text* has its addresses blanked (see :func:`classify`)."""
        return re.search(self.pattern, text, re.IGNORECASE) is not None


# First match wins, more specific wordings first; an unclear wording only counts
# when the status code does not say more. The examples are real
# servers' default replies (docs/events.md lists them; tests check every one).
WORDINGS: tuple[Wording, ...] = (
    Wording(Failure.UNKNOWN_USER, r"access denied\.? ?as\(201806281\)", (
        "550 5.4.1 Recipient address rejected: Access denied. AS(201806281)",  # Microsoft 365 (directory check)
    )),
    # About the sender or the connection, whatever else the reply says (Postfix may defer them to RCPT).
    Wording(Failure.POLICY, r"sender address rejected|client host rejected", (
        "550 5.1.0 <noreply@contoso.com>: Sender address rejected: User unknown in virtual mailbox table",
        "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied",
    )),
    Wording(Failure.DOMAIN_NOT_ACCEPTED,
            r"unable to relay|relay(ing)?( access)? (denied|not permitted|prohibited|not allowed)"
            r"|we do not relay|no relaying|non-accepted domain|allowed rcpthosts"
            r"|delivery is not allowed to this address|not (a )?local domain|domain (is )?not (served|hosted) here",
            (
                "550 5.7.1 Unable to relay for erin@contoso.eu",  # Exchange 2003
                "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain",  # Exchange 2007 and later
                "554 5.7.1 <erin@contoso.eu>: Relay access denied",  # Postfix
                "550 relay not permitted",  # Exim
                "550 5.7.1 <erin@contoso.eu>... Relaying denied",  # Sendmail
                "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",  # qmail
                "550 Delivery is not allowed to this address.",  # hMailServer
                "550 5.7.64 TenantAttribution; Relay Access Denied",  # Microsoft 365
            )),
    Wording(Failure.LINE_TOO_LONG,
            r"line (is )?too long|overlong line|line length (exceeded|limit)|allowed line length", (
                "500 5.0.0 Line too long",  # OpenSMTPD
                "550 maximum allowed line length is 998 octets, got 70000",  # Exim 4.96
            )),
    Wording(Failure.MAILBOX_FULL,
            r"mailbox (is )?full|over ?quota|quota (exceeded|full)|exceeded storage|insufficient (system )?storage",
            (
                "552 5.2.2 Mailbox full",
                "552 5.2.2 <bob@contoso.com>: Recipient address rejected: Mailbox is full",
                "550 5.2.2 Mailbox quota exceeded",
            )),
    Wording(Failure.TOO_BIG,
            r"message (size )?(exceeds|too (big|large))|size (exceeds|limit)|too (big|large) for|exceeds .*size",
            (
                "552 5.3.4 Message size exceeds fixed limit",  # Postfix
                "552 Message size exceeds maximum permitted",  # Exim
                "552 5.2.3 Message exceeds maximum fixed size (1000000)",  # Sendmail
                "552 5.3.4 Message size exceeds fixed maximum message size",  # Exchange
                "552 Message too large",  # OpenSMTPD
            )),
    Wording(Failure.UNKNOWN_USER,
            r"user unknown|unknown user|no such (user|recipient|mailbox)|unknown (recipient|local part)"
            r"|recipient ?not ?found|recipientnotfound|no mailbox here|unrouteable address|does not exist"
            r"|mailbox (does not exist|not found)|invalid mailbox",
            (
                "550 5.1.1 <ghost@contoso.com>: Recipient address rejected: User unknown in virtual mailbox table",
                "550 Unrouteable address",  # Exim
                "550 5.1.1 <ghost@contoso.com>... User unknown",  # Sendmail
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",  # Exchange
                "550 sorry, no mailbox here by that name. (#5.1.1)",  # qmail
                "550 Unknown user",  # hMailServer
            )),
    Wording(Failure.POLICY,
            r"spam|blocked|block ?list|black ?list|rejected (by|for) policy|content rejected|virus|\bspf\b"
            r"|dmarc|authentication required|not authori[sz]ed",
            (
                "554 5.7.1 Message rejected as spam",
                "530 5.7.0 Authentication required",
            )),
    Wording(Failure.UNCLEAR, r"invalid recipient|mailbox unavailable|requested action not taken", (
        "550 Invalid recipient: <erin@contoso.eu>",  # OpenSMTPD: unknown user and foreign domain alike
        "550 Requested action not taken: mailbox unavailable",  # RFC 5321's own text
    ), unless_domain_refused=Failure.UNKNOWN_USER),
    Wording(Failure.UNCLEAR, r"recipient address rejected|access denied|administrative prohibition", (
        "554 5.7.1 <bob@contoso.com>: Recipient address rejected: Access denied",  # Postfix access table
        "550 Administrative prohibition",  # Exim: an ACL's deny without a message
    ), unless_domain_refused=Failure.POLICY),
)

# By RFC 3463 status when no wording matched.
_BY_STATUS: tuple[tuple[str, Failure], ...] = (
    ("5.7.54", Failure.DOMAIN_NOT_ACCEPTED), ("5.7.64", Failure.DOMAIN_NOT_ACCEPTED),
    ("5.1.1", Failure.UNKNOWN_USER), ("5.1.0", Failure.UNKNOWN_USER), ("5.1.6", Failure.UNKNOWN_USER),
    ("5.1.10", Failure.UNKNOWN_USER), ("5.2.2", Failure.MAILBOX_FULL), ("5.3.4", Failure.TOO_BIG),
    ("5.2.3", Failure.TOO_BIG),
)
_BARE = Wording(Failure.UNCLEAR, r"", (), unless_domain_refused=Failure.UNKNOWN_USER)
_POLICY_STATUS = Wording(Failure.UNCLEAR, r"", (), unless_domain_refused=Failure.POLICY)


@dataclass(frozen=True)
class Diagnosis:
    cause: str
    fix: str
    kind: Failure = Failure.OTHER


def enhanced_status(message: str) -> str:
    """The RFC 3463 status code at the start of a reply text ('5.7.1'), or ''."""
    match = _ENHANCED.match(message)
    return ".".join(match.groups()) if match else ""


def domain_of(address: str) -> str:
    return address.rpartition("@")[2]


def postmaster_of(address: str) -> str:
    """The address every domain a server accepts must take (RFC 5321, 4.5.1)."""
    return f"postmaster@{domain_of(address)}"


_ADDRESSES = re.compile(r"<[^<>]*>|[^\s<>]+@[^\s<>]+")


def classify(code: int, message: str) -> Wording:
    """The wording (or status rule) a refusal matches; ``kind`` says what it means.

    The addresses a reply quotes are blanked first: ``<spam@contoso.com>`` must
    not read as a spam verdict.
    """
    if 400 <= code < 500:
        return Wording(Failure.TEMPORARY, "", ())
    words = _ADDRESSES.sub("<>", message)
    matching = [wording for wording in WORDINGS if wording.matches(words)]
    for wording in matching:
        if wording.kind is not Failure.UNCLEAR:
            return wording
    status = enhanced_status(message)
    for prefix, kind in _BY_STATUS:  # a specific status says more than an unclear wording
        if status == prefix:
            return Wording(kind, "", ())
    if matching:
        return matching[0]
    if code == 552:
        return Wording(Failure.TOO_BIG, "", ())
    if status.startswith("5.7"):
        return _POLICY_STATUS
    if code in (550, 551, 553, 554) and len(message.split()) <= 3:  # "550", "550 5.0.0 Error": says nothing
        return _BARE
    return Wording(Failure.OTHER, "", ())


def domain_taken(postmaster_code: int, postmaster_message: str) -> bool | None:
    """What the reply to ``RCPT TO:<postmaster@domain>`` says of the domain.

    True: the server takes the domain. False: it refuses postmaster the way it
    refuses an address it has no place for, so it does not accept the domain.
    None: the reply says something else (a policy, a temporary problem).
    """
    if 200 <= postmaster_code < 300:
        return True
    kind = classify(postmaster_code, postmaster_message).kind
    if kind in (Failure.DOMAIN_NOT_ACCEPTED, Failure.UNKNOWN_USER, Failure.UNCLEAR):
        return False
    return None


# How an event's text names each meaning, for people; programs read the event's diagnosis.
_WORDS: dict[Failure, str] = {
    Failure.DOMAIN_NOT_ACCEPTED: "domain not accepted", Failure.UNKNOWN_USER: "unknown user",
    Failure.MAILBOX_FULL: "mailbox full", Failure.TOO_BIG: "too big", Failure.LINE_TOO_LONG: "line too long",
    Failure.POLICY: "policy", Failure.TEMPORARY: "temporary", Failure.UNCLEAR: "domain or mailbox unclear",
}


def refusal_label(kind: Failure) -> str:
    """How an event's text names the meaning of a refusal: " (domain not accepted)", or ''."""
    words = _WORDS.get(kind)
    return f" ({words})" if words else ""


def needs_postmaster_probe(code: int, message: str) -> bool:
    """Whether only asking for postmaster@domain can tell what this refusal means."""
    return code >= 500 and classify(code, message).kind is Failure.UNCLEAR


def diagnose_recipient(code: int, message: str, recipient: str, *,
                       postmaster_accepted: bool | None = None) -> Diagnosis:
    """Explain a refused (5xx) or deferred (4xx) RCPT TO for ``recipient``.

    ``postmaster_accepted`` is the answer of the postmaster probe, when one was
    made (see :func:`needs_postmaster_probe`).
    """
    wording = classify(code, message)
    kind, probed = wording.kind, ""
    domain, reply = domain_of(recipient), f"{code} {message.strip()}".strip()
    if kind is Failure.UNCLEAR and postmaster_accepted is not None:
        postmaster = postmaster_of(recipient)
        if postmaster_accepted:
            kind = wording.unless_domain_refused
            probed = f" It does accept {postmaster}, so it takes the domain {domain} itself."
        else:
            kind = Failure.DOMAIN_NOT_ACCEPTED
            probed = (f" It refuses {postmaster} too, which every domain a server accepts must take "
                      "(RFC 5321), so it does not accept the domain at all.")
    cause, fix = _RECIPIENT_TEXTS[kind]
    words = dict(recipient=recipient, domain=domain, reply=reply, probed=probed, postmaster=postmaster_of(recipient))
    return Diagnosis(cause=cause.format(**words), fix=fix.format(**words), kind=kind)


# What each meaning tells the admin, filled in with {recipient}, {domain}, {reply},
# {postmaster} and {probed} (what the postmaster probe showed, or nothing).
_RECIPIENT_TEXTS: dict[Failure, tuple[str, str]] = {
    Failure.DOMAIN_NOT_ACCEPTED: (
        "The local mail server does not accept mail for the domain {domain}: it treats {recipient} as a foreign "
        "address and refuses to relay to it (reply {reply}).{probed}",
        "Add {domain} to the local server's accepted domains (Exchange: Accepted Domains; Postfix: "
        "virtual_mailbox_domains or mydestination; Exim: local_domains; OpenSMTPD: the domains of its delivery "
        "rule) and to a recipient policy, or map the account to an address in a domain the server accepts.",
    ),
    Failure.UNKNOWN_USER: (
        "The local mail server has no mailbox {recipient} (reply {reply}).{probed}",
        "Create the mailbox or an alias for {recipient} on the local server, or correct the account's "
        "deliver_to or the routing rule that produced it.",
    ),
    Failure.MAILBOX_FULL: (
        "{recipient}'s mailbox on the local mail server is full (reply {reply}).",
        "Make room in {recipient}'s mailbox or raise its quota; then resubmit the message from quarantine or "
        "the undeliverable mailbox.",
    ),
    Failure.TOO_BIG: (
        "The message is too big for the local mail server or for {recipient} (reply {reply}).",
        "Raise the local server's message size limit, or lower delivery.max_message_kb so such messages stay "
        "on the POP3 server.",
    ),
    Failure.LINE_TOO_LONG: (
        "The message has a line longer than the 1000 octets RFC 5321 allows, and the local mail server refuses "
        "such lines (reply {reply}).",
        "Allow long lines on the local server if it can (the sender's mailer should have encoded them), or "
        "have the sender resend the message as an attachment; it is kept for you meanwhile.",
    ),
    Failure.POLICY: (
        "The local mail server's policy refused {recipient} (reply {reply}).{probed}",
        "Check the local server's recipient, sender and content restrictions (for instance that it takes mail "
        "from the connector's address without authentication, or set smtp.username).",
    ),
    Failure.TEMPORARY: (
        "The local mail server deferred {recipient} temporarily (reply {reply}).",
        "Nothing to do if it passes: the message stays on the POP3 server and is retried next cycle. If it "
        "persists, check the local server's queue, disk space and logs.",
    ),
    Failure.UNCLEAR: (
        "The local mail server refused {recipient} without saying whether it does not accept the domain "
        "{domain} or has no such mailbox (reply {reply}).",
        "If {domain} is yours, add it to the local server's accepted domains; otherwise create the mailbox "
        "{recipient} or correct the mapping. `pop3gui check` tells the two apart by asking the server for "
        "{postmaster}.",
    ),
    Failure.OTHER: (
        "The local mail server refused {recipient} (reply {reply}).",
        "Read the server's reply and its log for the reason; correct the recipient mapping or the server's "
        "settings.",
    ),
}

# For a refusal of the whole message (MAIL FROM or DATA), where it differs.
_MESSAGE_TEXTS: dict[Failure, tuple[str, str]] = {
    Failure.TOO_BIG: (
        "The local mail server refuses messages of this size (reply {reply}).",
        "Raise the local server's message size limit, or lower delivery.max_message_kb so such messages stay "
        "on the POP3 server instead.",
    ),
    Failure.LINE_TOO_LONG: _RECIPIENT_TEXTS[Failure.LINE_TOO_LONG],
    Failure.MAILBOX_FULL: (
        "A recipient's mailbox on the local mail server is full (reply {reply}).",
        "Make room in the mailbox or raise its quota; then resubmit the message from quarantine or the "
        "undeliverable mailbox.",
    ),
    Failure.TEMPORARY: (
        "The local mail server deferred the message temporarily (reply {reply}).",
        "It stays on the POP3 server and is retried next cycle; if it persists, check the local server's disk "
        "space, queue and logs.",
    ),
    Failure.POLICY: (
        "The local mail server's policy refused the message (reply {reply}).",
        "Check the local server's sender and content restrictions (for instance that it accepts mail from the "
        "connector's address without authentication, or set smtp.username).",
    ),
    Failure.OTHER: (
        "The local mail server refused the message (reply {reply}).",
        "Read the server's reply and its log for the reason.",
    ),
}


def diagnose_message(code: int, message: str) -> Diagnosis:
    """Explain a refusal of the whole message (MAIL FROM or DATA)."""
    kind = classify(code, message).kind
    if kind not in _MESSAGE_TEXTS:
        kind = Failure.POLICY if enhanced_status(message).startswith("5.7") else Failure.OTHER
    cause, fix = _MESSAGE_TEXTS[kind]
    reply = f"{code} {message.strip()}".strip()
    return Diagnosis(cause=cause.format(reply=reply), fix=fix.format(reply=reply), kind=kind)
