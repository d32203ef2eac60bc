"""An in-memory keyring for the demo sandbox, installed for this process only.

Why the demo does not use the OS keyring like the real connector does:

- the demo's POP3 and SMTP servers and its sign-in page are fake and live
  only as long as the demo; their passwords and the OAuth2 sign-in are sample
  values, not secrets, so nothing needs protecting;
- writing them to the user's real keyring would leave litter (or overwrite a
  real ``pop3gui`` entry for an account that happens to share a sample name);
- on a headless machine (no desktop session, no Secret Service) the real
  keyring is unavailable, and the demo must work there too.

The connector itself is unchanged: :class:`pop3gui.core.state.credentials.Credentials`
reads through ``keyring.get_keyring()``, which :func:`install` points here.
"""

from __future__ import annotations

from collections.abc import Callable

import keyring
import keyring.core
import keyring.errors
from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    """Passwords in a dict; gone when the process ends."""

    # Never chosen by keyring's automatic detection (below the fail backend's 0):
    # it is only ever installed explicitly with keyring.set_keyring().
    priority = -1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # keyring's backend base class has no annotations
        self._store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self._store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self._store.pop((service, username), None) is None:
            raise keyring.errors.PasswordDeleteError(f"no password for {username!r} in {service!r}")


def install(backend: MemoryKeyring) -> Callable[[], None]:
    """Make *backend* the process's keyring; returns a function that puts the previous one back.

    The previous backend is read without triggering keyring's detection (which
    could touch D-Bus); if none had been chosen yet, the restore lets keyring
    detect one lazily again.
    """
    previous = keyring.core._keyring_backend
    keyring.set_keyring(backend)

    def restore() -> None:
        if keyring.core._keyring_backend is backend:
            keyring.core._keyring_backend = previous

    return restore
