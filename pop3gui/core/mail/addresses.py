"""E-mail addresses and domains: their normal form, and reading address lists.

Local domains, configured addresses and header addresses all go through
these functions, so that "Contoso.COM", "dömain.com" and "xn--dmain-jua.com"
compare as they should, and an address that could smuggle an SMTP command or
a stranger past a display name never comes out.

Header text comes from the network and is hostile or broken often enough, so
every parser here returns "nothing usable" rather than raising.
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import InvalidHeaderDefect
from email.headerregistry import Address, AddressHeader, HeaderRegistry
from email.utils import getaddresses

__all__ = ["address_list", "domain_of", "normalize_address", "normalize_domain"]

# Looked up once: HeaderRegistry builds a new class on every lookup, which is
# most of the cost of parsing a short header.
_ADDRESS_HEADER = HeaderRegistry()["to"]

# Up to this length an address list is parsed in one go, which keeps the email
# package's exact reading of odd syntax. Its parser is quadratic in the length
# of the text, so longer lists are cut at their top-level commas first.
_WHOLE_PARSE_LIMIT = 2000
# No real mailbox ("Display Name" <addr>) is this long; a longer piece is an
# unterminated quote or bracket swallowing the rest of the header.
_MAX_MAILBOX_LEN = 4000

_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


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


def address_list(text: str, *, whole_limit: int = _WHOLE_PARSE_LIMIT) -> list[str]:
    """Every valid addr-spec in an address-list header value, normalised, in order.

    Addresses that cannot be parsed are skipped. The text is parsed whole when
    it is short and clean; otherwise mailbox by mailbox (see _mailbox_addresses).
    """
    plain = _plain_address(text)
    if plain is not None:
        address = _build_address(*plain)
        return [address] if address else []
    return _address_list_parsed(text, whole_limit=whole_limit)


def _address_list_parsed(text: str, *, whole_limit: int = _WHOLE_PARSE_LIMIT) -> list[str]:
    """address_list() through the email package's parser, for any shape of input."""
    if len(text) <= whole_limit:
        parsed = _parse_list(text)
        if parsed is not None and parsed[1]:
            found = (_build_address(a.username, a.domain) for a in parsed[0])
            return [a for a in found if a]
    result: list[str] = []
    for piece in _split_mailboxes(text):
        result.extend(_mailbox_addresses(piece))
    return result


def domain_of(address: str) -> str:
    """The domain of an address: what follows its last "@" (all of it when there is none)."""
    return address.rpartition("@")[2]
