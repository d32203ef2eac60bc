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

IMAP: the ``dovecot`` of the session (tests/conftest.py) and ``dovecot_oauth``
also speak IMAP to the same users (``imap_port`` with STARTTLS, ``imaps_port``)
when dovecot-imapd is installed. A test needing IMAP asks for ``dovecot_imap``
(the session's ``dovecot``) or ``imap_user`` (the test's ``pop3_user`` with the
IMAP ports), or calls :func:`require_imap`: without dovecot-imapd such a test
is skipped with the fix, except under CI, where it fails.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.servers.courier import CourierServer
from tests.servers.dovecot import DovecotServer
from tests.servers.mailutils import MailutilsServer
from tests.servers.privroot import PrivateRootError
from tests.support.oauth_server import FakeAuthServer, IntrospectionRelay
from tests.support.requirements import INSTALL_HINT, in_ci, require

if TYPE_CHECKING:
    from tests.conftest import Pop3User

__all__ = ["_dovecot_oauth_session", "courier", "courier_user", "dovecot_imap", "dovecot_oauth", "imap_user",
           "mailutils", "mailutils_user", "oauth_server", "ImapUser", "OAuthDovecot", "require_imap"]


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


# -- IMAP (the same Dovecot) ------------------------------------------------


def require_imap(server: DovecotServer) -> DovecotServer:
    """*server* when it speaks IMAP; else skip the test with the fix (under CI: fail it)."""
    if not server.imap_port:
        problem = "Dovecot runs without IMAP (its imap program comes with dovecot-imapd); "
        problem += INSTALL_HINT.format(packages="dovecot-imapd")
        if in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)
    return server


@pytest.fixture
def dovecot_imap(dovecot: DovecotServer) -> DovecotServer:
    """The session's ``dovecot``, which speaks IMAP: ``imap_port`` (plain + STARTTLS), ``imaps_port``."""
    return require_imap(dovecot)


@dataclass(frozen=True)
class ImapUser:
    """The test's ``pop3_user`` (same name, password, Maildir) with where its IMAP is."""

    name: str
    password: str
    maildir: Path
    imap_port: int
    imaps_port: int
    ca_path: Path


@pytest.fixture
def imap_user(dovecot_imap: DovecotServer, pop3_user: Pop3User) -> ImapUser:
    """A fresh mailbox on the session's Dovecot, reached over IMAP (and POP3: it is ``pop3_user``)."""
    return ImapUser(name=pop3_user.name, password=pop3_user.password, maildir=pop3_user.maildir,
                    imap_port=dovecot_imap.imap_port, imaps_port=dovecot_imap.imaps_port,
                    ca_path=dovecot_imap.ca_path)


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
    def imap_port(self) -> int:
        """Plain IMAP with STARTTLS (0 without dovecot-imapd: see :func:`require_imap`)."""
        return self.server.imap_port

    @property
    def imaps_port(self) -> int:
        return self.server.imaps_port

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

    def deliver(self, message: bytes, user: str | None = None, folder: str = "INBOX") -> str:
        """Put *message* into *folder* of *user* (default: the provider's user)."""
        return self.server.deliver((user or self.user).lower(), message, folder)

    def messages(self, user: str | None = None, folder: str = "INBOX") -> list[bytes]:
        return self.server.messages((user or self.user).lower(), folder)

    def create_folder(self, name: str, user: str | None = None) -> Path:
        """Create the IMAP folder *name* ("Archive/2024") of *user* (default: the provider's user)."""
        return self.server.create_folder((user or self.user).lower(), name)

    def folders(self, user: str | None = None) -> list[str]:
        return self.server.folders((user or self.user).lower())


@pytest.fixture(scope="session")
def _dovecot_oauth_session() -> Iterator[tuple[DovecotServer, IntrospectionRelay]]:
    """One Dovecot (POP3 and IMAP) for the session's OAuth2 tests; its introspection URL is a relay each test aims."""
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
