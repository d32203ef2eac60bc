"""The real-server fixtures themselves work: Dovecot (POP3 and IMAP), Postfix, Secret Service."""

from __future__ import annotations

import base64
import imaplib
import json
import os
import poplib
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage

import pytest

from tests.conftest import MESSAGE_SIZE_LIMIT, Pop3User, SecretServiceSession
from tests.servers.dovecot import DovecotServer
from tests.servers.pop3_fixtures import ImapUser, OAuthDovecot, require_imap
from tests.servers.postfix import PostfixServer

pytestmark = pytest.mark.servers


def _message(subject: str, body: str = "hello\n", to: str = "bob@contoso.com") -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@isp.example"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@isp.example>"
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _login(client: poplib.POP3, user: Pop3User) -> None:
    client.user(user.name)
    client.pass_(user.password)


# -- Dovecot --------------------------------------------------------------


def test_pop3_plain_login_lists_delivered_message(dovecot: DovecotServer, pop3_user: Pop3User) -> None:
    dovecot.deliver(pop3_user.name, _message("first"))
    client = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=10)
    try:
        caps = client.capa()
        assert {"UIDL", "TOP", "STLS", "USER"} <= set(caps)
        _login(client, pop3_user)
        count, _size = client.stat()
        assert count == 1
        _resp, lines, _octets = client.retr(1)
        assert b"Subject: first" in lines
    finally:
        client.quit()


def test_pop3_implicit_tls_trusting_test_ca(dovecot: DovecotServer, pop3_user: Pop3User) -> None:
    dovecot.deliver(pop3_user.name, _message("over tls"))
    client = poplib.POP3_SSL("localhost", dovecot.pop3s_port, context=dovecot.ssl_context(), timeout=10)
    try:
        _login(client, pop3_user)
        _resp, listing, _ = client.uidl()
        assert len(listing) == 1
    finally:
        client.quit()


def test_pop3_tls_by_ip_address_and_untrusted_refused(dovecot: DovecotServer) -> None:
    ctx = ssl.create_default_context(cafile=str(dovecot.ca_path))
    with socket.create_connection(("127.0.0.1", dovecot.pop3s_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.recv(100).startswith(b"+OK")
    untrusted = ssl.create_default_context()  # system CAs only
    with socket.create_connection(("127.0.0.1", dovecot.pop3s_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            with untrusted.wrap_socket(raw, server_hostname="localhost"):
                pass


def test_pop3_stls_then_delete_empties_mailbox(dovecot: DovecotServer, pop3_user: Pop3User) -> None:
    dovecot.deliver(pop3_user.name, _message("a"))
    dovecot.deliver(pop3_user.name, _message("b"))
    assert len(dovecot.messages(pop3_user.name)) == 2
    client = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=10)
    try:
        client.stls(dovecot.ssl_context())
        _login(client, pop3_user)
        assert client.stat()[0] == 2
        client.dele(1)
    finally:
        client.quit()
    remaining = dovecot.messages(pop3_user.name)
    assert len(remaining) == 1
    assert b"Subject: b" in remaining[0]


def test_pop3_wrong_password_refused(dovecot: DovecotServer, pop3_user: Pop3User) -> None:
    client = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=10)
    try:
        client.user(pop3_user.name)
        with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
            client.pass_("wrong")
    finally:
        client.close()


def test_users_are_isolated(dovecot: DovecotServer, pop3_user: Pop3User) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    dovecot.add_user(other, "secret")
    dovecot.deliver(other, _message("for other"))
    assert dovecot.messages(pop3_user.name) == []
    assert len(dovecot.messages(other)) == 1


# -- Dovecot's IMAP ---------------------------------------------------------


def _imap_capabilities(client: imaplib.IMAP4) -> set[str]:
    typ, data = client.capability()
    assert typ == "OK"
    return set(data[-1].decode().upper().split())


def test_imaps_login_trusting_test_ca_advertises_idle_uidplus_move(
        dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    assert imap_user.imaps_port == dovecot_imap.imaps_port and imap_user.ca_path == dovecot_imap.ca_path
    with imaplib.IMAP4_SSL("localhost", imap_user.imaps_port, ssl_context=dovecot_imap.ssl_context(),
                           timeout=10) as client:
        client.login(imap_user.name, imap_user.password)
        assert {"IMAP4REV1", "IDLE", "UIDPLUS", "MOVE"} <= _imap_capabilities(client)
        typ, data = client.select("INBOX")
        assert (typ, data) == ("OK", [b"0"])
        client.logout()


def test_imap_starttls_login_sees_what_pop3_sees(dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    dovecot_imap.deliver(imap_user.name, _message("both ways"))
    with imaplib.IMAP4("127.0.0.1", imap_user.imap_port, timeout=10) as client:
        assert "STARTTLS" in client.capabilities
        client.starttls(dovecot_imap.ssl_context())
        client.login(imap_user.name, imap_user.password)
        assert {"IDLE", "UIDPLUS", "MOVE"} <= _imap_capabilities(client)
        assert client.select("INBOX") == ("OK", [b"1"])
        typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"Subject: both ways" in data[0][1]
        client.logout()


def test_imap_folders_made_on_disk_are_listed_and_hold_what_is_delivered(
        dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    assert dovecot_imap.folders(imap_user.name) == ["INBOX"]
    dovecot_imap.create_folder(imap_user.name, "Archive/2024")
    dovecot_imap.create_folder(imap_user.name, "Entwürfe")
    dovecot_imap.deliver(imap_user.name, _message("archived"), folder="Archive/2024")
    dovecot_imap.deliver(imap_user.name, _message("archived too"), folder="Archive/2024")
    assert dovecot_imap.folders(imap_user.name) == ["INBOX", "Archive/2024", "Entwürfe"]
    assert len(dovecot_imap.messages(imap_user.name, "Archive/2024")) == 2
    assert dovecot_imap.messages(imap_user.name) == []
    with imaplib.IMAP4_SSL("localhost", imap_user.imaps_port, ssl_context=dovecot_imap.ssl_context(),
                           timeout=10) as client:
        client.login(imap_user.name, imap_user.password)
        typ, listing = client.list()
        assert typ == "OK"
        lines = {line.decode() for line in listing if isinstance(line, bytes)}
        assert any(line.endswith('"/" Archive/2024') for line in lines), lines
        assert any(line.endswith('"/" Entw&APw-rfe') for line in lines), lines  # modified UTF-7 on the wire
        typ, data = client.select('"Archive/2024"')
        assert (typ, data) == ("OK", [b"2"])  # EXISTS
        # A folder the client creates is one the helpers see; MOVE lands there.
        assert client.create('"Done"')[0] == "OK"
        assert client.uid("MOVE", "1", "Done")[0] == "OK"
        client.logout()
    assert "Done" in dovecot_imap.folders(imap_user.name)
    assert len(dovecot_imap.messages(imap_user.name, "Done")) == 1
    assert len(dovecot_imap.messages(imap_user.name, "Archive/2024")) == 1
    with pytest.raises(KeyError):
        dovecot_imap.deliver(imap_user.name, _message("nowhere"), folder="Missing")


def test_imap_idle_hears_of_mail_delivered_meanwhile(dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    dovecot_imap.create_folder(imap_user.name, "Inbound")
    with imaplib.IMAP4_SSL("localhost", imap_user.imaps_port, ssl_context=dovecot_imap.ssl_context(),
                           timeout=10) as client:
        client.login(imap_user.name, imap_user.password)
        assert client.select("Inbound") == ("OK", [b"0"])
        tag = client._new_tag()  # imaplib before Python 3.14 has no idle(): spoken by hand
        client.send(tag + b" IDLE\r\n")
        assert client.readline().startswith(b"+")
        began = time.monotonic()
        dovecot_imap.deliver(imap_user.name, _message("while idling"), folder="Inbound")
        line = client.readline()
        waited = time.monotonic() - began
        assert line == b"* 1 EXISTS\r\n"
        assert waited < 3, f"IDLE told of the new message only after {waited:.1f} s"
        client.send(b"DONE\r\n")
        while not (line := client.readline()).startswith(tag):
            assert line.startswith(b"* ")
        assert line.startswith(tag + b" OK")
        client.logout()


def _authenticate_ir(client: imaplib.IMAP4, mechanism: str, response: bytes) -> None:
    """AUTHENTICATE with the SASL initial response on the command line (RFC 4959 SASL-IR).

    imaplib's authenticate() writes a continuation's answer and its CRLF in two
    writes; over TLS, Dovecot 2.3 then sometimes never reads the CRLF of a line
    as long as a Microsoft-sized token makes it (about 2 KB), and the login hangs.
    """
    typ, _ = client._simple_command("AUTHENTICATE", mechanism, base64.b64encode(response).decode("ascii"))
    assert typ == "OK"
    client.state = "AUTH"


def test_imap_xoauth2_with_the_providers_token(dovecot_oauth: OAuthDovecot) -> None:
    require_imap(dovecot_oauth.server)
    dovecot_oauth.create_folder("Reports")
    dovecot_oauth.deliver(_message("over oauth"), folder="Reports")
    token = dovecot_oauth.auth.issue_tokens()["access_token"]
    sasl = f"user={dovecot_oauth.user}\x01auth=Bearer {token}\x01\x01".encode()
    with imaplib.IMAP4("127.0.0.1", dovecot_oauth.imap_port, timeout=10) as client:
        client.starttls(ssl.create_default_context(cafile=str(dovecot_oauth.ca_path)))
        assert {"AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "SASL-IR"} <= _imap_capabilities(client)
        _authenticate_ir(client, "XOAUTH2", sasl)
        assert client.select("Reports") == ("OK", [b"1"])
        client.logout()
    assert dovecot_oauth.auth.introspections == 1
    # What the provider does not call active gets nowhere.
    with imaplib.IMAP4_SSL("localhost", dovecot_oauth.imaps_port,
                           ssl_context=dovecot_oauth.server.ssl_context(), timeout=10) as client:
        bad = f"user={dovecot_oauth.user}\x01auth=Bearer not-a-token\x01\x01".encode()
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            # The refusal comes as a challenge (the JSON error) that an empty line answers.
            client.authenticate("XOAUTH2", lambda challenge: b"" if challenge else bad)


def test_imap_oauthbearer_over_implicit_tls(dovecot_oauth: OAuthDovecot) -> None:
    require_imap(dovecot_oauth.server)
    token = dovecot_oauth.auth.issue_tokens()["access_token"]
    gs2 = f"n,a={dovecot_oauth.user},\x01auth=Bearer {token}\x01\x01".encode()
    with imaplib.IMAP4_SSL("localhost", dovecot_oauth.imaps_port,
                           ssl_context=dovecot_oauth.server.ssl_context(), timeout=10) as client:
        _authenticate_ir(client, "OAUTHBEARER", gs2)
        assert client.select("INBOX") == ("OK", [b"0"])
        client.logout()


# -- Postfix --------------------------------------------------------------


def test_postfix_delivers_with_delivered_to(postfix_clean: PostfixServer) -> None:
    pf = postfix_clean
    with smtplib.SMTP(pf.host, pf.port, timeout=10) as smtp:
        refused = smtp.sendmail(
            "alice@isp.example",
            ["bob@contoso.com", "carol@contoso.local"],
            _message("to two"),
        )
    assert refused == {}
    delivered = pf.wait_for_delivered(2, timeout=15)
    assert sorted(m["Delivered-To"] for m in delivered) == ["bob@contoso.com", "carol@contoso.local"]
    assert all(m["Subject"] == "to two" for m in delivered)
    raw = pf.delivered_raw()
    assert sorted(r for r, _ in raw) == ["bob@contoso.com", "carol@contoso.local"]
    pf.clear()
    assert pf.delivered() == []


def test_postfix_refuses_relay(postfix_clean: PostfixServer) -> None:
    with smtplib.SMTP(postfix_clean.host, postfix_clean.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("alice@isp.example")
        code, text = smtp.rcpt("someone@example.org")
    assert code == 554
    assert text.startswith(b"5.7.1") and b"Relay access denied" in text


def test_postfix_unknown_user(postfix_clean: PostfixServer) -> None:
    with smtplib.SMTP(postfix_clean.host, postfix_clean.port, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("alice@isp.example")
        code, text = smtp.rcpt("ghost@contoso.com")
        assert code == 550 and text.startswith(b"5.1.1")
        code, _ = smtp.rcpt("bob@contoso.com")
        assert code == 250


def test_postfix_size_limit(postfix_clean: PostfixServer) -> None:
    big = _message("big", "x" * 70 + "\n") + (b"y" * 998 + b"\r\n") * (MESSAGE_SIZE_LIMIT // 1000 + 10)
    with smtplib.SMTP(postfix_clean.host, postfix_clean.port, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            smtp.sendmail("alice@isp.example", ["bob@contoso.com"], big)
        assert info.value.smtp_code == 552
        assert info.value.smtp_error.startswith(b"5.3.4")
        # Without the SIZE hint the limit is enforced after DATA.
        smtp.rset()
        smtp.mail("alice@isp.example")
        assert smtp.rcpt("bob@contoso.com")[0] == 250
        code, text = smtp.data(big)
        assert code == 552 and text.startswith(b"5.3.4")


# -- Secret Service -------------------------------------------------------


def test_secret_service_keyring(secret_service: SecretServiceSession) -> None:
    import keyring

    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == secret_service.bus_address
    assert "PYTHON_KEYRING_BACKEND" not in os.environ
    assert type(keyring.get_keyring()).__module__ == "keyring.backends.SecretService"
    user = f"acct-{uuid.uuid4().hex[:8]}"
    keyring.set_password("pop3gui-test", user, "s3cret")
    try:
        assert keyring.get_password("pop3gui-test", user) == "s3cret"
    finally:
        keyring.delete_password("pop3gui-test", user)
    assert keyring.get_password("pop3gui-test", user) is None


def test_secret_service_in_child_process(secret_service: SecretServiceSession) -> None:
    code = (
        "import json, keyring\n"
        "k = keyring.get_keyring()\n"
        "keyring.set_password('pop3gui-child', 'u', 'pw')\n"
        "got = keyring.get_password('pop3gui-child', 'u')\n"
        "keyring.delete_password('pop3gui-child', 'u')\n"
        "print(json.dumps([type(k).__module__ + '.' + type(k).__name__, got]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    backend, got = json.loads(proc.stdout)
    assert backend == "keyring.backends.SecretService.Keyring"
    assert got == "pw"
