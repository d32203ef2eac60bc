"""What a demo run did, read from the sandbox's servers, and whether it went as designed.

:func:`build_report` (:meth:`Sandbox.report <pop3gui.demo.sandbox.Sandbox.report>`)
reads the fake Exchange's Maildirs and RCPT log, the quarantine, what is
left on the fake ISP and the run's events, and checks them against the
outcome the sample is built for (KB Q325464's refusal explained and the
message kept; the OAuth2 mailbox signed in and delivered; the IMAP mailbox's
folders delivered and their mail moved to Delivered).
:meth:`DemoReport.summary` is the "What happened" text of
``pop3gui demo --headless``; :class:`OAuthStory` tells the OAuth2 mailbox's
part, :class:`ImapStory` the IMAP mailbox's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path
from typing import Protocol

from pop3gui.core.engine.findings import Report
from pop3gui.core.errors import Pop3guiError
from pop3gui.core.events.model import Event, EventId
from pop3gui.core.mail.messages import trace_count
from pop3gui.core.oauth.store import SignInStore, sign_in_key
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.spool import Quarantine, QuarantineRecord
from pop3gui.core.state.paths import Paths
from pop3gui.demo.exchange import DemoExchange, StoredMessage
from pop3gui.demo.imap_server import DemoImapServer
from pop3gui.demo.pop3_server import DemoPop3Server
from pop3gui.demo.sign_in import DemoSignIn
from pop3gui.demo.story import (
    DANA,
    DELIVERED,
    ERIN,
    FOREIGN_CC,
    IMAP_ACCOUNT,
    IMAP_FOLDERS,
    IMAP_SUBJECT,
    IMAP_USER,
    INVOICE_SUBJECT,
    KB_SUBJECT,
    MISSING_DOMAIN,
    MOVE_TO,
    OAUTH_ACCOUNT,
    UNDELIVERABLE,
)



class Sandbox(Protocol):
    """What the report reads of a running sandbox (:class:`pop3gui.demo.sandbox.Sandbox`)."""

    @property
    def exchange(self) -> DemoExchange: ...

    @property
    def pop3(self) -> DemoPop3Server: ...

    @property
    def imap(self) -> DemoImapServer: ...

    @property
    def paths(self) -> Paths: ...

    @property
    def sign_in_page(self) -> DemoSignIn: ...


__all__ = ["DemoReport", "ImapStory", "OAuthStory", "Refusal", "build_report", "imap_story", "oauth_story"]


@dataclass(frozen=True)
class Refusal:
    address: str
    reply: str
    cause: str
    fix: str


@dataclass(frozen=True)
class OAuthStory:
    """What happened to the mailbox that signs in with OAuth2, read from the sign-in page and the POP3 server."""

    account: str
    user: str  # the ISP user name
    signed_in_as: str  # who the stored sign-in names; "" when none is stored
    sign_ins: int  # sign-ins finished at the demo sign-in page
    refreshes: int  # access tokens renewed from the stored sign-in (each rotated the refresh token)
    logins: list[str]  # how each POP3 login of the mailbox presented its token

    def lines(self, delivered: Sequence[StoredMessage]) -> list[str]:
        out = [f"OAuth2 mailbox {self.user} (account {self.account}; no password is stored for it):"]
        if not self.sign_ins:
            out.append(f"  not signed in: its mail stays on the POP3 server until it is "
                       f"(`pop3gui auth login {self.account}`)")
            return out
        if self.signed_in_as:
            out.append(f"  signed in at the demo sign-in page as {self.signed_in_as}; the sign-in is kept in the "
                       "sandbox's in-memory keyring")
        else:
            out.append("  signed in at the demo sign-in page, but no sign-in is stored in the keyring any more")
        if self.refreshes:
            out.append(f"  access token renewed from the stored sign-in {self.refreshes} time(s), the refresh "
                       "token rotating each time")
        if self.logins:
            methods = ", ".join(sorted(set(self.logins)))
            out.append(f"  logged in to the POP3 server {len(self.logins)} time(s) with AUTH {methods}")
        mine = [m for m in delivered if m.recipient == self.user]
        out.append("  delivered after sign-in:" if mine else "  delivered after sign-in: nothing")
        out += [f"    {m.recipient:<26} <- {m.subject}" for m in mine]
        return out


@dataclass(frozen=True)
class ImapStory:
    """What happened to the mailbox reached over IMAP, read from the fake ISP's IMAP server and the Exchange."""

    account: str
    user: str  # the ISP user name
    server: str  # host:port of the fake ISP's IMAP server
    folders: tuple[str, ...]  # fetched from
    move_to: str  # where handled mail goes
    logins: list[str]  # how each IMAP login of the mailbox presented its password
    left: dict[str, list[str]]  # folder fetched from -> subjects still in it
    moved: list[str]  # subjects in the move_to folder
    delivered: list[StoredMessage]  # what the Exchange holds from this account (by the connector's Received line)

    def lines(self) -> list[str]:
        out = [f"IMAP mailbox {self.user} (account {self.account}, a global mailbox on the fake ISP's IMAP server "
               f"{self.server}):"]
        if self.logins:
            methods = ", ".join(sorted(set(self.logins)))
            out.append(f"  logged in to the IMAP server {len(self.logins)} time(s) with {methods}")
        else:
            out.append("  never logged in to the IMAP server")
        folders = " and ".join(self.folders)
        out.append(f"  delivered from {folders}:" if self.delivered else f"  delivered from {folders}: nothing")
        out += [f"    {m.recipient:<26} <- {m.subject}" for m in self.delivered]
        out.append(f"  moved to the folder {self.move_to} after delivery, where the ISP keeps it (after_delivery = "
                   f"\"move\"): " + (", ".join(self.moved) if self.moved else "nothing"))
        left = {folder: subjects for folder, subjects in self.left.items() if subjects}
        if left:
            out += [f"  still in {folder}: {', '.join(subjects)}" for folder, subjects in left.items()]
        else:
            out.append(f"  still in {folders}: nothing")
        return out


@dataclass
class DemoReport:
    """What a demo run did, read from the Exchange, the quarantine, the POP3 server and the events."""

    delivered: list[StoredMessage]
    refused: list[Refusal]
    quarantined: list[QuarantineRecord]
    left_on_server: dict[str, list[str]]  # account -> subjects still on the POP3 server
    maildir_root: Path
    relay_attempts: list[str]  # RCPTs for foreign addresses other than the designed one
    oauth: OAuthStory | None = None
    imap: ImapStory | None = None
    problems: list[str] = field(default_factory=list)  # how the run differs from the designed outcome

    @property
    def as_designed(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """The "What happened" text of ``pop3gui demo --headless``: only what the run really did."""
        out = ["== What happened ==",
               f"Delivered by the Exchange ({len(self.delivered)} message(s), read from its Maildirs):"]
        out += [f"  {m.recipient:<28} <- {m.subject}" for m in self.delivered]
        out.append("Refused by the Exchange:" if self.refused else "Refused by the Exchange: nothing")
        for r in self.refused:
            out += [f"  {r.address}: {r.reply}", f"    cause: {r.cause}", f"    fix: {r.fix}"]
        out.append(f"Quarantined: {len(self.quarantined) or 'nothing'}")
        for q in self.quarantined:
            out += [f"  {q.subject!r} from account {q.account} (id {q.id})", f"    reason: {q.reason}",
                    f"    cause: {q.cause}", f"    fix: {q.fix}"]
        if self.quarantined:
            out.append("  -> nothing was lost: the message is kept in the quarantine (SBS's connector deleted "
                       "it). To deliver it: add the domain to the recipient policy and to the server's accepted "
                       "domains, then resubmit it from the Quarantine page of the window (`pop3gui demo`).")
        left = {name: subjects for name, subjects in self.left_on_server.items() if subjects}
        out.append("Still on the POP3 server:" if left else "Still on the POP3 server: nothing (every message "
                   "was handled, then deleted)")
        out += [f"  {name}: {', '.join(subjects)}" for name, subjects in left.items()]
        if self.imap is not None:
            out += self.imap.lines()
        if self.oauth is not None:
            out += self.oauth.lines(self.delivered)
        out.append(f"Maildirs of the Exchange: {self.maildir_root}")
        if self.as_designed:
            out += ["", f"The demo ran as designed (exit 0). The refusal of {ERIN} and {UNDELIVERABLE}, and the "
                    "quarantined message, are the designed KB Q325464 case; a real `pop3gui run` would exit 1 for "
                    f"it. The fix: add {MISSING_DOMAIN} to the recipient policy and to the server's accepted "
                    "domains, then resubmit the message."]
        else:
            out += ["", "The demo did NOT run as designed (exit 1):", *[f"  - {p}" for p in self.problems]]
        return "\n".join(out)


def oauth_story(sandbox: Sandbox) -> OAuthStory:
    """*sandbox*'s OAuth2 mailbox so far: its sign-ins, token renewals and POP3 logins."""
    return OAuthStory(
        account=OAUTH_ACCOUNT, user=DANA, signed_in_as=_stored_identity(sign_in_key(OAUTH_ACCOUNT)),
        sign_ins=sandbox.sign_in_page.sign_ins, refreshes=sandbox.sign_in_page.refreshes,
        logins=[login.method for login in sandbox.pop3.logins if login.user == DANA])


def imap_story(sandbox: Sandbox) -> ImapStory:
    """*sandbox*'s IMAP mailbox so far: its logins, what is left in its folders, what moved, what was delivered."""
    imap = sandbox.imap
    folders = imap.folders(IMAP_USER)
    return ImapStory(
        account=IMAP_ACCOUNT, user=IMAP_USER, server=f"{imap.host}:{imap.port}", folders=IMAP_FOLDERS,
        move_to=MOVE_TO, logins=[login.method for login in imap.logins if login.user == IMAP_USER],
        left={f: [_subject(m) for m in imap.messages(IMAP_USER, f)] for f in IMAP_FOLDERS if f in folders},
        moved=[_subject(m) for m in imap.messages(IMAP_USER, MOVE_TO)] if MOVE_TO in folders else [],
        delivered=[m for m in sandbox.exchange.messages() if _traced_to(m, IMAP_ACCOUNT)])


def build_report(sandbox: Sandbox, events: Iterable[Event], preflight: Report | None = None) -> DemoReport:
    """Summarise a first run on *sandbox*'s fresh sample, and check it against the designed outcome."""
    events = list(events)
    refused = [_refusal(e) for e in events if e.id in (EventId.RECIPIENT_REFUSED, EventId.MESSAGE_REFUSED)]
    delivered = sandbox.exchange.messages()
    accepted_domains = sandbox.exchange.accepted_domains
    quarantined = list(Quarantine(sandbox.paths.quarantine_dir).records())
    report = DemoReport(
        delivered=delivered, refused=refused, quarantined=quarantined,
        left_on_server={name: [_subject(m) for m in sandbox.pop3.messages(name)] for name in sandbox.pop3.mailboxes},
        maildir_root=sandbox.exchange.root,
        relay_attempts=[a.address for a in sandbox.exchange.rcpt_log
                        if a.address.rpartition("@")[2].lower() not in accepted_domains | {MISSING_DOMAIN}],
        oauth=oauth_story(sandbox),
        imap=imap_story(sandbox),
    )
    if report.oauth is not None and not report.oauth.sign_ins:
        report.problems.append(f"{DANA} was not signed in at the demo sign-in page")
    if report.imap is not None:
        for subject in (IMAP_SUBJECT, INVOICE_SUBJECT):
            if subject not in report.imap.moved:
                report.problems.append(f"{subject!r} of the IMAP mailbox was not moved to {MOVE_TO}")
        if any(report.imap.left.values()):
            report.problems.append("messages stayed in the IMAP mailbox's folders")
    got = {m.recipient for m in delivered}
    for wanted in DELIVERED:
        if wanted not in got:
            report.problems.append(f"nothing was delivered to {wanted}")
    if FOREIGN_CC in (a.address.lower() for a in sandbox.exchange.rcpt_log):
        report.problems.append(f"{FOREIGN_CC} was given to RCPT TO (the connector must never relay)")
    if report.relay_attempts:
        report.problems.append(f"foreign addresses reached RCPT TO: {', '.join(report.relay_attempts)}")
    if MISSING_DOMAIN in accepted_domains:
        report.problems.append(f"the Exchange already accepts {MISSING_DOMAIN}: the KB case cannot happen")
    else:
        erin = [r for r in refused if r.address.lower() == ERIN]
        if not (erin and erin[0].reply.startswith("550 5.7.1") and MISSING_DOMAIN in erin[0].cause
                and MISSING_DOMAIN in erin[0].fix):
            report.problems.append(f"{ERIN} was not refused with an explained 550 5.7.1")
        kept = [q for q in quarantined if q.subject == KB_SUBJECT and q.account == "erin"]
        if not (kept and ERIN in kept[0].reason and f"{UNDELIVERABLE} refused it too" in kept[0].reason
                and MISSING_DOMAIN in kept[0].fix):
            report.problems.append(f"the message for {ERIN} is not in the quarantine with its reason and fix")
        if preflight is not None:
            for address in (ERIN, UNDELIVERABLE):
                if not any(not f.ok and f.subject == address for f in preflight.findings):
                    report.problems.append(f"the preflight did not flag {address}")
    if preflight is not None:
        others = [f for f in preflight.findings if not f.ok and MISSING_DOMAIN not in f.subject]
        report.problems += [f"the preflight found an unexpected problem: {f.subject}: {f.text}" for f in others]
    unexpected = [q for q in quarantined if q.subject != KB_SUBJECT]
    if unexpected:
        report.problems.append(f"unexpected message(s) in quarantine: {', '.join(q.subject for q in unexpected)}")
    if any(m.recipient.endswith("@" + MISSING_DOMAIN) for m in delivered):
        report.problems.append(f"something was delivered to {MISSING_DOMAIN}, which the Exchange refuses")
    if any(report.left_on_server.values()):
        report.problems.append("messages stayed on the POP3 server")
    return report


def _stored_identity(key: str) -> str:
    """Who the stored sign-in *key* names, read from the process's keyring; "" when there is none."""
    try:
        record = SignInStore(Credentials()).load(key)
    except Pop3guiError:
        return ""
    return record.identity if record is not None else ""


def _refusal(event: Event) -> Refusal:
    return Refusal(event.recipient, str(event.reply or ""), event.cause, event.fix)


def _subject(data: bytes) -> str:
    return str(BytesHeaderParser(policy=default).parsebytes(data).get("Subject", ""))


def _traced_to(message: StoredMessage, account: str) -> bool:
    """Whether the connector's own Received line names *account*: the message came from its mailbox."""
    received = BytesHeaderParser(policy=default).parsebytes(message.data).get_all("Received") or []
    return trace_count([str(value) for value in received], account) > 0
