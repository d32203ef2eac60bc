"""Who a downloaded message is for: the RCPT TO list handed to the local server.

A user mailbox always goes to its one mapped recipient. A global (catch-all)
mailbox is resolved from the envelope headers the ISP wrote, else from To and
Cc, plus the routing rules. Whatever the headers say, only addresses in a local
domain (a recipient policy) ever come out as recipients: a connector that passed
on a stranger's Cc would be an open relay (or a backscatter source), and the
local server would refuse it with "Unable to relay" anyway.

Header text comes from the network and is hostile or broken often enough, so
every parser here returns "nothing usable" rather than raising.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from email import policy
from email.errors import InvalidHeaderDefect
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.parser import Parser
from email.utils import getaddresses

from pop3gui.core.errors import ConfigError

__all__ = [
    "LocalDomains",
    "Resolution",
    "RoutingRule",
    "envelope_sender",
    "normalize_address",
    "normalize_domain",
    "parse_headers",
    "resolve_global",
    "resolve_user",
]

RULE_FIELDS = ("to-cc", "subject")
"""The header parts a routing rule can look at."""

SOURCES = ("mapping", "envelope", "headers", "undeliverable")
"""Where a Resolution's recipients came from."""

_REGISTRY = HeaderRegistry()
# Looked up once: HeaderRegistry builds a new class on every lookup, which is
# most of the cost of parsing a short header.
_ADDRESS_HEADER = _REGISTRY["to"]
_TEXT_HEADER = _REGISTRY["subject"]

# Up to this length an address list is parsed in one go, which keeps the email
# package's exact reading of odd syntax. Its parser is quadratic in the length
# of the text, so longer lists are cut at their top-level commas first.
_WHOLE_PARSE_LIMIT = 2000
# No real mailbox ("Display Name" <addr>) is this long; a longer piece is an
# unterminated quote or bracket swallowing the rest of the header.
_MAX_MAILBOX_LEN = 4000

_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


# --------------------------------------------------------------- addresses


def normalize_domain(domain: str) -> str | None:
    """The lower-case ASCII (A-label) form of a domain, or None if it is not one.

    Local domains and header domains go through this same function so that
    "Contoso.COM", "dömain.com" and "xn--dmain-jua.com" compare as they should.
    Non-ASCII labels are mapped the IDNA 2008 / UTS 46 non-transitional way
    (NFKC, lower case, Punycode), as current mail servers do, so "straße.de"
    stays "xn--strae-oqa.de" and does not become "strasse.de". Address
    literals ("[192.0.2.1]") and dotted numbers are not domains here: a recipient
    policy never names one.
    """
    if not isinstance(domain, str):
        return None
    name = domain.strip().translate(_IDNA_DOTS)
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 1000:
        return None
    labels: list[str] = []
    for label in name.split("."):
        ascii_label = _label_to_ascii(label)
        if ascii_label is None:
            return None
        labels.append(ascii_label)
    result = ".".join(labels)
    if len(result) > 253 or labels[-1].isdigit():
        return None
    return result


def _label_to_ascii(label: str) -> str | None:
    """One label in A-label form, or None when it cannot be a host name label."""
    if not label.isascii():
        label = unicodedata.normalize("NFC", unicodedata.normalize("NFKC", label).lower())
    if label.isascii():
        label = label.lower()
        if not 0 < len(label) <= 63 or not _LDH.issuperset(label):
            return None
        if label.startswith("-") or label.endswith("-"):
            return None
        if label.startswith("xn--"):
            try:
                label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                return None
        return label
    if label.startswith("-") or label.endswith("-"):
        return None
    if unicodedata.category(label[0]).startswith("M"):
        return None
    for char in label:
        if char != "-" and unicodedata.category(char)[0] not in "LMN":
            return None
        if unicodedata.category(char) in ("Nl", "No"):
            return None
    try:
        encoded = "xn--" + label.encode("punycode").decode("ascii")
    except UnicodeError:
        return None
    return encoded if len(encoded) <= 63 else None


def _build_address(username: str, domain: str) -> str | None:
    """A parsed local part and domain as one RCPT-ready addr-spec, or None.

    Control characters (NUL, CR, LF ...), Unicode blanks (a no-break space the
    parser takes for part of the name), undecodable bytes and U+FFFD are
    refused in the local part: they would be an SMTP command injection or a
    mailbox nobody has, and no server accepts them.
    """
    if not username or not domain:
        return None
    for char in username:
        code = ord(char)
        if (code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code < 0xE000 or code == 0xFFFD
                or (code > 0x7F and char.isspace())):
            return None
    ascii_domain = normalize_domain(domain)
    if ascii_domain is None:
        return None
    try:
        return Address(username=username, domain=ascii_domain).addr_spec
    except (ValueError, TypeError):
        return None


# The shape nearly every real address has: a dot-atom local part, an ASCII
# host name, maybe in angle brackets. The email package's parser gives exactly
# these two parts for it, at a hundredth of the cost; anything else goes to it.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(
    rf"[ \t]*(?:<(?P<q_local>{_ATEXT}(?:\.{_ATEXT})*)@(?P<q_domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    rf"|(?P<local>{_ATEXT}(?:\.{_ATEXT})*)@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*))[ \t]*",
    re.ASCII,
)


def _plain_address(text: str) -> tuple[str, str] | None:
    """(local part, domain) of a plain ``local@host`` or ``<local@host>``; None for anything else.

    "=?" is left to the parser: it decodes encoded words even inside a local part.
    """
    if "=?" in text:
        return None
    match = _PLAIN_ADDRESS.fullmatch(text)
    if match is None:
        return None
    if match["q_local"] is not None:
        return match["q_local"], match["q_domain"]
    return match["local"], match["domain"]


def normalize_address(addr: str) -> str | None:
    """An addr-spec with its domain normalised and its local part kept, or None.

    "Local@Dömain.com" becomes "Local@xn--dmain-jua.com". The local part keeps
    its case (RFC 5321 lets the receiving server decide) and its Unicode
    (SMTPUTF8); quoting is made canonical ('"john.doe"@x' -> 'john.doe@x').
    Surrounding blanks and one pair of angle brackets are tolerated; a display
    name is not: 'Alice <a@x>' is not an address.
    """
    if not isinstance(addr, str):
        return None
    plain = _plain_address(addr)
    if plain is not None:
        return _build_address(*plain)
    return _normalize_parsed(addr)


def _normalize_parsed(addr: str) -> str | None:
    """normalize_address() through the email package's parser, for any shape of input."""
    parsed = _parse_list(addr.strip())
    if parsed is None:
        return None
    addresses, clean = parsed
    if not clean or len(addresses) != 1 or addresses[0].display_name:
        return None
    return _build_address(addresses[0].username, addresses[0].domain)


def _parse_list(text: str) -> tuple[tuple[Address, ...], bool] | None:
    """The email package's reading of an address list, and whether it was clean.

    None when the parser raised (it has crashed on pathological input before).
    "Clean" means no InvalidHeaderDefect: the text really was an address list,
    not something the parser had to guess at.
    """
    try:
        header = _ADDRESS_HEADER("To", text)
        if not isinstance(header, AddressHeader):
            return None
        addresses = header.addresses
        clean = not any(isinstance(d, InvalidHeaderDefect) for d in header.defects)
    except Exception:  # noqa: BLE001 - hostile header text must never stop a mailbox
        return None
    return addresses, clean


def _legacy_addresses(text: str) -> list[str]:
    """The older email.utils reading of a piece of address list, validated."""
    try:
        pairs = getaddresses([text])
    except Exception:  # noqa: BLE001 - as above
        return []
    found = []
    for _name, addr in pairs:
        normal = normalize_address(addr) if addr else None
        if normal is not None:
            found.append(normal)
    return found


def _split_mailboxes(text: str) -> list[str]:
    """Cut an address list at top-level commas, dropping group names and ';'.

    Not a validator: it only tracks quotes, comments and angle brackets so
    that each piece can be handed to the email package on its own, keeping the
    cost linear. Each piece is one mailbox, or garbage the parser rejects.
    """
    pieces: list[str] = []
    start = 0
    quoted = False
    escaped = False
    comment = 0
    angle = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif comment:
            if char == "(":
                comment += 1
            elif char == ")":
                comment -= 1
        elif char == '"':
            quoted = True
        elif char == "(":
            comment = 1
        elif angle:
            angle = char != ">"
        elif char == "<":
            angle = True
        elif char == ":":
            start = index + 1  # a group's display name names nobody
        elif char in ",;":
            pieces.append(text[start:index])
            start = index + 1
    pieces.append(text[start:])
    return [piece for piece in pieces if piece.strip()]


def _mailbox_addresses(piece: str) -> list[str]:
    """The addresses in one piece of a list that did not parse cleanly as a whole.

    A clean piece is taken as the email package reads it. A piece it had to
    guess at counts only if the older email.utils parser finds the very same
    addresses: 'alice@contoso.com <mallory@evil.example>' reads as alice to one
    and as alice and mallory to the other, so it names nobody rather than
    letting a display name pose as a recipient.
    """
    if len(piece) > _MAX_MAILBOX_LEN:
        return []
    parsed = _parse_list(piece)
    if parsed is None:
        return _legacy_addresses(piece)
    addresses, clean = parsed
    found = [a for a in (_build_address(x.username, x.domain) for x in addresses) if a]
    if clean or set(found) == set(_legacy_addresses(piece)):
        return found
    return []


def _addresses(text: str, *, whole_limit: int = _WHOLE_PARSE_LIMIT) -> list[str]:
    """Every valid addr-spec in an address-list header value, normalised, in order.

    Addresses that cannot be parsed are skipped. The text is parsed whole when
    it is short and clean; otherwise mailbox by mailbox (see _mailbox_addresses).
    """
    plain = _plain_address(text)
    if plain is not None:
        address = _build_address(*plain)
        return [address] if address else []
    return _addresses_parsed(text, whole_limit=whole_limit)


def _addresses_parsed(text: str, *, whole_limit: int = _WHOLE_PARSE_LIMIT) -> list[str]:
    """_addresses() through the email package's parser, for any shape of input."""
    if len(text) <= whole_limit:
        parsed = _parse_list(text)
        if parsed is not None and parsed[1]:
            found = (_build_address(a.username, a.domain) for a in parsed[0])
            return [a for a in found if a]
    result: list[str] = []
    for piece in _split_mailboxes(text):
        result.extend(_mailbox_addresses(piece))
    return result


def _domain_of(address: str) -> str:
    """The domain of an address produced by _build_address."""
    return address.rpartition("@")[2]


class LocalDomains:
    """The recipient policies' domains: the only ones the local server accepts.

    Compared in normalised form, so case and IDN spelling do not matter.
    """

    def __init__(self, domains: Iterable[str]) -> None:
        ordered: list[str] = []
        for domain in domains:
            normal = normalize_domain(domain)
            if normal is None:
                raise ConfigError(
                    f"{domain!r} is not a valid e-mail domain",
                    cause="A recipient policy names something that is not a domain name.",
                    fix="Write the domain as it appears after the @, e.g. contoso.com.",
                )
            if normal not in ordered:
                ordered.append(normal)
        self._ordered = tuple(ordered)
        self._domains = frozenset(ordered)

    def is_local(self, address: str) -> bool:
        """Whether a bare addr-spec is in a local domain (a display name is not one)."""
        normal = normalize_address(address)
        return normal is not None and _domain_of(normal) in self._domains

    def __contains__(self, domain: object) -> bool:
        return isinstance(domain, str) and normalize_domain(domain) in self._domains

    def __iter__(self) -> Iterator[str]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)

    def __repr__(self) -> str:
        return f"LocalDomains({list(self._ordered)!r})"


# ------------------------------------------------------------- resolution


@dataclass(frozen=True)
class RoutingRule:
    """Deliver to *deliver_to* when *contains* is in To/Cc or Subject (any case).

    The SBS "Routing Rules" of a global mailbox: a list address such as
    "sales@" in To/Cc, or a word in the subject, sends the message to a mailbox.
    An empty *contains* matches nothing, so a half-filled rule cannot swallow
    the whole mailbox.
    """

    field: str
    contains: str
    deliver_to: str

    def __post_init__(self) -> None:
        if self.field not in RULE_FIELDS:
            raise ValueError(f"routing rule field must be one of {RULE_FIELDS}, not {self.field!r}")


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


def _clean_text(value: object) -> str:
    """A raw header value as one unfolded line of real Unicode.

    Messages parsed from bytes keep 8-bit bytes as surrogate escapes; those are
    decoded as UTF-8 here (RFC 6532), anything undecodable becomes U+FFFD.
    """
    text = "".join((value if isinstance(value, str) else str(value)).splitlines())
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _raw_fields(headers: Message) -> list[tuple[str, str]]:
    """(lower-case name, unfolded raw value) for every header, in order."""
    fields = []
    try:
        items = list(headers.raw_items())
    except Exception:  # noqa: BLE001 - a broken message object still gets resolved
        return []
    for name, value in items:
        try:
            fields.append((str(name).strip().lower(), _clean_text(value)))
        except Exception:  # noqa: BLE001
            continue
    return fields


def _decoded(text: str) -> str:
    """Header text with its RFC 2047 encoded words decoded (raw text if that fails)."""
    try:
        return str(_TEXT_HEADER("Subject", text))
    except Exception:  # noqa: BLE001
        return text


def _rule_matches(rule: RoutingRule, to_cc: Sequence[str], subjects: Sequence[str]) -> bool:
    """Case-insensitive substring test against the rule's header part.

    To/Cc are tried both raw and decoded, so a rule can name an address or a
    display name that was sent as an encoded word; Subject is decoded.
    """
    needle = rule.contains.casefold()
    if not needle:
        return False
    if rule.field == "to-cc":
        texts = [t for raw in to_cc for t in (raw, _decoded(raw))]
    else:
        texts = [_decoded(raw) for raw in subjects]
    return any(needle in text.casefold() for text in texts)


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
    fields = _raw_fields(headers)
    envelope_names = {name.strip().lower() for name in envelope_headers}

    recipients: dict[str, None] = {}
    foreign: dict[str, None] = {}

    def sort(addresses: Iterable[str]) -> None:
        for address in addresses:
            if _domain_of(address) in local:
                recipients.setdefault(address)
            else:
                foreign.setdefault(address)

    envelope = [a for name, text in fields if name in envelope_names and name != "received"
                for a in _addresses(text)]
    if "received" in envelope_names:
        envelope.extend(_received_for(fields))
    if any(_domain_of(a) in local for a in envelope):
        source = "envelope"
        sort(envelope)
    else:
        source = "headers"
        sort(envelope)
        sort(a for name, text in fields if name in ("to", "cc") for a in _addresses(text))

    to_cc = [text for name, text in fields if name in ("to", "cc")]
    subjects = [text for name, text in fields if name == "subject"]
    matched: list[RoutingRule] = []
    for rule in rules:
        if not _rule_matches(rule, to_cc, subjects):
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
            return _addresses(match.group(1)) if match else []
    return []


def envelope_sender(headers: Message) -> str:
    """The MAIL FROM for resubmission: Return-Path's address, else "" (null sender).

    The null sender is the safe default: a bounce from the local server then
    goes nowhere instead of to a forged address (no backscatter).
    """
    for name, text in _raw_fields(headers):
        if name == "return-path":
            found = _addresses(text)
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
    return EmailMessage(policy=policy.default)
