"""From the configuration to connected clients: every setting reaches the session it is for.

The POP3 side connects to the real Dovecot (TLS, STARTTLS and plain); the SMTP
side to aiosmtpd with a private certificate, since the office's Postfix speaks
neither TLS nor AUTH.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pop3gui.core.config.model import AccountConfig, SmtpConfig
from pop3gui.core.engine.connections import LocalServer, open_local_server, pop3_client
from pop3gui.core.errors import CredentialError, MailboxTlsError, SmtpAuthError, SmtpConnectionError, TlsSetupError
from pop3gui.core.state.credentials import Credentials
from tests.core.smtp.test_submit import ScriptedSmtp, certs, server_context  # noqa: F401 - certs: a fixture
from tests.servers.certs import TestCertificates as Certificates
from tests.servers.dovecot import DovecotServer
from tests.support.smtp_sink import SmtpSink

# -- POP3 -------------------------------------------------------------------------------------


def _account(**kw: Any) -> AccountConfig:
    values: dict[str, Any] = dict(name="alice", host="127.0.0.1", username="alice", deliver_to="alice@contoso.com")
    values.update(kw)
    return AccountConfig(**values)


def test_the_account_s_server_and_timeout_reach_the_pop3_client() -> None:
    client = pop3_client(_account(host="pop.isp.example", port=1110, security="starttls", timeout_s=7.5))
    assert (client.host, client.port, client.security, client.timeout) == ("pop.isp.example", 1110, "starttls", 7.5)


@pytest.mark.servers
@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_the_account_s_ca_file_lets_the_client_verify_a_private_certificate(
        dovecot: DovecotServer, security: str) -> None:
    port = dovecot.pop3s_port if security == "tls" else dovecot.pop3_port
    client = pop3_client(_account(port=port, security=security, ca_file=str(dovecot.ca_path)))
    async with client:
        assert client.encrypted


@pytest.mark.servers
async def test_without_a_ca_file_a_private_certificate_is_refused(dovecot: DovecotServer) -> None:
    client = pop3_client(_account(port=dovecot.pop3s_port, security="tls"))
    with pytest.raises(MailboxTlsError):
        async with client:
            pass


@pytest.mark.servers
async def test_verify_tls_false_reaches_the_client(dovecot: DovecotServer) -> None:
    client = pop3_client(_account(port=dovecot.pop3s_port, security="tls", verify_tls=False))
    async with client:
        assert client.encrypted


@pytest.mark.servers
async def test_security_none_connects_in_the_clear_and_ignores_the_ca_file(
        dovecot: DovecotServer, tmp_path: Path) -> None:
    client = pop3_client(_account(port=dovecot.pop3_port, security="none", ca_file=str(tmp_path / "absent.pem")))
    async with client:
        assert not client.encrypted


# -- SMTP -------------------------------------------------------------------------------------


def test_the_smtp_settings_reach_the_session() -> None:
    config = SmtpConfig(host="mail.contoso.local", port=587, security="starttls", username="connector", timeout_s=9)
    smtp = LocalServer(config, "pw", None).session()
    assert (smtp.host, smtp.port, smtp.security, smtp.username, smtp.timeout) == (
        "mail.contoso.local", 587, "starttls", "connector", 9)


@pytest.mark.servers
async def test_the_stored_password_is_the_one_the_session_logs_in_with(secret_service: object) -> None:
    user = f"connector-{uuid.uuid4().hex[:8]}"
    Credentials().set_smtp_password(user, "right-password")
    async with SmtpSink(login=(user, "right-password")) as sink:
        config = SmtpConfig(host="127.0.0.1", port=sink.port, username=user, timeout_s=20)
        local = await open_local_server(config, Credentials())
        async with local.session():
            pass
        Credentials().set_smtp_password(user, "wrong-password")
        with pytest.raises(SmtpAuthError):
            async with (await open_local_server(config, Credentials())).session():
                pass
    assert sink.connections == 2


@pytest.mark.servers
async def test_a_login_without_a_stored_password_fails_before_connecting(secret_service: object) -> None:
    async with SmtpSink() as sink:
        config = SmtpConfig(host="127.0.0.1", port=sink.port, username=f"nobody-{uuid.uuid4().hex[:8]}")
        with pytest.raises(CredentialError):
            await open_local_server(config, Credentials())
    assert sink.connections == 0


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_the_smtp_ca_file_lets_the_session_verify_a_private_certificate(
        certs: Certificates, security: str) -> None:
    ctx = server_context(certs)
    server = ScriptedSmtp(starttls=ctx) if security == "starttls" else ScriptedSmtp(implicit=ctx)
    async with server:
        base = SmtpConfig(host="127.0.0.1", port=server.port, security=security, timeout_s=20)
        for config in (replace(base, ca_file=str(certs.ca_path)), replace(base, verify_tls=False)):
            async with (await open_local_server(config, Credentials())).session():
                pass
        with pytest.raises(SmtpConnectionError, match="certificate verify failed"):
            async with (await open_local_server(base, Credentials())).session():
                pass


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_a_missing_smtp_ca_file_is_found_before_any_session(tmp_path: Path, security: str) -> None:
    config = SmtpConfig(host="127.0.0.1", port=1, security=security, ca_file=str(tmp_path / "absent.pem"))
    with pytest.raises(TlsSetupError, match="absent.pem"):
        await open_local_server(config, Credentials())


async def test_smtp_security_none_ignores_the_ca_file(tmp_path: Path) -> None:
    async with SmtpSink() as sink:
        config = SmtpConfig(host="127.0.0.1", port=sink.port, security="none", ca_file=str(tmp_path / "absent.pem"))
        local = await open_local_server(config, Credentials())
        assert local.tls is None
        async with local.session():
            assert sink.connections == 1
