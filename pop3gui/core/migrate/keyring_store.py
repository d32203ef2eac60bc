"""Putting the passwords found in an imported file into the OS keyring (and nowhere else)."""

from __future__ import annotations

from collections.abc import Iterable

from pop3gui.core.migrate.report import Secret
from pop3gui.core.state.credentials import Credentials

__all__ = ["store_secrets"]


def store_secrets(secrets: Iterable[Secret], credentials: Credentials | None = None) -> list[Secret]:
    """Store each password under its account (or the SMTP login); CredentialError if the keyring fails."""
    creds = credentials or Credentials()
    stored: list[Secret] = []
    for secret in secrets:
        if secret.smtp_username:
            creds.set_smtp_password(secret.smtp_username, secret.password)
        else:
            creds.set_pop3_password(secret.account, secret.password)
        stored.append(secret)
    return stored
