"""A server's error about a refused bearer token: read when it is JSON, bounded and printable when not."""

from __future__ import annotations

import base64
import json

import pytest

from pop3gui.core.sasl import MAX_FIELD, bearer_error


def b64(text: str) -> bytes:
    return base64.b64encode(text.encode())


def test_dovecot_and_gmail_errors_give_their_status_and_scope() -> None:
    assert bearer_error(b64('{"status":"401","schemes":"bearer","scope":"mail"}'))[:2] == ("401", "mail")
    assert bearer_error(b64('{"status":"invalid_token"}'))[:2] == ("invalid_token", "")
    status, scope, text = bearer_error(b64('{"status":"400","scope":"https://mail.google.com/"}').rstrip(b"="))
    assert (status, scope) == ("400", "https://mail.google.com/") and '"status"' in text


@pytest.mark.parametrize("payload", [
    b"not base64 at all!", b64("plain words, not JSON"), b64("[1, 2, 3]"), b64('{"status": true}'),
    b64("[" * 5000 + "]" * 5000), b64(json.dumps({"status": "4" * 10000})), b64('{"scope":"a\\u0000b\\nc"}'),
])
def test_anything_else_is_bounded_printable_text_and_never_an_error(payload: bytes) -> None:
    status, scope, text = bearer_error(payload)
    assert len(status) <= MAX_FIELD + 3 and len(scope) <= MAX_FIELD + 3 and len(text) <= 503
    assert all(c.isprintable() for c in status + scope + text)
