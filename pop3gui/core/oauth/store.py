"""A sign-in kept in the OS keyring: the refresh token and what to show about it.

Two constraints shape it.  Windows Credential Manager holds at most 2,560
bytes a secret (about 1,280 characters through keyring) and providers' tokens
have no fixed length, so a record is stored in parts of at most
:data:`PART_CHARS` characters.  And refresh tokens rotate: the new one must be
safely stored before the old one is given up, whatever moment a crash picks.
So a record is written as a new *generation* of parts first; one small
header entry then switches to it (a single keyring write); the old parts go
last.  A crash before the switch leaves the old, still complete record.

Access tokens are never stored: they live in memory for an hour at most.
"""

from __future__ import annotations

import json
import contextlib
from dataclasses import asdict, dataclass, field

from pop3gui.core.errors import CredentialError, SignInNeeded
from pop3gui.core.state.credentials import Credentials

PART_CHARS = 1000  # below Windows' 1,280 characters a secret, with room for the backend's own overhead
_HEADER_VERSION = 1


@dataclass(frozen=True)
class SignIn:
    """What lasts of a sign-in between runs."""

    refresh_token: str = field(repr=False)
    identity: str = ""  # who signed in (from the provider's id token), for status and the GUI
    scope: str = ""
    signed_in_at: float = 0.0
    refreshed_at: float = 0.0


def sign_in_key(account: str) -> str:
    """The keyring name of an account's sign-in."""
    return f"account:{account}"


def smtp_sign_in_key(username: str) -> str:
    """The keyring name of the sign-in used to log in to the local mail server."""
    return f"smtp:{username}"


class SignInStore:
    """Reads and writes sign-ins through :class:`Credentials` (blocking keyring calls)."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def load(self, key: str) -> SignIn | None:
        """The stored sign-in, or None when there is none."""
        header = self._header(key)
        if header is None:
            return None
        generation, parts = header
        chunks = [self.credentials.oauth_entry(_part_name(key, generation, i)) for i in range(parts)]
        if any(chunk is None for chunk in chunks):
            raise self._damaged(key)
        try:
            data = json.loads("".join(chunk or "" for chunk in chunks))
            return SignIn(**data)
        except (ValueError, TypeError) as exc:
            raise self._damaged(key) from exc

    def save(self, key: str, sign_in: SignIn) -> None:
        """Store *sign_in* as a new generation, then switch to it, then drop the old one."""
        header = self._header(key)
        old_generation, old_parts = header if header is not None else (0, 0)
        generation = old_generation + 1
        text = json.dumps(asdict(sign_in), separators=(",", ":"))
        chunks = [text[i:i + PART_CHARS] for i in range(0, len(text), PART_CHARS)] or [""]
        for i, chunk in enumerate(chunks):
            self.credentials.set_oauth_entry(_part_name(key, generation, i), chunk)
        self.credentials.set_oauth_entry(key, json.dumps({"v": _HEADER_VERSION, "generation": generation,
                                                          "parts": len(chunks)}))
        with contextlib.suppress(CredentialError):  # the new record is in force; old parts are only litter
            self._drop_parts(key, old_generation, old_parts)

    def delete(self, key: str) -> bool:
        """Forget the sign-in; True when there was one."""
        header = self._header(key)
        if header is None:
            return False
        self.credentials.delete_oauth_entry(key)
        self._drop_parts(key, *header)
        return True

    def _header(self, key: str) -> tuple[int, int] | None:
        raw = self.credentials.oauth_entry(key)
        if raw is None:
            return None
        try:
            header = json.loads(raw)
            return int(header["generation"]), int(header["parts"])
        except (ValueError, TypeError, KeyError) as exc:
            raise self._damaged(key) from exc

    def _drop_parts(self, key: str, generation: int, parts: int) -> None:
        for i in range(parts):
            self.credentials.delete_oauth_entry(_part_name(key, generation, i))

    @staticmethod
    def _damaged(key: str) -> SignInNeeded:
        return SignInNeeded(
            f"the stored sign-in {key!r} is damaged",
            cause="The keyring holds only part of the sign-in (it was edited, or another program removed "
            "entries of the service pop3gui-oauth).",
            fix=f"Sign in again: {login_command(key)}.",
        )


def login_command(key: str) -> str:
    """The command that signs the owner of *key* in again, as a fix names it."""
    kind, _, name = key.partition(":")
    return "`pop3gui auth login --smtp`" if kind == "smtp" else f"`pop3gui auth login {name}`"


def _part_name(key: str, generation: int, index: int) -> str:
    """Parts are named apart from every header ("part:" never starts an account's or the SMTP key)."""
    return f"part:{generation}.{index}:{key}"
