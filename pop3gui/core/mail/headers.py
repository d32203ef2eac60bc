"""Reading the header fields of a downloaded message, fast and without failing.

The engine reads Message-ID and Subject of every message; a malformed field
must never stop a deliverable message, and the common plain value must not pay
for the email package's full header parser.  Recipient resolution reads every
field raw, as one line of real Unicode, and decodes encoded words only where
it compares text.
"""

from __future__ import annotations

import re
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage, Message

__all__ = ["decoded_text", "has_value", "header_text", "raw_fields"]

# Looked up once: HeaderRegistry builds a new class on every lookup.
_TEXT_HEADER = HeaderRegistry()["subject"]


def header_text(headers: EmailMessage, name: str) -> str:
    """A header's decoded value, or its raw text where the parser chokes on it.

    A malformed Message-ID such as ``<[>`` makes the standard library raise;
    such a message is still perfectly deliverable.  Plain printable ASCII with
    nothing to decode is its own value, and is taken as it is: the header
    parser costs more than everything else the connector does with a message.
    """
    wanted = name.lower()
    plain = _PLAIN_VALUE.get(wanted)
    if plain is not None:
        for key, value in headers.raw_items():
            if key.lower() == wanted:
                if isinstance(value, str) and plain.fullmatch(value) and "=?" not in value:
                    return value
                break
    return _parsed_header_text(headers, name)


def has_value(headers: Message, name: str) -> bool:
    """Whether the message has a field *name* with anything but blanks in it (read raw, never parsed:
    the duplicate key asks whether a Date is there, not what it says)."""
    wanted = name.lower()
    for key, value in headers.raw_items():
        if key.lower() == wanted and str(value).strip():
            return True
    return False


def _parsed_header_text(headers: EmailMessage, name: str) -> str:
    """header_text() through the email package's header parser, for any value."""
    try:
        return str(headers.get(name, "") or "")
    except Exception:  # noqa: BLE001 - any parser failure means "use the raw text"
        for key, value in headers.raw_items():
            if key.lower() == name.lower():
                return str(value)
        return ""


# Printable ASCII without comments, quoting, folding or blanks at either end
# (and, checked apart, without "=?"): the header parser would hand back the same text.
_PLAIN_CHAR = r"!#-'*-\[\]-~"
_PLAIN_HEADER = re.compile(rf"[{_PLAIN_CHAR}](?:[ {_PLAIN_CHAR}]*[{_PLAIN_CHAR}])?", re.ASCII)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_MESSAGE_ID = re.compile(rf"<{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*>", re.ASCII)
# The two headers the engine reads for every message (address headers would differ: "<a@b>" vs "a@b").
_PLAIN_VALUE = {"message-id": _PLAIN_MESSAGE_ID, "subject": _PLAIN_HEADER}


def raw_fields(headers: Message) -> list[tuple[str, str]]:
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


def decoded_text(text: str) -> str:
    """Header text with its RFC 2047 encoded words decoded (raw text if that fails)."""
    try:
        return str(_TEXT_HEADER("Subject", text))
    except Exception:  # noqa: BLE001
        return text
