"""Session fixtures for the extra real POP3 servers of the compatibility tests.

``courier`` and ``mailutils`` are unpacked from Debian packages into a cached
private root and run in their own namespaces (see :mod:`tests.servers.privroot`).
When that cannot be done here (not root, no apt, no network for the first
download) the tests that need them are skipped with the fix, except under CI
(``CI=true``), where it is a failure. ``courier_user`` and ``mailutils_user``
make a fresh mailbox for one test.

OAuth2: ``oauth_server`` is a fresh fake provider for one test
(:class:`tests.support.oauth_server.FakeAuthServer`); ``dovecot_oauth`` is a
Dovecot of the session whose POP3 takes XOAUTH2 and OAUTHBEARER tokens, asking
this test's ``oauth_server`` about each one, with an empty Maildir for the
provider's user.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.servers.courier import CourierServer
from tests.servers.dovecot import DovecotServer
from tests.servers.mailutils import MailutilsServer
from tests.servers.privroot import PrivateRootError
from tests.support.oauth_server import FakeAuthServer, IntrospectionRelay
from tests.support.requirements import in_ci, require

__all__ = ["_dovecot_oauth_session", "courier", "courier_user", "dovecot_oauth", "mailutils", "mailutils_user", "oauth_server",
           "OAuthDovecot"]


@dataclass(frozen=True)
class ExtraPop3User:
    """Like ``tests.conftest.Pop3User``: *maildir* is the Maildir (Courier) or mbox file (Mailutils)."""

    name: str
    password: str
    maildir: Path


_Server = TypeVar("_Server", CourierServer, MailutilsServer)
_user_numbers = itertools.count(1)


def _started(what: str, make: Callable[[], _Server]) -> _Server:
    """Start the server, or skip (fail under CI) with the reason when it cannot be prepared here."""
    require(what, ["apt-get", "dpkg-deb", "unshare", "nsenter", "openssl"], "apt util-linux openssl")
    server = make()
    try:
        return server.start()
    except PrivateRootError as exc:
        problem = f"{what} cannot be prepared: {exc}"
        if in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)


def _new_user(server: CourierServer | MailutilsServer) -> ExtraPop3User:
    name = f"user{next(_user_numbers)}-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    return ExtraPop3User(name=name, password=password, maildir=server.add_user(name, password))


@pytest.fixture(scope="session")
def courier() -> Iterator[CourierServer]:
    """Courier POP3: ``pop3_port`` (plain + STLS), ``pop3s_port``, ``ca_path``; advertises PIPELINING."""
    server = _started("Courier POP3", CourierServer)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def courier_user(courier: CourierServer) -> ExtraPop3User:
    """A fresh Maildir with a unique name and password on the session's Courier."""
    return _new_user(courier)


@pytest.fixture(scope="session")
def mailutils() -> Iterator[MailutilsServer]:
    """GNU Mailutils pop3d: ``pop3_port`` (plain + STLS), ``pop3s_port``, ``ca_path``; APOP greeting."""
    server = _started("GNU Mailutils pop3d", MailutilsServer)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailutils_user(mailutils: MailutilsServer) -> ExtraPop3User:
    """A fresh mbox with a unique name and password on the session's Mailutils pop3d."""
    return _new_user(mailutils)


# -- OAuth2 ------------------------------------------------------------------


@pytest.fixture
def oauth_server() -> Iterator[FakeAuthServer]:
    """A fresh fake OAuth2 provider on 127.0.0.1: user alice@contoso.com, public client pop3gui-test."""
    with FakeAuthServer() as server:
        yield server


@dataclass(frozen=True)
class OAuthDovecot:
    """The session's OAuth2 Dovecot, asking this test's ``auth`` (the ``oauth_server``) about tokens.

    Password users (``server.add_user``) log in as on the ``dovecot`` fixture;
    ``auth.user`` has an empty Maildir and signs in with the provider's tokens.
    """

    server: DovecotServer
    auth: FakeAuthServer

    @property
    def pop3_port(self) -> int:
        """Plain POP3 with STLS (plaintext logins allowed, so security "none" works on loopback)."""
        return self.server.pop3_port

    @property
    def pop3s_port(self) -> int:
        return self.server.pop3s_port

    @property
    def ca_path(self) -> Path:
        return self.server.ca_path

    @property
    def user(self) -> str:
        """The mailbox a token of ``auth`` opens: its user, lower-cased as Dovecot does (%Lu)."""
        return self.auth.user.lower()

    def add_mailbox(self, user: str) -> Path:
        """An empty Maildir for another OAuth2 user (set ``auth.user`` to sign in as them)."""
        return self.server.add_mailbox(user)

    def deliver(self, message: bytes, user: str | None = None) -> str:
        """Put *message* into the Maildir of *user* (default: the provider's user)."""
        return self.server.deliver((user or self.user).lower(), message)

    def messages(self, user: str | None = None) -> list[bytes]:
        return self.server.messages((user or self.user).lower())


@pytest.fixture(scope="session")
def _dovecot_oauth_session() -> Iterator[tuple[DovecotServer, IntrospectionRelay]]:
    """One Dovecot for the session's OAuth2 tests; its introspection URL is a relay each test aims."""
    require("Dovecot", ["dovecot", "openssl"], "dovecot-pop3d")
    relay = IntrospectionRelay().start()
    server = DovecotServer(oauth_introspection_url=relay.url)
    try:
        server.start()
        yield server, relay
    finally:
        server.stop()
        relay.stop()


@pytest.fixture
def dovecot_oauth(_dovecot_oauth_session: tuple[DovecotServer, IntrospectionRelay],
                  oauth_server: FakeAuthServer) -> Iterator[OAuthDovecot]:
    """Dovecot taking ``oauth_server``'s tokens, with an empty Maildir for its user."""
    server, relay = _dovecot_oauth_session
    user = oauth_server.user.lower()
    shutil.rmtree(server.maildir_path(user), ignore_errors=True)  # an earlier test's mail is not this one's
    server.add_mailbox(user)
    relay.target = oauth_server
    try:
        yield OAuthDovecot(server=server, auth=oauth_server)
    finally:
        relay.target = None
