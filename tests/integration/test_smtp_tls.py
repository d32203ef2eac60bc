"""Submission to a real Postfix over STARTTLS and implicit TLS (port 465 style), certificates checked.

The Postfix has a certificate from a private CA (tests/servers/certs.py): it
offers STARTTLS on its submission port and speaks TLS from the first byte on a
second smtpd (``smtpd_tls_wrappermode``). Mail comes from the scripted POP3
server through the real Connector.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pop3gui.core.config.model import Config
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import CycleResult
from pop3gui.core.errors import SmtpConnectionError
from pop3gui.core.events.model import Event, EventBus, EventId, Outcome
from pop3gui.core.failures import Failure
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.paths import Paths
from pop3gui.core.tls import client_context
from tests.servers import certs as test_certs
from tests.servers.postfix import PostfixServer
from tests.support.office import ACCEPTED_DOMAINS, make_message
from tests.support.requirements import in_ci, require
from tests.support.rig import ALICE, POP3_PASSWORD, StaticPasswords, make_rig, message
from tests.support.scripted_pop3 import ScriptedPop3Server

pytestmark = pytest.mark.servers

SENDER = "sender@fabrikam.example"


def _openssl() -> None:
    if shutil.which("openssl") is None:
        problem = "openssl is not installed (apt-get install -y openssl)"
        if in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> test_certs.TestCertificates:
    _openssl()
    return test_certs.make_certificates(tmp_path_factory.mktemp("postfix-tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that did not sign the server's certificate."""
    _openssl()
    return test_certs.make_certificates(tmp_path_factory.mktemp("other-ca")).ca_path


@pytest.fixture(scope="module")
def tls_postfix(certs: test_certs.TestCertificates) -> Iterator[PostfixServer]:
    require("Postfix", ["postfix", "postconf", "postsuper", "script"], "postfix")
    server = PostfixServer(ACCEPTED_DOMAINS, certificates=certs).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def local(tls_postfix: PostfixServer) -> Iterator[PostfixServer]:
    tls_postfix.clear()
    yield tls_postfix
    tls_postfix.clear()


def _port(server: PostfixServer, security: str) -> int:
    return server.tls_port if security == "tls" else server.port


async def _cycle(config: Config, home: Path, events: list[Event]) -> CycleResult:
    bus = EventBus()
    bus.subscribe(events.append)
    connector = Connector(config, _paths(home), bus, credentials=StaticPasswords())  # type: ignore[arg-type]
    try:
        return await connector.run_cycle()
    finally:
        connector.close()


def _paths(home: Path) -> Paths:
    return Paths(home / "config.toml", home / "state", home / "logs")


async def _deliver_one(tmp_path: Path, local: PostfixServer, **smtp: object) -> tuple[CycleResult, list[Event],
                                                                                     list[bytes]]:
    async with ScriptedPop3Server([message("over tls", to=ALICE)], password=POP3_PASSWORD) as pop:
        rig = make_rig(tmp_path, pop, int(smtp.pop("port")))  # type: ignore[call-overload]
        config = rig.config
        config = replace(config, smtp=replace(config.smtp, **smtp))  # type: ignore[arg-type]
        events: list[Event] = []
        result = await _cycle(config, rig.home, events)
        left = list(pop.mailbox)
    return result, events, left


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_delivery_with_the_certificate_checked_against_ca_file(
        tmp_path: Path, local: PostfixServer, certs: test_certs.TestCertificates, security: str) -> None:
    result, events, left = await _deliver_one(tmp_path, local, port=_port(local, security), security=security,
                                              verify_tls=True, ca_file=str(certs.ca_path))

    assert result.exit_code == 0 and left == []
    (copy,) = local.wait_for_delivered(1)
    assert copy["Subject"] == "over tls"
    assert "with ESMTPS" in str(copy["Received"])  # Postfix's own trace: the session was encrypted
    assert not [e for e in events if e.id == EventId.TLS_NOT_VERIFIED]


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_a_certificate_from_another_ca_stops_delivery_with_the_tls_cause_and_fix(
        tmp_path: Path, local: PostfixServer, other_ca: Path, security: str) -> None:
    result, events, left = await _deliver_one(tmp_path, local, port=_port(local, security), security=security,
                                              verify_tls=True, ca_file=str(other_ca))

    assert result.exit_code != 0 and len(left) == 1  # the message stays on the POP3 server
    assert local.delivered() == [] and local.queued() == 0
    (event,) = [e for e in events if e.id == EventId.SMTP_CONNECTION_FAILED]
    assert "certificate" in event.text and "127.0.0.1" in event.text
    assert "certificate" in event.cause and "not running" not in event.cause
    assert "ca_file" in event.fix and "verify_tls" in event.fix
    assert event.outcome is Outcome.DEFERRED
    account = result.accounts[0]
    assert account.failed and "certificate" in account.cause


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_an_unchecked_certificate_delivers_and_warns(
        tmp_path: Path, local: PostfixServer, security: str) -> None:
    result, events, left = await _deliver_one(tmp_path, local, port=_port(local, security), security=security,
                                              verify_tls=False, ca_file="")

    assert result.exit_code == 0 and left == []
    assert "with ESMTPS" in str(local.wait_for_delivered(1)[0]["Received"])
    (warning,) = [e for e in events if e.id == EventId.TLS_NOT_VERIFIED]
    assert warning.diagnosis is Failure.TLS_NOT_VERIFIED and "verify_tls = false" in warning.text
    assert "ca_file" in warning.fix


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_the_submitter_names_the_certificate_problem(
        local: PostfixServer, other_ca: Path, security: str) -> None:
    with pytest.raises(SmtpConnectionError) as caught:
        async with SmtpSubmitter(local.host, _port(local, security), security=security, timeout=20,
                                 ssl_context=client_context(ca_file=str(other_ca))) as smtp:
            await smtp.submit(SENDER, [ALICE], make_message(to=ALICE))
    error = caught.value
    assert "certificate" in str(error) and "certificate verify failed" in str(error)
    assert "ca_file" in error.fix and not error.maybe_delivered
    assert ("<C>: STARTTLS" in error.transcript) is (security == "starttls")


async def test_implicit_tls_on_the_starttls_port_says_to_match_security_to_the_port(
        local: PostfixServer, certs: test_certs.TestCertificates) -> None:
    with pytest.raises(SmtpConnectionError) as caught:
        async with SmtpSubmitter(local.host, local.port, security="tls", timeout=20,
                                 ssl_context=client_context(ca_file=str(certs.ca_path))):
            pass
    assert "TLS" in str(caught.value) and "465" in caught.value.cause and "smtp.security" in caught.value.fix
