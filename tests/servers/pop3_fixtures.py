"""Session fixtures for the extra real POP3 servers of the compatibility tests.

``courier`` and ``mailutils`` are unpacked from Debian packages into a cached
private root and run in their own namespaces (see :mod:`tests.servers.privroot`).
When that cannot be done here (not root, no apt, no network for the first
download) the tests that need them are skipped with the fix, except under CI
(``CI=true``), where it is a failure. ``courier_user`` and ``mailutils_user``
make a fresh mailbox for one test.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.servers.courier import CourierServer
from tests.servers.mailutils import MailutilsServer
from tests.servers.privroot import PrivateRootError
from tests.support.requirements import in_ci, require

__all__ = ["courier", "courier_user", "mailutils", "mailutils_user"]


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
