"""Session fixtures for the extra real SMTP servers of the compatibility tests.

Exim 4 and OpenSMTPD play the office's local mail server the way the
``postfix`` fixture does, with the same domains, unknown user and size limit.
Their Debian packages conflict with the installed postfix, so each runs from
its unpacked package in a private namespace; when that cannot be prepared (not
root, no apt-get, the download failed) the tests skip with the fix, and fail
under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from tests.servers.exim import EximServer
from tests.servers.opensmtpd import OpenSmtpdServer
from tests.servers.private_mta import PrivateMta
from tests.servers.privroot import PrivateRootError
from tests.support.office import ACCEPTED_DOMAINS, MESSAGE_SIZE_LIMIT, UNKNOWN_USERS  # as for Postfix
from tests.support.requirements import in_ci

__all__ = ["exim", "exim_clean", "opensmtpd", "opensmtpd_clean"]


M = TypeVar("M", bound=PrivateMta)


def _started(server: M, what: str) -> M:
    """*server* started, or the test skipped (failed under CI) when it cannot be prepared here."""
    try:
        return server.start()
    except PrivateRootError as exc:
        server.stop()
        problem = f"{what} cannot run here: {exc}"
        if in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)


def _office(cls: type[M]) -> M:
    return cls(ACCEPTED_DOMAINS, unknown_users=UNKNOWN_USERS, message_size_limit=MESSAGE_SIZE_LIMIT)


@pytest.fixture(scope="session")
def exim() -> Iterator[EximServer]:
    """A real Exim 4 accepting contoso.com and contoso.local on ``host:port``."""
    server = _started(_office(EximServer), "Exim (Debian exim4-daemon-light)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def exim_clean(exim: EximServer) -> Iterator[EximServer]:
    """The session's Exim with an empty queue and Maildir and the usual unknown user."""
    exim.clear()
    yield exim
    exim.clear()
    if exim.unknown_users != list(UNKNOWN_USERS):
        exim.set_unknown_users(UNKNOWN_USERS)


@pytest.fixture(scope="session")
def opensmtpd() -> Iterator[OpenSmtpdServer]:
    """A real OpenSMTPD accepting contoso.com and contoso.local on ``host:port``."""
    server = _started(_office(OpenSmtpdServer), "OpenSMTPD (Debian opensmtpd)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def opensmtpd_clean(opensmtpd: OpenSmtpdServer) -> Iterator[OpenSmtpdServer]:
    """The session's OpenSMTPD with an empty queue and Maildir and the usual unknown user."""
    opensmtpd.clear()
    yield opensmtpd
    opensmtpd.clear()
    if opensmtpd.unknown_users != list(UNKNOWN_USERS):
        opensmtpd.set_unknown_users(UNKNOWN_USERS)
