"""Access tokens for the accounts that sign in with OAuth2, from sign-in to refresh.

Access tokens stay in memory and are refreshed shortly before they expire, or
once more when a server refuses one.  A refresh that brings a new refresh
token (Microsoft rotates it on every use) stores it **before** the new access
token is used, and refreshes of one sign-in are serialised across processes
(the tray and a command line may run side by side) by a lock file, so no
process ever spends a refresh token another has already replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import IO

from pop3gui.core.config.model import OAuthProviderConfig
from pop3gui.core.errors import CredentialError, OAuthError, SignInBusy, SignInNeeded
from pop3gui.core.oauth import flows
from pop3gui.core.oauth.endpoints import POP3, endpoints
from pop3gui.core.oauth.store import SignIn, SignInStore, login_command
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.lock import try_lock_file
from pop3gui.core.state.paths import ensure_private_dir
from pop3gui.core.threads import in_lookup_thread

REFRESH_MARGIN = 300.0  # seconds before expiry at which a token counts as used up
LOCK_WAIT = 120.0  # how long a refresh waits for another process's refresh of the same sign-in


class SignIns:
    """The OAuth2 sign-ins of one process: tokens in memory, sign-ins in the keyring."""

    def __init__(self, credentials: Credentials, lock_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.credentials = credentials
        self.store = SignInStore(credentials)
        self.lock_dir = lock_dir
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._busy: dict[str, asyncio.Lock] = {}
        # A rotated sign-in the keyring refused to store: used (and stored again) at the next refresh.
        self._unsaved: dict[str, SignIn] = {}

    async def access_token(self, key: str, provider: OAuthProviderConfig, purpose: str = POP3, *,
                           renew: bool = False) -> str:
        """A usable access token for the sign-in *key*; *renew* after a server refused the last one."""
        async with self._busy.setdefault(key, asyncio.Lock()):
            cached = self._tokens.get(key)
            if cached is not None and not renew and cached[1] - self._clock() > REFRESH_MARGIN:
                return cached[0]
            self._tokens.pop(key, None)
            # Shielded: a caller that gives up (its connection failed, the window closed) must not cut a
            # refresh between the provider's new refresh token and storing it; the refresh finishes alone.
            refresh = asyncio.ensure_future(self._fresh_tokens(key, provider, purpose))
            try:
                tokens = await asyncio.shield(refresh)
            except OAuthError as exc:
                raise _for_owner(exc, key) from exc.__cause__
            except asyncio.CancelledError:
                refresh.add_done_callback(lambda done: done.cancelled() or done.exception())
                raise
            self._tokens[key] = (tokens.access_token, tokens.expires_at)
            return tokens.access_token

    async def sign_in(self, key: str, provider: OAuthProviderConfig, purpose: str = POP3, *,
                      open_page: Callable[[str], object] | None = None,
                      show_code: Callable[[flows.DeviceCode], object] | None = None) -> SignIn:
        """Sign in in the browser (*open_page*) or with a device code (*show_code*) and keep the result."""
        ends = endpoints(provider, purpose)
        try:
            if provider.app_only:
                tokens = await self._app_tokens(provider, purpose)
            elif show_code is not None:
                tokens = await flows.device_sign_in(ends, provider.client_id, show_code,
                                                    client_secret=await self._client_secret(provider))
            elif open_page is not None:
                tokens = await flows.browser_sign_in(ends, provider.client_id, open_page,
                                                     client_secret=await self._client_secret(provider))
            else:
                raise ValueError("a sign-in needs a page opener or a code display")
        except OAuthError as exc:
            raise _for_owner(exc, key) from exc.__cause__
        now = self._clock()
        if provider.app_only:
            record = SignIn(refresh_token="", identity=f"app {provider.client_id}", scope=tokens.scope,
                            signed_in_at=now, refreshed_at=now)
        elif not tokens.refresh_token:
            raise OAuthError("the sign-in service gave no refresh token, so the sign-in would last an hour",
                             cause="The app was not granted offline access (Microsoft: offline_access; Google: "
                             "access_type=offline).",
                             fix="Add offline_access to the scopes (or leave scopes to pop3gui's defaults) and "
                             "sign in again.")
        else:
            record = SignIn(tokens.refresh_token, tokens.identity, tokens.scope, now, now)
        async with self._refresh_lock(key):
            await in_lookup_thread(self.store.save, key, record)
        self._unsaved.pop(key, None)
        self._tokens[key] = (tokens.access_token, tokens.expires_at)
        return record

    async def sign_out(self, key: str) -> bool:
        """Forget the sign-in (the provider's consent stays until revoked there)."""
        self._tokens.pop(key, None)
        self._unsaved.pop(key, None)
        async with self._refresh_lock(key):
            return await in_lookup_thread(self.store.delete, key)

    def forget_token(self, key: str) -> None:
        """Drop the access token held for *key*: a server refused it, so the next use renews it."""
        self._tokens.pop(key, None)

    def token_expiry(self, key: str) -> float | None:
        """When this process's access token for *key* expires, if it holds one."""
        cached = self._tokens.get(key)
        return cached[1] if cached else None

    async def _fresh_tokens(self, key: str, provider: OAuthProviderConfig, purpose: str) -> flows.Tokens:
        if provider.app_only:
            return await self._app_tokens(provider, purpose)
        ends = endpoints(provider, purpose)
        async with self._refresh_lock(key):
            sign_in = self._unsaved.get(key) or await in_lookup_thread(self.store.load, key)  # the newest one
            if sign_in is None:
                raise SignInNeeded(f"{_owner(key)} is not signed in",
                                   cause="It signs in with OAuth2 and no sign-in is stored in the keyring.",
                                   fix="Sign in: `pop3gui auth login ACCOUNT`.")
            tokens = await flows.refresh(ends, provider.client_id, sign_in.refresh_token,
                                         client_secret=await self._client_secret(provider))
            rotated = replace(sign_in, refresh_token=tokens.refresh_token or sign_in.refresh_token,
                              identity=tokens.identity or sign_in.identity, scope=tokens.scope or sign_in.scope,
                              refreshed_at=self._clock())
            self._unsaved[key] = rotated
            try:
                await in_lookup_thread(self.store.save, key, rotated)  # before the new access token is used
            except CredentialError:
                if rotated.refresh_token != sign_in.refresh_token:
                    raise  # the keyring lost the new refresh token's write: said now, kept here and retried
            else:
                self._unsaved.pop(key, None)
        return tokens

    async def _client_secret(self, provider: OAuthProviderConfig) -> str:
        """A stored client secret for providers whose installed apps have one (Google); "" otherwise."""
        return await in_lookup_thread(self.credentials.oauth_client_secret_if_any, provider.name)

    async def _app_tokens(self, provider: OAuthProviderConfig, purpose: str) -> flows.Tokens:
        secret = await in_lookup_thread(self.credentials.oauth_client_secret, provider.name)
        return await flows.app_token(endpoints(provider, purpose), provider.client_id, secret)

    @contextlib.asynccontextmanager
    async def _refresh_lock(self, key: str) -> AsyncIterator[None]:
        """Held while a sign-in is read and replaced; other processes wait for it."""
        ensure_private_dir(self.lock_dir)
        path = self.lock_dir / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".lock")
        handle: IO[str] = path.open("a+", encoding="ascii")
        try:
            deadline = time.monotonic() + LOCK_WAIT
            while not try_lock_file(handle):
                if time.monotonic() > deadline:
                    raise SignInBusy(f"another pop3gui process keeps the sign-in of {_owner(key)} busy",
                                     cause=f"Its lock {path} has been held for {LOCK_WAIT:.0f} seconds.",
                                     fix="Wait for the other process (a sign-in in progress?) or stop it.")
                await asyncio.sleep(0.05)
            yield
        finally:
            handle.close()


def _owner(key: str) -> str:
    kind, _, name = key.partition(":")
    return "the local mail server's login" if kind == "smtp" else f"account {name!r}"


def _for_owner(exc: OAuthError, key: str) -> OAuthError:
    """The same error, its fix naming the command for this account instead of a placeholder."""
    exc.fix = exc.fix.replace("`pop3gui auth login ACCOUNT --device`", login_command(key)[:-1] + " --device`")
    exc.fix = exc.fix.replace("`pop3gui auth login ACCOUNT`", login_command(key))
    return exc
