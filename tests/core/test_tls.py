"""The one TLS rule for POP3 and SMTP, tried against the real Dovecot's certificate.

Dovecot's certificate is issued by a throw-away CA for ``localhost`` and
127.0.0.1: unknown to the system's authorities, trusted through its CA file.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from pop3gui.core.errors import Pop3guiError, TlsSetupError
from pop3gui.core.tls import client_context
from tests.servers.dovecot import DovecotServer


async def _greeting(ctx: ssl.SSLContext, port: int, server_hostname: str) -> bytes:
    """The POP3 greeting read over a TLS connection made with *ctx*."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=server_hostname)
    try:
        return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


def test_the_default_context_checks_the_certificate_and_the_host_name() -> None:
    ctx = client_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


@pytest.mark.servers
async def test_the_default_context_refuses_a_certificate_no_system_authority_issued(dovecot: DovecotServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await _greeting(client_context(), dovecot.pop3s_port, "localhost")


@pytest.mark.servers
async def test_a_ca_file_makes_a_private_certificate_trusted(dovecot: DovecotServer) -> None:
    ctx = client_context(ca_file=str(dovecot.ca_path))
    assert (await _greeting(ctx, dovecot.pop3s_port, "localhost")).startswith(b"+OK")


@pytest.mark.servers
def test_a_ca_file_replaces_the_system_authorities(dovecot: DovecotServer) -> None:
    """The admin's CA file is the one authority for that server, not one more."""
    trusted = client_context(ca_file=str(dovecot.ca_path)).get_ca_certs()
    assert [dict(item[0] for item in cert["subject"])["commonName"] for cert in trusted] == ["pop3gui test CA"]


@pytest.mark.servers
async def test_with_a_ca_file_the_host_name_is_still_checked(dovecot: DovecotServer) -> None:
    ctx = client_context(ca_file=str(dovecot.ca_path))
    with pytest.raises(ssl.SSLCertVerificationError, match="mail.fabrikam.example"):
        await _greeting(ctx, dovecot.pop3s_port, "mail.fabrikam.example")


@pytest.mark.servers
async def test_verify_false_accepts_any_certificate_for_any_name(dovecot: DovecotServer) -> None:
    ctx = client_context(verify=False)
    assert ctx.verify_mode == ssl.CERT_NONE and ctx.check_hostname is False
    assert (await _greeting(ctx, dovecot.pop3s_port, "mail.fabrikam.example")).startswith(b"+OK")


@pytest.mark.servers
def test_verify_false_wins_over_a_ca_file(dovecot: DovecotServer) -> None:
    ctx = client_context(verify=False, ca_file=str(dovecot.ca_path))
    assert ctx.verify_mode == ssl.CERT_NONE and ctx.check_hostname is False


def test_a_missing_ca_file_fails_at_once_instead_of_trusting_anything_else(tmp_path: Path) -> None:
    """An OSError (the error hierarchy's TlsSetupError), never a context."""
    with pytest.raises(OSError):
        client_context(ca_file=str(tmp_path / "ca.pem"))
    with pytest.raises(OSError):
        client_context(verify=False, ca_file=str(tmp_path / "ca.pem"))


def test_a_ca_file_that_holds_no_certificate_fails_at_once(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    with pytest.raises(TlsSetupError) as caught:
        client_context(ca_file=str(not_pem))
    assert str(not_pem) in str(caught.value) and isinstance(caught.value.__cause__, ssl.SSLError)


def test_a_missing_ca_file_is_named_with_its_cause_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(Pop3guiError) as caught:
        client_context(ca_file=str(missing))
    assert str(missing) in str(caught.value)
    assert caught.value.cause and caught.value.fix
