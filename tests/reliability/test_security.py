"""Security: no secret leaves the keyring, no foreign address reaches RCPT TO, no password in clear.

Certificate and host-name checks are covered where the connector's TLS is
tested, not repeated here:

* tests/integration/test_connector.py::test_untrusted_certificate_is_explained
  (no ca_file for the test CA -> POP3_TLS_FAILED, nothing delivered)
* tests/integration/test_connector.py::test_turning_off_certificate_checks_is_announced_every_connection
  (verify_tls = false -> TLS_NOT_VERIFIED on every connection)
"""

from __future__ import annotations

import base64
import email
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pop3gui.core.config.model import AccountConfig, OAuthProviderConfig, SmtpConfig
from pop3gui.core.config.save import save_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.spool import Quarantine
from tests.servers.dovecot import DovecotServer
from tests.servers.pop3_fixtures import OAuthDovecot, require_imap
from tests.support.crash import cli_env, files_under, run_cli
from tests.support.killer_proxy import KillerProxy, RewritingProxy, Trigger, without_capabilities
from tests.support.office import ADMIN, Office, make_message
from tests.support.recording_smtp import RecordingSmtp

pytestmark = pytest.mark.servers

ALICE = "alice@contoso.com"
GHOST = "ghost@contoso.com"  # the office server refuses this one
INBOUND = "Inbound"  # an IMAP account's folder


def _b64(data: str) -> str:
    return base64.b64encode(data.encode("utf-8")).decode("ascii")


def secret_forms(user: str, password: str) -> set[str]:
    """The password as it could leak: raw, and as SASL would put it on the wire."""
    forms = {password}
    for blob in (password, f"\0{user}\0{password}", f"{user}\0{user}\0{password}"):  # LOGIN, PLAIN, PLAIN+authzid
        encoded = _b64(blob)
        forms |= {encoded, encoded.rstrip("=")}
    return forms


def imap_quoted(text: str) -> str:
    """*text* as an IMAP quoted string (RFC 3501): in double quotes, backslash and quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def imap_secret_forms(user: str, password: str) -> set[str]:
    """An IMAP password as it could leak: as :func:`secret_forms` (AUTHENTICATE PLAIN sends the SASL PLAIN
    string in base64), and as LOGIN sends it, a quoted string, with and without its quotes."""
    quoted = imap_quoted(password)
    return secret_forms(user, password) | {quoted, quoted[1:-1]}


def _user(dovecot: DovecotServer, password: str) -> str:
    name = f"sec-{uuid.uuid4().hex[:8]}"
    dovecot.add_user(name, password)
    return name


class Places:
    """Everything searched for secrets, by name."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    def add(self, name: str, data: bytes | str) -> None:
        self.items[name] = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data

    def hits(self, needles: set[str]) -> Iterator[tuple[str, str]]:
        for name, data in self.items.items():
            for needle in needles:
                if needle.encode("utf-8") in data:
                    yield name, needle


def test_no_secret_leaves_the_keyring(office: Office, dovecot_oauth: OAuthDovecot, tmp_path: Path,
                                      record_property: Any) -> None:
    """Check, run, refuse, divert, quarantine, set a password: no password in any file, output or transcript.

    Besides the POP3S account: IMAP accounts with STARTTLS (AUTHENTICATE PLAIN),
    in plaintext through a proxy that hides AUTH=PLAIN (so the password goes as
    LOGIN's quoted string), and one of each with a wrong password, whose failed
    logins leave transcripts too.  The IMAP passwords hold a quote and a
    backslash, so their quoted form differs from the raw one.  The IMAP accounts
    use the OAuth2 test's Dovecot (password users log in there as anywhere):
    it keeps no per-address penalty, so the refused passwords hold up no later
    login from 127.0.0.1, in this test or the next.
    """
    imap_server = require_imap(dovecot_oauth.server)
    tag = uuid.uuid4().hex[:10]
    pop3_password = f"Pop3-Canary-{tag}-p@ss w0rd!"
    smtp_user, smtp_password = "relay@contoso.com", f"Smtp-Canary-{tag}-%s&"
    other_password = f"Other-Canary-{tag}"
    imap_password = f'Imap-Canary-{tag}-"q\\u" w0rd'
    login_password = f'Login-Canary-{tag}-\\"l"\\ w0rd'
    wrong_passwords = {"imap-wrong": f'Wrong-Canary-{tag}-"w\\', "imap-wrong-login": f'Wrong-Login-Canary-{tag}-\\"'}
    pop3_user = _user(office.isp, pop3_password)
    imap_user = _user(imap_server, imap_password)
    login_user = _user(imap_server, login_password)
    places = Places()
    with RecordingSmtp(auth=(smtp_user, smtp_password), refuse={GHOST: "550 5.1.1 <ghost@contoso.com>: User unknown"}
                       ) as smtp, RewritingProxy("127.0.0.1", imap_server.imap_port,
                                                 without_capabilities(b"AUTH=PLAIN")) as proxy:
        alice = AccountConfig(name="alice", host="127.0.0.1", port=office.isp.pop3s_port, security="tls",
                              ca_file=str(office.isp.ca_path), username=pop3_user, kind="global", timeout_s=20)
        other = AccountConfig(name="other", host="127.0.0.1", port=office.isp.pop3s_port, security="tls",
                              ca_file=str(office.isp.ca_path), username="other-user", kind="user",
                              deliver_to=ALICE, enabled=False)
        imap = AccountConfig(name="imap-starttls", protocol="imap", host="127.0.0.1", port=imap_server.imap_port,
                             security="starttls", ca_file=str(imap_server.ca_path), username=imap_user,
                             kind="user", deliver_to=ALICE, timeout_s=20)
        login = replace(imap, name="imap-login", port=proxy.port, security="none", ca_file="", username=login_user)
        wrong = replace(imap, name="imap-wrong")
        wrong_login = replace(login, name="imap-wrong-login")
        config = replace(office.config, accounts=(alice, other, imap, login, wrong, wrong_login),
                         smtp=SmtpConfig(host="127.0.0.1", port=smtp.port, username=smtp_user, timeout_s=20))
        save_config(config, office.paths.config_file)
        Credentials().set_pop3_password("alice", pop3_password)
        Credentials().set_smtp_password(smtp_user, smtp_password)
        Credentials().set_pop3_password("imap-starttls", imap_password)
        Credentials().set_pop3_password("imap-login", login_password)
        for name, password in wrong_passwords.items():
            Credentials().set_pop3_password(name, password)
        office.isp.deliver(pop3_user, make_message(to=ALICE, subject="for alice"))
        office.isp.deliver(pop3_user, make_message(to=GHOST, subject="for the ghost"))
        imap_server.deliver(imap_user, make_message(to=ALICE, subject="over IMAP with STARTTLS"))
        imap_server.deliver(login_user, make_message(to=ALICE, subject="over IMAP with LOGIN"))

        def cli(*args: str, stdin: str = "") -> int:
            out = run_cli(office.home, *args, stdin=stdin)
            label = " ".join(args)
            places.add(f"stdout of `pop3gui {label}` #{len(places.items)}", out.stdout)
            places.add(f"stderr of `pop3gui {label}` #{len(places.items)}", out.stderr)
            return out.returncode

        assert cli("check") == 1  # the two wrong passwords
        assert cli("run", "--once") == 1  # those, and the ghost is refused: diverted to the admin with a notice
        assert cli("events") == 0
        assert cli("events", "--json") == 0
        assert cli("secret", "set", "other", stdin=other_password + "\n") == 0
        assert Credentials().pop3_password("other") == other_password
        # Now the undeliverable mailbox refuses too: the next refusal ends in quarantine.
        smtp.refuse[ADMIN.lower()] = "550 5.7.1 <admin@contoso.com>: Mailbox disabled"
        office.isp.deliver(pop3_user, make_message(to=GHOST, subject="quarantined"))
        assert cli("run", "--once") == 1
        events_out = run_cli(office.home, "events", "--json", "--limit", "100000")
        places.add("stdout of `pop3gui events --json --limit 100000`", events_out.stdout)
        events = [json.loads(line) for line in events_out.stdout.splitlines()]

    # The cycle really did log in everywhere, refuse, divert and quarantine.
    assert any(ok for _, ok in smtp.logins) and all(ok for _, ok in smtp.logins)
    subjects = {str(email.message_from_bytes(a.content)["Subject"]): a.rcpt_tos for a in smtp.accepted}
    assert subjects["for alice"] == (ALICE,)
    assert subjects["over IMAP with STARTTLS"] == subjects["over IMAP with LOGIN"] == (ALICE,)
    assert [a.rcpt_tos for a in smtp.accepted].count((ADMIN,)) == 1  # the ghost's, diverted
    assert imap_server.messages(imap_user) == [] and imap_server.messages(login_user) == []
    assert len(list(Quarantine(office.paths.quarantine_dir).records())) == 1
    transcripts = [e["transcript"] for e in events if e["transcript"]]
    assert transcripts and any("AUTH" in t for t in transcripts)
    # The IMAP logins took both ways, and the wrong passwords were refused with a transcript each.
    sent = bytes(proxy.client_bytes)
    assert b" LOGIN " in sent and b"AUTHENTICATE" not in sent.upper()
    for name, shown in (("imap-wrong", "AUTHENTICATE PLAIN ****"), ("imap-wrong-login", f'LOGIN "{login_user}" ****')):
        refused = [e for e in events if e["account"] == name and e["transcript"] and shown in e["transcript"]]
        assert refused, f"no failed login of {name} with its transcript: {[e for e in events if e['account'] == name]}"

    for path in files_under(office.home):
        places.add(str(path.relative_to(office.home)), path.read_bytes())
    for i, event in enumerate(events):
        if event["transcript"]:
            places.add(f"transcript of event #{i} ({event['id']})", event["transcript"])
    for i, message in enumerate(smtp.accepted):  # what the connector sent to the office server (notices)
        places.add(f"message #{i} submitted to the office server", message.content)
    needles = (secret_forms(pop3_user, pop3_password) | secret_forms(smtp_user, smtp_password)
               | secret_forms("other-user", other_password) | imap_secret_forms(imap_user, imap_password)
               | imap_secret_forms(login_user, login_password)
               | imap_secret_forms(imap_user, wrong_passwords["imap-wrong"])
               | imap_secret_forms(login_user, wrong_passwords["imap-wrong-login"]))
    # LOGIN sent the very quoted form searched for (so the search would find it, had it leaked).
    assert f"LOGIN {imap_quoted(login_user)} {imap_quoted(login_password)}\r\n".encode() in sent
    kinds = {"config.toml", "journal.sqlite3", "events.sqlite3", "pop3gui.log", ".eml", ".json"}
    searched = " ".join(places.items)
    assert all(k in searched for k in kinds), f"expected files missing: {sorted(places.items)}"

    hits = sorted(set(places.hits(needles)))
    print(f"\nsecrets: searched {len(places.items)} places ({sum(map(len, places.items.values()))} bytes) "
          f"for {len(needles)} forms of 7 passwords: {len(hits)} hit(s)")
    record_property("secret_places_searched", len(places.items))
    record_property("secret_hits", len(hits))
    assert hits == []


def token_forms(user: str, token: str) -> set[str]:
    """An OAuth2 token as it could leak: raw, and inside the XOAUTH2 and OAUTHBEARER strings in base64."""
    forms = {token}
    for blob in (f"user={user}\x01auth=Bearer {token}\x01\x01", f"auth=Bearer {token}"):
        encoded = _b64(blob)
        forms |= {encoded, encoded.rstrip("=")}
    forms.add(_b64(f"\x01auth=Bearer {token}\x01\x01")[8:60])  # any slice of a longer OAUTHBEARER string
    return forms


def test_no_oauth_token_leaves_the_keyring(office: Office, dovecot_oauth: OAuthDovecot, record_property: Any) -> None:
    """Sign in, check, run twice (a token refused and renewed), status: no token in any file or output.

    Two accounts sign in with the same provider: POP3S and IMAPS, both XOAUTH2
    (the IMAP one reads its own folder of the same mailbox).
    """
    idp = dovecot_oauth.auth
    provider = OAuthProviderConfig(name="lab", client_id=idp.client_id, kind="generic",
                                   authorize_url=idp.authorize_url, token_url=idp.token_url,
                                   device_url=idp.device_url, scopes=("mail", "offline_access"))
    account = AccountConfig(name="m365", host="127.0.0.1", port=dovecot_oauth.pop3s_port, security="tls",
                            ca_file=str(dovecot_oauth.ca_path), username=dovecot_oauth.user, kind="user",
                            deliver_to=ALICE, timeout_s=20, auth="oauth2", oauth_provider="lab")
    imap = replace(account, name="m365-imap", protocol="imap", port=dovecot_oauth.imaps_port, folders=(INBOUND,),
                   sasl="xoauth2")
    dovecot_oauth.create_folder(INBOUND)
    office.use(account, imap, oauth_providers=(provider,))
    dovecot_oauth.deliver(make_message(to=ALICE, subject="first"))
    dovecot_oauth.deliver(make_message(to=ALICE, subject="first over IMAP"), folder=INBOUND)
    places = Places()
    browser = dict(cli_env(office.home), BROWSER=f"{sys.executable} -m tests.support.browser %s",
                   PYTHONPATH=str(Path(__file__).resolve().parents[2]))

    def cli(*args: str, env: dict[str, str] | None = None) -> int:
        out = subprocess.run([sys.executable, "-m", "pop3gui", *args], capture_output=True, text=True,
                             env=env or cli_env(office.home), timeout=120, cwd=Path(__file__).resolve().parents[2])
        places.add(f"stdout of `pop3gui {' '.join(args)}` #{len(places.items)}", out.stdout)
        places.add(f"stderr of `pop3gui {' '.join(args)}` #{len(places.items)}", out.stderr)
        return out.returncode

    assert cli("auth", "login", "m365", env=browser) == 0
    assert cli("auth", "login", "m365-imap", env=browser) == 0
    assert cli("check") == 0
    assert cli("run", "--once") == 0
    idp.expire_access_tokens()
    dovecot_oauth.deliver(make_message(to=ALICE, subject="second"))
    dovecot_oauth.deliver(make_message(to=ALICE, subject="second over IMAP"), folder=INBOUND)
    assert cli("run", "--once") == 0
    assert cli("auth", "status") == 0 and cli("auth", "status", "--json") == 0
    assert cli("events", "--json", "--limit", "100000") == 0
    assert dovecot_oauth.messages() == [] and dovecot_oauth.messages(folder=INBOUND) == []
    assert sorted(str(m["Subject"]) for m in office.local.wait_for_delivered(4)) == [
        "first", "first over IMAP", "second", "second over IMAP"]

    for path in files_under(office.home):
        places.add(str(path.relative_to(office.home)), path.read_bytes())
    tokens = list(idp._tokens)  # every access and refresh token the provider ever issued
    assert len(tokens) >= 8  # two sign-ins, each an access and a refresh token, each renewed once
    needles = set().union(*(token_forms(dovecot_oauth.user, token) for token in tokens))
    hits = sorted({(place, needle[:10]) for place, needle in places.hits(needles)})
    record_property("token_places_searched", len(places.items))
    assert hits == []


# --- header injection ---------------------------------------------------------

HOMOGRAPH = "x@c\u043entoso.com"  # Cyrillic o: xn--cntoso-wqf.com, not contoso.com
TRICKY = [
    '"bob@contoso.com"@evil.example',
    '"alice@contoso.com" <x@evil.example>',
    "bob(@contoso.com)@evil.example",
    "=?utf-8?q?bob=40contoso.com?= <x@evil.example>",
    "bob%contoso.com@evil.example",
    "<@contoso.com:x@evil.example>",
    "x@evil.example.",
    "X@EVIL.EXAMPLE",
    HOMOGRAPH,
    "x@xn--cntoso-wqf.com",
    "bob@contoso.com.evil.example",
    "bob@evilcontoso.com",
    "bob@contoso.com@evil.example",
]


def test_tricky_foreign_addresses_never_reach_rcpt_to(office: Office, tmp_path: Path) -> None:
    password = "pw-" + uuid.uuid4().hex[:12]
    user = _user(office.isp, password)
    listed = ", ".join(TRICKY)
    # 1: envelope header names only foreign addresses -> To/Cc decide; the genuine one is in Cc.
    office.isp.deliver(user, make_message(
        to=listed, cc=f"{listed}, Alice <{ALICE}>", subject="to/cc",
        headers={"Delivered-To": TRICKY[0], "X-Original-To": TRICKY[6]}))
    # 2: the envelope headers carry the genuine address among the tricky ones.
    raw = make_message(to=listed, cc=listed, subject="envelope")
    extra = "".join(f"Delivered-To: {a}\r\n" for a in [*TRICKY, ALICE]).encode("utf-8")
    office.isp.deliver(user, extra + raw)
    with RecordingSmtp() as smtp:
        account = AccountConfig(name="catchall", host="127.0.0.1", port=office.isp.pop3s_port, security="tls",
                                ca_file=str(office.isp.ca_path), username=user, kind="global", timeout_s=20)
        Credentials().set_pop3_password("catchall", password)
        save_config(replace(office.config, accounts=(account,),
                            smtp=SmtpConfig(host="127.0.0.1", port=smtp.port, timeout_s=20)),
                    office.paths.config_file)
        out = run_cli(office.home, "run", "--once")
    assert out.returncode == 0, out.stdout + out.stderr
    assert [r.lower() for r in smtp.rcpts] == [ALICE, ALICE], smtp.rcpts
    assert [a.rcpt_tos for a in smtp.accepted] == [(ALICE,), (ALICE,)]
    assert office.isp.messages(user) == []
    assert "3005" in out.stdout  # the dropped addresses are reported (FOREIGN_RECIPIENTS_DROPPED)


# --- no password in clear -----------------------------------------------------


def _stls_session(office: Office, proxy: KillerProxy, password: str, user: str) -> tuple[int, str]:
    account = AccountConfig(name="stls", host="127.0.0.1", port=proxy.port, security="starttls",
                            ca_file=str(office.isp.ca_path), username=user, kind="user", deliver_to=ALICE,
                            timeout_s=20)
    Credentials().set_pop3_password("stls", password)
    office.use(account)
    out = run_cli(office.home, "run", "--once")
    return out.returncode, out.stdout + out.stderr


def _plaintext_part(stream: bytes) -> bytes:
    """What a client sent before TLS started: everything up to the STLS command, or all of it."""
    head, sep, _ = stream.partition(b"STLS\r\n")
    return head + sep


def test_starttls_sends_no_credentials_before_tls(office: Office) -> None:
    password = "Stls-Canary-" + uuid.uuid4().hex[:12]
    user = _user(office.isp, password)
    office.isp.deliver(user, make_message(to="x@isp.example"))
    with KillerProxy("127.0.0.1", office.isp.pop3_port, Trigger()) as proxy:
        code, output = _stls_session(office, proxy, password, user)
    assert code == 0, output
    sent, received = bytes(proxy.client_bytes), bytes(proxy.server_bytes)
    clear = _plaintext_part(sent)
    assert clear.endswith(b"STLS\r\n"), clear
    for command in (b"USER", b"PASS", b"AUTH", b"APOP"):
        assert command not in clear.upper()
    after = sent[len(clear):]
    assert after[:1] == b"\x16", "the bytes after STLS must be a TLS handshake"
    assert b"+OK" in received.split(b"STLS")[0] or b"+OK" in received
    for needle in secret_forms(user, password):
        assert needle.encode() not in sent
    assert len(office.isp.messages(user)) == 0


class StrippingProxy(KillerProxy):
    """A man in the middle that removes STLS from the server's CAPA answer (a downgrade attack)."""

    async def _pump(self, reader: Any, writer: Any, direction: str, conn: int) -> None:
        if direction == "client":
            return await super()._pump(reader, writer, direction, conn)
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                return
            if not data:
                return
            data = data.replace(b"STLS\r\n", b"")
            with self._lock:
                self.server_bytes.extend(data)
            writer.write(data)
            try:
                await writer.drain()
            except OSError:
                return


def test_a_stripped_stls_offer_stops_the_login(office: Office) -> None:
    password = "Strip-Canary-" + uuid.uuid4().hex[:12]
    user = _user(office.isp, password)
    office.isp.deliver(user, make_message(to="x@isp.example"))
    with StrippingProxy("127.0.0.1", office.isp.pop3_port) as proxy:
        code, output = _stls_session(office, proxy, password, user)
    assert code == 1
    assert " 2005 " in output and "does not offer STLS" in output, output  # POP3_TLS_FAILED
    assert "cause: " in output and "fix: " in output
    sent = bytes(proxy.client_bytes)
    for command in (b"USER", b"PASS", b"AUTH", b"APOP"):
        assert command not in sent.upper()
    for needle in secret_forms(user, password):
        assert needle.encode() not in sent
    assert len(office.isp.messages(user)) == 1


# --- no password in clear over IMAP ---------------------------------------------


def _imap_starttls_session(office: Office, dovecot: DovecotServer, port: int, password: str,
                           user: str) -> tuple[int, str]:
    account = AccountConfig(name="starttls-imap", protocol="imap", host="127.0.0.1", port=port, security="starttls",
                            ca_file=str(dovecot.ca_path), username=user, kind="user", deliver_to=ALICE,
                            timeout_s=20)
    Credentials().set_pop3_password("starttls-imap", password)
    office.use(account)
    out = run_cli(office.home, "run", "--once")
    return out.returncode, out.stdout + out.stderr


def _imap_plaintext_part(stream: bytes) -> bytes:
    """What an IMAP client sent before TLS started: everything up to its STARTTLS command line, or all of it."""
    starttls = re.search(rb"(?m)^[^ \r\n]+ STARTTLS\r\n", stream)
    return stream[:starttls.end()] if starttls else stream


def test_imap_starttls_sends_no_credentials_before_tls(office: Office, dovecot_imap: DovecotServer) -> None:
    password = 'Imap-Stls-Canary-"' + uuid.uuid4().hex[:12]
    user = _user(dovecot_imap, password)
    dovecot_imap.deliver(user, make_message(to="x@isp.example"))
    with KillerProxy("127.0.0.1", dovecot_imap.imap_port, Trigger()) as proxy:
        code, output = _imap_starttls_session(office, dovecot_imap, proxy.port, password, user)
    assert code == 0, output
    sent, received = bytes(proxy.client_bytes), bytes(proxy.server_bytes)
    clear = _imap_plaintext_part(sent)
    assert clear.endswith(b" STARTTLS\r\n"), clear
    for command in (b"LOGIN", b"AUTHENTICATE", user.encode()):
        assert command.upper() not in clear.upper()
    after = sent[len(clear):]
    assert after[:1] == b"\x16", "the bytes after STARTTLS must be a TLS handshake"
    tag = clear.rsplit(b"\r\n", 2)[-2].split(b" ")[0]
    assert re.search(rb"(?m)^" + re.escape(tag) + rb" OK", received), received[:2000]  # the server agreed
    for needle in imap_secret_forms(user, password):
        assert needle.encode() not in sent
    assert dovecot_imap.messages(user) == []  # it did log in (over TLS) and fetched


def test_a_stripped_starttls_offer_stops_the_imap_login(office: Office, dovecot_imap: DovecotServer) -> None:
    """A man in the middle removes STARTTLS from the capabilities (the greeting's and CAPABILITY's)."""
    password = 'Imap-Strip-Canary-"' + uuid.uuid4().hex[:12]
    user = _user(dovecot_imap, password)
    dovecot_imap.deliver(user, make_message(to="x@isp.example"))
    with RewritingProxy("127.0.0.1", dovecot_imap.imap_port, without_capabilities(b"STARTTLS")) as proxy:
        code, output = _imap_starttls_session(office, dovecot_imap, proxy.port, password, user)
    assert code == 1, output
    assert " 2005 " in output and "does not offer STARTTLS" in output, output  # POP3_TLS_FAILED, as for STLS
    assert "cause: " in output and "fix: " in output
    received = bytes(proxy.server_bytes)
    assert b"CAPABILITY" in received and b"STARTTLS" not in received.upper()  # the offer really was stripped
    sent = bytes(proxy.client_bytes)
    for command in (b"LOGIN", b"AUTHENTICATE", b"STARTTLS", user.encode()):
        assert command.upper() not in sent.upper(), sent
    for needle in imap_secret_forms(user, password):
        assert needle.encode() not in sent
    assert len(dovecot_imap.messages(user)) == 1
