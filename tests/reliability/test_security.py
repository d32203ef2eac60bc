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
import json
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
from tests.servers.pop3_fixtures import OAuthDovecot
from tests.support.crash import cli_env, files_under, run_cli
from tests.support.killer_proxy import KillerProxy, Trigger
from tests.support.office import ADMIN, Office, make_message
from tests.support.recording_smtp import RecordingSmtp

pytestmark = pytest.mark.servers

ALICE = "alice@contoso.com"
GHOST = "ghost@contoso.com"  # the office server refuses this one


def _b64(data: str) -> str:
    return base64.b64encode(data.encode("utf-8")).decode("ascii")


def secret_forms(user: str, password: str) -> set[str]:
    """The password as it could leak: raw, and as SASL would put it on the wire."""
    forms = {password}
    for blob in (password, f"\0{user}\0{password}", f"{user}\0{user}\0{password}"):  # LOGIN, PLAIN, PLAIN+authzid
        encoded = _b64(blob)
        forms |= {encoded, encoded.rstrip("=")}
    return forms


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


def test_no_secret_leaves_the_keyring(office: Office, tmp_path: Path, record_property: Any) -> None:
    tag = uuid.uuid4().hex[:10]
    pop3_password = f"Pop3-Canary-{tag}-p@ss w0rd!"
    smtp_user, smtp_password = "relay@contoso.com", f"Smtp-Canary-{tag}-%s&"
    other_password = f"Other-Canary-{tag}"
    pop3_user = _user(office.isp, pop3_password)
    places = Places()
    with RecordingSmtp(auth=(smtp_user, smtp_password), refuse={GHOST: "550 5.1.1 <ghost@contoso.com>: User unknown"}
                       ) as smtp:
        alice = AccountConfig(name="alice", host="127.0.0.1", port=office.isp.pop3s_port, security="tls",
                              ca_file=str(office.isp.ca_path), username=pop3_user, kind="global", timeout_s=20)
        other = AccountConfig(name="other", host="127.0.0.1", port=office.isp.pop3s_port, security="tls",
                              ca_file=str(office.isp.ca_path), username="other-user", kind="user",
                              deliver_to=ALICE, enabled=False)
        config = replace(office.config, accounts=(alice, other),
                         smtp=SmtpConfig(host="127.0.0.1", port=smtp.port, username=smtp_user, timeout_s=20))
        save_config(config, office.paths.config_file)
        Credentials().set_pop3_password("alice", pop3_password)
        Credentials().set_smtp_password(smtp_user, smtp_password)
        office.isp.deliver(pop3_user, make_message(to=ALICE, subject="for alice"))
        office.isp.deliver(pop3_user, make_message(to=GHOST, subject="for the ghost"))

        def cli(*args: str, stdin: str = "") -> int:
            out = run_cli(office.home, *args, stdin=stdin)
            label = " ".join(args)
            places.add(f"stdout of `pop3gui {label}` #{len(places.items)}", out.stdout)
            places.add(f"stderr of `pop3gui {label}` #{len(places.items)}", out.stderr)
            return out.returncode

        assert cli("check") == 0
        assert cli("run", "--once") == 1  # the ghost is refused: diverted to the admin with a notice
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
    assert [a.rcpt_tos for a in smtp.accepted][:2] == [(ALICE,), (ADMIN,)]
    assert len(list(Quarantine(office.paths.quarantine_dir).records())) == 1
    transcripts = [e["transcript"] for e in events if e["transcript"]]
    assert transcripts and any("AUTH" in t for t in transcripts)

    for path in files_under(office.home):
        places.add(str(path.relative_to(office.home)), path.read_bytes())
    for i, event in enumerate(events):
        if event["transcript"]:
            places.add(f"transcript of event #{i} ({event['id']})", event["transcript"])
    for i, message in enumerate(smtp.accepted):  # what the connector sent to the office server (notices)
        places.add(f"message #{i} submitted to the office server", message.content)
    needles = (secret_forms(pop3_user, pop3_password) | secret_forms(smtp_user, smtp_password)
               | secret_forms("other-user", other_password))
    kinds = {"config.toml", "journal.sqlite3", "events.sqlite3", "pop3gui.log", ".eml", ".json"}
    searched = " ".join(places.items)
    assert all(k in searched for k in kinds), f"expected files missing: {sorted(places.items)}"

    hits = sorted(set(places.hits(needles)))
    print(f"\nsecrets: searched {len(places.items)} places ({sum(map(len, places.items.values()))} bytes) "
          f"for {len(needles)} forms of 3 passwords: {len(hits)} hit(s)")
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
    """Sign in, check, run twice (a token refused and renewed), status: no token in any file or output."""
    idp = dovecot_oauth.auth
    provider = OAuthProviderConfig(name="lab", client_id=idp.client_id, kind="generic",
                                   authorize_url=idp.authorize_url, token_url=idp.token_url,
                                   device_url=idp.device_url, scopes=("mail", "offline_access"))
    account = AccountConfig(name="m365", host="127.0.0.1", port=dovecot_oauth.pop3s_port, security="tls",
                            ca_file=str(dovecot_oauth.ca_path), username=dovecot_oauth.user, kind="user",
                            deliver_to=ALICE, timeout_s=20, auth="oauth2", oauth_provider="lab")
    office.use(account, oauth_providers=(provider,))
    dovecot_oauth.deliver(make_message(to=ALICE, subject="first"))
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
    assert cli("check") == 0
    assert cli("run", "--once") == 0
    idp.expire_access_tokens()
    dovecot_oauth.deliver(make_message(to=ALICE, subject="second"))
    assert cli("run", "--once") == 0
    assert cli("auth", "status") == 0 and cli("auth", "status", "--json") == 0
    assert cli("events", "--json", "--limit", "100000") == 0
    assert dovecot_oauth.messages() == [] and len(office.local.wait_for_delivered(2)) == 2

    for path in files_under(office.home):
        places.add(str(path.relative_to(office.home)), path.read_bytes())
    tokens = list(idp._tokens)  # every access and refresh token the provider ever issued
    assert len(tokens) >= 4
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
    assert "2010" in output or "STLS" in output  # POP3_INSECURE_REFUSED, with cause and fix
    sent = bytes(proxy.client_bytes)
    for command in (b"USER", b"PASS", b"AUTH", b"APOP"):
        assert command not in sent.upper()
    for needle in secret_forms(user, password):
        assert needle.encode() not in sent
    assert len(office.isp.messages(user)) == 1
