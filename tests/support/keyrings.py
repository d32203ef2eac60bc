"""Keyring backends with the limits and failures of real ones, for tests of what is stored.

The sign-in store is also tested against the real gnome-keyring (tests/integration);
these add what a desktop keyring here will not do on purpose: refuse a secret
over Windows Credential Manager's size, or die between two writes.
"""

from __future__ import annotations

import keyring.errors

from pop3gui.demo.keyring_backend import MemoryKeyring

WINDOWS_SECRET_CHARS = 1280  # CRED_MAX_CREDENTIAL_BLOB_SIZE (2,560 bytes) as UTF-16 characters


class LimitedKeyring(MemoryKeyring):
    """Refuses secrets longer than Windows Credential Manager takes, with its error."""

    def set_password(self, service: str, username: str, password: str) -> None:
        if len(password) > WINDOWS_SECRET_CHARS:
            raise keyring.errors.PasswordSetError("(1783, 'CredWrite', 'The stub received bad data.')")
        super().set_password(service, username, password)


class Killed(BaseException):
    """The process died here (raised instead of the keyring call it interrupts)."""


class DyingKeyring(LimitedKeyring):
    """Stops the process (raises :class:`Killed`) at its n-th write or delete, counting from 0."""

    def __init__(self, die_at: int | None = None) -> None:
        super().__init__()
        self.die_at = die_at
        self.changes = 0

    def _change(self) -> None:
        if self.die_at is not None and self.changes == self.die_at:
            raise Killed(f"killed at change {self.changes}")
        self.changes += 1

    def set_password(self, service: str, username: str, password: str) -> None:
        self._change()
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._change()
        super().delete_password(service, username)
