"""SASL pieces POP3 and SMTP share: reading a server's error about a refused bearer token.

A server that refuses an OAuth2 token (XOAUTH2, OAUTHBEARER) usually says why
in base64 JSON (``{"status":"401","scope":"..."}``) before its final refusal;
whatever it sends is untrusted text and is bounded and made printable here.
"""

from __future__ import annotations

import base64
import binascii
import json

MAX_FIELD = 200


def bearer_error(payload: bytes) -> tuple[str, str, str]:
    """``(status, scope, text)`` of the base64 JSON a server sends about a refused bearer token.

    POP3 sends it after ``+``, SMTP after ``334``.
    """
    payload = payload.strip()
    try:
        raw = base64.b64decode(payload + b"=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        return "", "", shown(payload.decode("utf-8", errors="replace"))
    text = raw.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "", "", shown(text)
    if not isinstance(data, dict):
        return "", "", shown(text)
    return _field(data.get("status")), _field(data.get("scope")), shown(text)


def _field(value: object) -> str:
    """A JSON value as the text of a status or scope; anything else counts as not said."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return shown(str(value), MAX_FIELD)


def shown(text: str, limit: int = 500) -> str:
    """Server text made safe for one transcript line: printable, bounded."""
    text = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return text if len(text) <= limit else text[:limit] + "..."
