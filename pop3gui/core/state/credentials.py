"""Passwords live only in the OS keyring, never in the config, state, logs or events.

Service names are fixed (``pop3gui`` for POP3 accounts, keyed by account name;
``pop3gui-smtp`` for the SMTP login, keyed by its user name; ``pop3gui-oauth``
for OAuth2 sign-ins and ``pop3gui-oauth-client`` for app secrets).  Every keyring
failure becomes one :class:`CredentialError` with the fix; there is no
plaintext fallback.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from pop3gui.core.errors import CredentialError

if TYPE_CHECKING:
    import keyring.backend

# keyring itself is imported on first use, or ahead of it by
# prepare_in_background(): it is the slowest import of start-up.

POP3_SERVICE = "pop3gui"
SMTP_SERVICE = "pop3gui-smtp"
OAUTH_SERVICE = "pop3gui-oauth"  # sign-ins (refresh tokens), in parts: see core/oauth/store.py
OAUTH_CLIENT_SERVICE = "pop3gui-oauth-client"  # client secrets of app-only providers, keyed by provider name

_NO_BACKEND_FIX = (
    "Install and unlock a Secret Service such as gnome-keyring or KWallet (on a server: run pop3gui "
    "inside `dbus-run-session` with `gnome-keyring-daemon --unlock`), or choose a keyring backend with "
    "the PYTHON_KEYRING_BACKEND environment variable."
)


def prepare_in_background() -> threading.Thread:
    """Import keyring and pick its backend in a thread, ahead of the first lookup.

    The import takes longer than logging in to a nearby POP3 server; started
    while the runner sets up, it is done by the time the password is needed.
    Errors are left to the real lookup, which explains them.
    """
    def prepare() -> None:
        with contextlib.suppress(Exception):
            _backend()

    thread = threading.Thread(target=prepare, name="keyring-prepare", daemon=True)
    thread.start()
    return thread


def _backend() -> keyring.backend.KeyringBackend:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        raise CredentialError(
            "no usable keyring: pop3gui keeps passwords only in the operating system's keyring",
            cause="No keyring backend is available in this session (no Secret Service on D-Bus, or it is locked).",
            fix=_NO_BACKEND_FIX,
        )
    return backend


def _call(what: str, func: Callable[..., object], *args: str) -> str | None:
    import keyring
    import keyring.errors

    try:
        result = func(*args)
    except keyring.errors.KeyringLocked as exc:
        raise CredentialError(f"the keyring is locked; cannot {what}", cause=str(exc) or "The keyring is locked.",
                              fix="Unlock the keyring (log in to the desktop session, or unlock it with "
                              "your keyring tool) and try again.") from exc
    except keyring.errors.PasswordDeleteError as exc:
        raise CredentialError(f"cannot {what}: no password is stored", cause=str(exc),
                              fix="Nothing to delete; `pop3gui secret set` stores one.") from exc
    except (keyring.errors.KeyringError, OSError) as exc:
        raise CredentialError(f"the keyring failed to {what}: {exc}",
                              cause=f"The keyring backend ({type(keyring.get_keyring()).__name__}) "
                              "reported an error.", fix=_NO_BACKEND_FIX) from exc
    return result if isinstance(result, str) else None


class Credentials:
    """Reads and writes the connector's passwords in the OS keyring (blocking calls)."""

    def pop3_password(self, account: str) -> str:
        """The POP3 password of an account; CredentialError with the fix if none is stored."""
        backend = _backend()
        value = _call(f"read the password of account {account!r}", backend.get_password, POP3_SERVICE, account)
        if value is None:
            raise CredentialError(
                f"no password is stored for account {account!r}",
                cause="The keyring has no entry for this account (new account, renamed account, or another "
                "user's keyring).",
                fix=f"Run `pop3gui secret set {account}` (or enter it in the account's properties).",
            )
        return value

    def smtp_password(self, username: str) -> str:
        backend = _backend()
        value = _call(f"read the SMTP password of {username!r}", backend.get_password, SMTP_SERVICE, username)
        if value is None:
            raise CredentialError(
                f"no SMTP password is stored for {username!r}",
                cause="smtp.username is set, so the connector logs in to the local mail server, but the "
                "keyring has no password for it.",
                fix="Run `pop3gui secret set --smtp` or clear smtp.username if the server needs no login.",
            )
        return value

    def has_pop3_password(self, account: str) -> bool:
        backend = _backend()
        return _call("look up a password", backend.get_password, POP3_SERVICE, account) is not None

    def set_pop3_password(self, account: str, password: str) -> None:
        _call(f"store the password of account {account!r}", _backend().set_password, POP3_SERVICE, account,
              password)

    def set_smtp_password(self, username: str, password: str) -> None:
        _call(f"store the SMTP password of {username!r}", _backend().set_password, SMTP_SERVICE, username,
              password)

    def delete_pop3_password(self, account: str) -> None:
        _call(f"delete the password of account {account!r}", _backend().delete_password, POP3_SERVICE, account)

    def delete_smtp_password(self, username: str) -> None:
        _call(f"delete the SMTP password of {username!r}", _backend().delete_password, SMTP_SERVICE, username)

    def oauth_entry(self, name: str) -> str | None:
        """One stored piece of an OAuth2 sign-in, or None."""
        return _call("read a sign-in", _backend().get_password, OAUTH_SERVICE, name)

    def set_oauth_entry(self, name: str, value: str) -> None:
        _call("store a sign-in", _backend().set_password, OAUTH_SERVICE, name, value)

    def delete_oauth_entry(self, name: str) -> None:
        """Remove a piece of a sign-in; one that is already gone is fine, a failing keyring is a CredentialError."""
        import keyring.errors

        backend = _backend()

        def delete(service: str, key: str) -> None:
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                backend.delete_password(service, key)

        _call("remove a sign-in", delete, OAUTH_SERVICE, name)

    def oauth_client_secret(self, provider: str) -> str:
        value = _call(f"read the client secret of {provider!r}", _backend().get_password, OAUTH_CLIENT_SERVICE,
                      provider)
        if value is None:
            raise CredentialError(
                f"no client secret is stored for the OAuth2 provider {provider!r}",
                cause="The provider signs in as the app itself (app_only = true), which needs the app's secret.",
                fix=f"Run `pop3gui secret set --oauth-client {provider}` with the secret from the app registration.",
            )
        return value

    def oauth_client_secret_if_any(self, provider: str) -> str:
        """The client secret of *provider* when one is stored, else "" (public clients have none)."""
        return _call(f"read the client secret of {provider!r}", _backend().get_password, OAUTH_CLIENT_SERVICE,
                     provider) or ""

    def set_oauth_client_secret(self, provider: str, secret: str) -> None:
        _call(f"store the client secret of {provider!r}", _backend().set_password, OAUTH_CLIENT_SERVICE, provider,
              secret)


class TypedPassword(Credentials):
    """The keyring, except that *account*'s password is one typed in a dialog and not stored yet.

    A Test from the account dialog logs in with what the admin typed before
    anything reaches the keyring.
    """

    def __init__(self, keyring: Credentials, account: str, password: str) -> None:
        self._keyring = keyring
        self._account = account
        self._password = password

    def pop3_password(self, account: str) -> str:
        return self._password if account == self._account else self._keyring.pop3_password(account)

    def has_pop3_password(self, account: str) -> bool:
        return account == self._account or self._keyring.has_pop3_password(account)
