"""The connector end to end against more real servers than Dovecot and Postfix.

The ISP's POP3 server is Courier (announces PIPELINING, loses what is sent
with a login) or GNU Mailutils pop3d (mbox, APOP greeting, X-UIDL, one
session per mailbox), with Postfix as the local server; the local server is
Exim (``550 relay not permitted``, no enhanced code) or OpenSMTPD (``550
Invalid recipient`` for an unknown user and a foreign domain alike), with
Dovecot as the ISP. Every server runs with its packaged defaults; the fixtures
are in tests/servers/.
"""

from __future__ import annotations

import email
import email.policy
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pop3gui.core.config.model import Config, DeliveryConfig, RecipientPolicy, SmtpConfig
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.failures import Failure
from pop3gui.core.events.model import EventId
from pop3gui.core.engine.preflight import probe_targets
from pop3gui.core.state.spool import Quarantine
from tests.support.office import ADMIN, IspServer, LocalServer, Office, make_message

pytestmark = pytest.mark.servers

# (ISP fixture, local server fixture): each extra server beside a well-known peer.
PAIRS = [("courier", "postfix_clean"), ("mailutils", "postfix_clean"),
         ("dovecot", "exim_clean"), ("dovecot", "opensmtpd_clean")]
LOCAL_SERVERS = [("dovecot", "exim_clean"), ("dovecot", "opensmtpd_clean")]
# What each local server answers, in its own default words.
RELAY_REFUSAL = {"exim_clean": "550 relay not permitted", "opensmtpd_clean": "550 Invalid recipient: <"}
UNKNOWN_USER = {"exim_clean": "550 Unrouteable address", "opensmtpd_clean": "550 Invalid recipient: <"}


@dataclass(frozen=True)
class Mailbox:
    name: str
    password: str


@dataclass
class Site:
    """One office wired to one pair of servers."""

    office: Office
    isp_name: str
    local_name: str

    def mailbox(self) -> Mailbox:
        name = f"user-{uuid.uuid4().hex[:10]}"
        password = f"pw-{uuid.uuid4().hex[:12]}"
        self.office.isp.add_user(name, password)  # type: ignore[attr-defined]
        return Mailbox(name, password)

    def recipients(self) -> Counter[str]:
        return Counter(str(m["Delivered-To"]).lower() for m in self.office.local.delivered())


def _site(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    isp_name, local_name = request.param
    request.getfixturevalue("secret_service")
    isp: IspServer = request.getfixturevalue(isp_name)
    local: LocalServer = request.getfixturevalue(local_name)
    home = tmp_path / "home"
    monkeypatch.setenv("POP3GUI_HOME", str(home))
    config = Config(
        smtp=SmtpConfig(host=local.host, port=local.port, timeout_s=20),
        delivery=DeliveryConfig(undeliverable_to=ADMIN),
        # contoso.eu is "ours" here but not the local server's: the KB's setup.
        policies=(RecipientPolicy("Default Policy", ("contoso.com", "contoso.local", "contoso.eu"), "contoso.com"),),
    )
    yield Site(Office(home=home, isp=isp, local=local, config=config), isp_name, local_name)


@pytest.fixture(params=PAIRS, ids=lambda p: f"{p[0]}-{p[1].removesuffix('_clean')}")
def site(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    yield from _site(request, tmp_path, monkeypatch)


@pytest.fixture(params=LOCAL_SERVERS, ids=lambda p: p[1].removesuffix("_clean"))
def local_site(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    yield from _site(request, tmp_path, monkeypatch)


async def test_user_and_global_mailboxes_deliver_and_empty_the_mailboxes(site: Site) -> None:
    office = site.office
    alice, shared = site.mailbox(), site.mailbox()
    office.isp.deliver(alice.name, make_message(to="alice@isp.example", subject="for alice 1"))
    office.isp.deliver(alice.name, make_message(to="alice@isp.example", subject="for alice 2"))
    office.isp.deliver(shared.name, make_message(
        to="Bob <bob@contoso.com>", cc="carol@contoso.local, partner@fabrikam.example", subject="team"))
    office.use(
        office.account_for(alice, "alice", deliver_to="alice@contoso.com", timeout_s=10),  # type: ignore[arg-type]
        # The global mailbox over STARTTLS on the plain port, the user mailbox over implicit TLS.
        office.account_for(shared, "catch-all", kind="global", deliver_to="",  # type: ignore[arg-type]
                           port=office.isp.pop3_port, security="starttls", timeout_s=10),
    )

    result = await office.run_cycle()

    assert result.exit_code == 0, [e.full_text() for e in office.events if e.severity >= 30]
    office.local.wait_for_delivered(4)
    assert site.recipients() == Counter({"alice@contoso.com": 2, "bob@contoso.com": 1, "carol@contoso.local": 1})
    assert "partner@fabrikam.example" not in "\n".join(e.transcript for e in office.events)
    assert office.isp.messages(alice.name) == [] and office.isp.messages(shared.name) == []


async def test_leave_on_server_and_a_rerun_delivers_nothing_twice(site: Site) -> None:
    office = site.office
    alice = site.mailbox()
    office.isp.deliver(alice.name, make_message(to="alice@isp.example", subject="one"))
    office.isp.deliver(alice.name, make_message(to="alice@isp.example", subject="two"))
    office.use(office.account_for(alice, "alice", leave_on_server=True, timeout_s=10))  # type: ignore[arg-type]

    assert (await office.run_cycle()).exit_code == 0
    office.local.wait_for_delivered(2)
    assert (await office.run_cycle()).exit_code == 0  # the same two are listed again
    office.isp.deliver(alice.name, make_message(to="alice@isp.example", subject="three"))
    assert (await office.run_cycle()).exit_code == 0

    delivered = office.local.wait_for_delivered(3)
    assert sorted(str(m["Subject"]) for m in delivered) == ["one", "three", "two"]
    assert len(office.isp.messages(alice.name)) == 3  # nothing deleted
    assert not office.of(EventId.DUPLICATE_SUPPRESSED)  # known by UIDL, not even submitted again
    assert len(office.of(EventId.MESSAGE_DELIVERED)) == 3


async def test_the_kb_failure_in_the_servers_own_words_is_diagnosed_and_the_mail_kept(local_site: Site) -> None:
    office = local_site.office
    erin = local_site.mailbox()
    office.isp.deliver(erin.name, make_message(to="erin@isp.example", subject="for erin"))
    office.use(office.account_for(erin, "erin", deliver_to="erin@contoso.eu"))  # type: ignore[arg-type]

    result = await office.run_cycle()

    assert result.exit_code == 1
    [refused] = office.of(EventId.RECIPIENT_REFUSED)
    assert RELAY_REFUSAL[local_site.local_name] in refused.text
    assert refused.diagnosis is Failure.DOMAIN_NOT_ACCEPTED, refused.full_text()
    assert refused.recipient == "erin@contoso.eu" and refused.reply is not None and refused.reply.code >= 500
    assert "does not accept mail for the domain contoso.eu" in refused.cause
    assert refused.fix.startswith("Add contoso.eu to the local server's accepted domains")
    if local_site.local_name == "opensmtpd_clean":  # its words do not say: the postmaster probe did
        assert "refuses postmaster@contoso.eu too" in refused.cause
        assert "RCPT TO:<postmaster@contoso.eu>" not in refused.transcript  # the probe is not the message's
    assert office.of(EventId.DIVERTED_TO_UNDELIVERABLE)
    [notice] = office.local.wait_for_delivered(1)
    assert str(notice["Delivered-To"]).lower() == ADMIN and "for erin" in str(notice["Subject"])
    assert office.isp.messages(erin.name) == []  # handled: with the admin, not lost


async def test_an_unknown_local_user_is_told_apart_from_a_foreign_domain(local_site: Site) -> None:
    office = local_site.office
    shared = local_site.mailbox()
    office.isp.deliver(shared.name, make_message(to="bob@contoso.com", cc="ghost@contoso.com", subject="team"))
    office.use(office.account_for(shared, "catch-all", kind="global", deliver_to=""))  # type: ignore[arg-type]

    assert (await office.run_cycle()).exit_code == 1

    [refused] = office.of(EventId.RECIPIENT_REFUSED)
    assert UNKNOWN_USER[local_site.local_name] in refused.text and "ghost@contoso.com" in refused.text
    assert refused.diagnosis is Failure.UNKNOWN_USER, refused.full_text()
    assert "has no mailbox ghost@contoso.com" in refused.cause and "Create the mailbox" in refused.fix
    office.local.wait_for_delivered(2)
    assert local_site.recipients() == Counter({"bob@contoso.com": 1, ADMIN: 1})
    assert office.isp.messages(shared.name) == []


async def test_check_tells_the_two_refusals_apart_before_any_mail_flows(local_site: Site) -> None:
    office = local_site.office
    erin, ghost = local_site.mailbox(), local_site.mailbox()
    config = office.use(office.account_for(erin, "erin", deliver_to="erin@contoso.eu"),  # type: ignore[arg-type]
                        office.account_for(ghost, "ghost", deliver_to="ghost@contoso.com"))  # type: ignore[arg-type]

    findings = {f.subject: f for f in await probe_targets(config, Credentials())}

    assert findings["erin@contoso.eu"].ok is False and "(domain not accepted)" in findings["erin@contoso.eu"].text
    assert findings["ghost@contoso.com"].ok is False and "(unknown user)" in findings["ghost@contoso.com"].text
    assert findings[ADMIN].ok is True
    assert office.local.delivered() == []  # probes only: nothing was sent


async def test_a_70000_octet_line_refused_by_the_local_server_is_kept_in_quarantine(local_site: Site) -> None:
    office = local_site.office
    alice = local_site.mailbox()
    long_line = "x" * 70_000
    original = make_message(to="alice@isp.example", subject="long line", body=long_line + "\r\nend\r\n")
    office.isp.deliver(alice.name, original)
    office.use(office.account_for(alice, "alice", deliver_to="alice@contoso.com"))  # type: ignore[arg-type]

    assert (await office.run_cycle()).exit_code == 1

    [refused] = office.of(EventId.MESSAGE_REFUSED)
    assert refused.diagnosis is Failure.LINE_TOO_LONG, refused.full_text()
    assert "1000 octets" in refused.cause
    quarantine = Quarantine(office.paths.quarantine_dir)
    [kept] = list(quarantine.records())
    kept_message = email.message_from_bytes(quarantine.message_path(kept.id).read_bytes(), policy=email.policy.default)
    assert long_line in kept_message.get_content()
    assert office.isp.messages(alice.name) == []
