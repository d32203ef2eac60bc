"""Opening the connection: implicit TLS, STLS, certificate checks, and the password guard."""

from __future__ import annotations

import io
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pop3gui.core.errors import (
    MailboxConnectionError,
    MailboxInsecureError,
    MailboxTlsError,
)
from pop3gui.core import connect
from pop3gui.core.connect import connect_error, tls_context
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.pop3.transport import require_secure
from tests.core.pop3.common import MSG1, client, wired
from tests.support.scripted_pop3 import ScriptedPop3Server

# ------------------------------------------------------------------ certs


class Certs:
    """Throwaway CA and server certificates made with the openssl command line."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = root / "ca.pem"
        self._ca_key = root / "ca.key"
        self._run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(self._ca_key), "-out", str(self.ca), "-days", "3",
            "-subj", "/CN=pop3gui test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self.good = self._leaf("good", "DNS:localhost,IP:127.0.0.1", days="3")
        self.wrong_host = self._leaf("wrong", "DNS:wrong.example", days="3")
        self.expired = self._leaf("expired", "DNS:localhost,IP:127.0.0.1", days="-1")
        key, cert = root / "self.key", root / "self.pem"
        self._run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "3",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        )  # fmt: skip
        self.self_signed = (cert, key)

    def _run(self, *args: str) -> None:
        subprocess.run(
            ["openssl", *args], check=True, capture_output=True, cwd=self.root
        )

    def _leaf(self, name: str, san: str, *, days: str) -> tuple[Path, Path]:
        key, csr, cert, ext = (
            self.root / f"{name}.{s}" for s in ("key", "csr", "pem", "ext")
        )
        ext.write_text(
            f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        )
        self._run(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}",
        )  # fmt: skip
        self._run(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca), "-CAkey", str(self._ca_key),
            "-CAcreateserial", "-days", days, "-extfile", str(ext), "-out", str(cert),
        )  # fmt: skip
        return cert, key

    def server(self, pair: tuple[Path, Path]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*pair)
        return ctx

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"))


# ------------------------------------------------------------ pieces


def test_a_given_tls_context_is_used_as_it_is() -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert tls_context(ctx, verify=False) is ctx


def test_the_fallback_tls_context_is_the_shared_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, object]] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    def shared(**kwargs: object) -> ssl.SSLContext:
        made.append(kwargs)
        return ctx

    monkeypatch.setattr(connect, "client_context", shared)
    assert tls_context(None, verify=False) is ctx
    assert made == [{"verify": False}]


@pytest.mark.parametrize("verify", [True, False])
def test_the_fallback_tls_context_checks_certificates_unless_told_not_to(verify: bool) -> None:
    ctx = tls_context(None, verify=verify)
    assert ctx.check_hostname is verify
    assert ctx.verify_mode == (ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)


async def test_a_tls_failure_that_is_not_about_the_certificate_points_at_the_port() -> None:
    async with ScriptedPop3Server([MSG1]) as srv:  # speaks plain POP3 on its TLS port
        pop = client(srv, security="tls", verify_tls=False)
        with pytest.raises(MailboxTlsError) as info:
            await pop.connect()
    err = info.value
    assert f"TLS with 127.0.0.1:{srv.port} failed" in str(err)
    assert "995" in err.fix and "port" in err.cause and not pop.encrypted


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "Nothing accepts connections"),
        (socket.gaierror(-2, "Name or service not known"), "'pop.example' could not be resolved"),
        (OSError(101, "Network is unreachable"), "The network reported: Network is unreachable"),
    ],
)
def test_connect_errors_say_what_went_wrong(exc: OSError, cause: str) -> None:
    err = connect_error(exc, "pop.example", 995)
    assert "pop.example:995" in str(err) and str(exc.strerror) in str(err)
    assert cause in err.cause and err.fix


async def test_the_password_guard_refuses_plaintext_unless_the_account_allows_it() -> None:
    async with wired() as (stream, _server_in, _server_out):
        for security in ("tls", "starttls"):
            with pytest.raises(MailboxInsecureError, match="pop.test:110"):
                require_secure(stream, security)
        require_secure(stream, "none")
        await stream.close()
        with pytest.raises(MailboxConnectionError, match="Not connected"):
            require_secure(stream, "none")


# ---------------------------------------------------------- against a server


async def test_connection_refused_names_host_and_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pop = Pop3Client("127.0.0.1", port, security="none", timeout=2)
    with pytest.raises(MailboxConnectionError) as info:
        await pop.connect()
    assert (
        f"127.0.0.1:{port}" in str(info.value) and info.value.cause and info.value.fix
    )


async def test_security_none_allows_plaintext_password() -> None:
    async with ScriptedPop3Server([MSG1], sasl=[]) as srv:
        async with client(srv, security="none") as pop:
            assert not pop.encrypted
            await pop.login("user", "pass")
        assert "PASS pass" in srv.commands


async def test_starttls_without_stls_refuses_before_password() -> None:
    async with ScriptedPop3Server([MSG1]) as srv:
        pop = client(srv, security="starttls")
        with pytest.raises(MailboxTlsError, match="does not offer STLS"):
            await pop.connect()
        with pytest.raises(MailboxConnectionError):
            await pop.login("user", "pass")
        assert srv.commands == ["CAPA"]


async def test_password_guard_checks_the_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Even if STLS were skipped by a bug, login must not send the password."""

    async def no_tls(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr("pop3gui.core.pop3.client.starttls", no_tls)
    async with ScriptedPop3Server([MSG1]) as srv:
        async with client(srv, security="starttls") as pop:
            with pytest.raises(MailboxInsecureError):
                await pop.login("user", "pass")
            with pytest.raises(MailboxInsecureError):
                await pop.apop("user", "pass")
        assert not any(
            c.startswith(("USER", "PASS", "AUTH", "APOP")) for c in srv.commands
        )


async def test_stls_refused_is_tls_error(certs: Certs) -> None:
    async with ScriptedPop3Server(
        [MSG1], stls_context=certs.server(certs.good), replies={"STLS": "-ERR not now"}
    ) as srv:
        pop = client(srv, security="starttls", ssl_context=certs.client())
        with pytest.raises(MailboxTlsError, match="refused STLS"):
            await pop.connect()
        assert not pop.encrypted


async def test_stls_upgrades_and_recaps(certs: Certs) -> None:
    async with ScriptedPop3Server([MSG1], stls_context=certs.server(certs.good)) as srv:
        async with client(srv, security="starttls", ssl_context=certs.client()) as pop:
            assert pop.encrypted
            assert "STLS" not in pop.capabilities
            await pop.login("user", "pass")
            out = io.BytesIO()
            await pop.retr_to(1, out)
            assert out.getvalue() == MSG1
        assert srv.commands[:3] == ["CAPA", "STLS", "CAPA"]


async def test_stls_response_injection_refused(certs: Certs) -> None:
    async with ScriptedPop3Server(
        [MSG1], stls_context=certs.server(certs.good), stls_inject=b"+OK injected\r\n"
    ) as srv:
        pop = client(srv, security="starttls", ssl_context=certs.client())
        with pytest.raises(MailboxTlsError):
            await pop.connect()
        assert not any(c.startswith(("USER", "PASS", "AUTH")) for c in srv.commands)


async def test_implicit_tls(certs: Certs) -> None:
    async with ScriptedPop3Server([MSG1], tls_context=certs.server(certs.good)) as srv:
        async with client(srv, security="tls", ssl_context=certs.client()) as pop:
            assert pop.encrypted
            await pop.login("user", "pass")
            assert await pop.stat() == (1, len(MSG1))


async def test_stls_default_context_rejects_untrusted_ca(certs: Certs) -> None:
    async with ScriptedPop3Server([MSG1], stls_context=certs.server(certs.good)) as srv:
        pop = client(srv, security="starttls")  # system CAs only: ours is unknown
        with pytest.raises(MailboxTlsError, match="did not verify"):
            await pop.connect()
        assert "STLS" in srv.commands and len(srv.commands) == 2


def _tls_cases() -> list[
    tuple[str, str, Callable[[Certs], tuple[Path, Path]], bool, str]
]:
    return [
        ("localhost", "wrong host", lambda c: c.wrong_host, True, "Hostname mismatch"),
        ("127.0.0.1", "wrong ip", lambda c: c.wrong_host, True, "IP address mismatch"),
        ("127.0.0.1", "expired", lambda c: c.expired, True, "certificate has expired"),
        (
            "127.0.0.1",
            "untrusted",
            lambda c: c.self_signed,
            False,
            "self-signed certificate",
        ),
    ]


@pytest.mark.parametrize(
    ("host", "label", "pick", "own_ca", "reason"),
    _tls_cases(),
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_bad_certificates_are_tls_errors_with_reason(
    certs: Certs,
    host: str,
    label: str,
    pick: Callable[[Certs], tuple[Path, Path]],
    own_ca: bool,
    reason: str,
) -> None:
    async with ScriptedPop3Server([MSG1], tls_context=certs.server(pick(certs))) as srv:
        pop = Pop3Client(
            host, srv.port, security="tls", timeout=5,
            ssl_context=certs.client() if own_ca else None,
        )  # fmt: skip
        with pytest.raises(MailboxTlsError) as info:
            await pop.connect()
        err = info.value
        assert reason in str(err) and host in str(err)
        assert (
            reason in err.cause
            or "hostname" in err.cause.lower()
            or "host" in err.cause
        )
        assert "verify_tls = false" in err.fix
        assert not err.temporary
        assert srv.commands == []


async def test_verify_tls_false_accepts_self_signed(certs: Certs) -> None:
    async with ScriptedPop3Server(
        [MSG1], tls_context=certs.server(certs.self_signed)
    ) as srv:
        async with client(srv, security="tls", verify_tls=False) as pop:
            assert pop.encrypted
            await pop.login("user", "pass")
