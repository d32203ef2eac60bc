"""The demo sandbox: a fake ISP, a fake Exchange and a sample configuration on loopback.

:class:`Sandbox` makes a throw-away ``POP3GUI_HOME`` (or uses a given folder),
starts :class:`~pop3gui.demo.pop3_server.DemoPop3Server` and
:class:`~pop3gui.demo.imap_server.DemoImapServer` (the ISP's mailboxes, over
POP3 and IMAP) and :class:`~pop3gui.demo.exchange.DemoExchange` (the office's
server), seeds
sample mail, writes a sample config with
:func:`~pop3gui.core.config.model.save_config`, and puts the sample passwords in an
in-memory keyring.  The real connector (:class:`~pop3gui.core.engine.cycle.Connector`)
then runs against it unchanged.

The sample is built to show every promise of the README, and KB Q325464's
failure in a way a small office meets it: the office is moving to its new
domain ``contoso.eu``.  The new colleague's ISP mailbox ``erin`` maps to
``erin@contoso.eu`` and the undeliverable mailbox was already switched to
``postmaster@contoso.eu`` - but nobody added ``contoso.eu`` to the recipient
policy, so the Exchange does not accept it.  ``check`` flags both addresses
before mail flows; the run gets ``550 5.7.1 Unable to relay`` for erin, then
again for the postmaster, explains cause and fix, and keeps the message in
the quarantine with the reason: nothing is lost (SBS's connector deleted it).
The fix is one click: add ``contoso.eu`` to the policy
(:meth:`Sandbox.accept_policy_domains` makes the Exchange follow a saved
policy; :meth:`Sandbox.fix_policy` does both at once), then resubmit the
quarantined message.

One more mailbox shows OAuth2, the way Microsoft 365 and Gmail mailboxes log
in: ``dana@contoso.com`` takes no password, only an access token over SASL
XOAUTH2 or OAUTHBEARER.  The sandbox's own sign-in page
(:mod:`pop3gui.demo.sign_in`) stands in for the provider; :meth:`Sandbox.sign_in`
signs dana in through the connector's real sign-in path, playing the user who
presses Allow, and the sign-in (a refresh token) lands in the sandbox's
in-memory keyring.  From there the connector renews its access tokens as it
would with a real provider.

One more mailbox shows IMAP: the office's shared mailbox ``info@contoso.com``
at the ISP, which the staff also read on their phones.  It is a global
mailbox fetched from two folders - INBOX, and Invoices, where the ISP's
filter files the suppliers' invoices - so each message goes to whoever it is
addressed to (``info@``, ``accounts@``), through the same checks as POP3 mail.
Handled mail is not deleted but moved to the folder Delivered (the connector
creates it at its first move), where the phones still show it.  The fake
ISP's IMAP server announces new mail to a connector waiting with IDLE.

:meth:`Sandbox.report` checks a run against this design
(:mod:`pop3gui.demo.report`).
"""

from __future__ import annotations

import asyncio
import email.utils
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Self

from pop3gui.core.config.model import (
    AccountConfig,
    Config,
    DeliveryConfig,
    OAuthProviderConfig,
    RecipientPolicy,
    RoutingRuleConfig,
    ScheduleConfig,
    SmtpConfig,
)
from pop3gui.core.config.save import save_config
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import SignIn, sign_in_key
from pop3gui.core.state.credentials import POP3_SERVICE, Credentials
from pop3gui.core.events.model import Event, EventBus
from pop3gui.core.state.paths import Paths, ensure_private_dir
from pop3gui.core.engine.findings import Report
from pop3gui.core.engine.cycle import Connector
from pop3gui.demo import keyring_backend
from pop3gui.demo.exchange import DemoExchange
from pop3gui.demo.imap_server import DemoImapServer
from pop3gui.demo.pop3_server import DemoPop3Server
from pop3gui.demo.report import DemoReport, ImapStory, OAuthStory, build_report, imap_story, oauth_story
from pop3gui.demo.sign_in import CLIENT_ID, SCOPES, DemoSignIn, press_allow
from pop3gui.demo.story import (
    ACCOUNTS,
    DANA,
    ERIN,
    FOREIGN_CC,
    IMAP_ACCOUNT,
    IMAP_FOLDERS,
    IMAP_SUBJECT,
    IMAP_USER,
    INVOICE_SUBJECT,
    INVOICES_FOLDER,
    KB_SUBJECT,
    LOCAL_DOMAIN,
    MISSING_DOMAIN,
    OAUTH_ACCOUNT,
    OAUTH_PROVIDER,
    MOVE_TO,
    OAUTH_SUBJECT,
    PASSWORDS,
    UNDELIVERABLE,
)



def sample_message(*, subject: str, to: str, cc: str = "", sender: str = "Northwind Traders <info@northwind.example>",
                   extra: Sequence[str] = (), body: str = "") -> bytes:
    """A small RFC 5322 message with CRLF line endings."""
    address = email.utils.parseaddr(sender)[1]
    headers = [f"Return-Path: <{address}>", *extra, f"From: {sender}", f"To: {to}"]
    if cc:
        headers.append(f"Cc: {cc}")
    headers += [f"Subject: {subject}", f"Date: {email.utils.formatdate(localtime=True)}",
                f"Message-ID: {email.utils.make_msgid(domain='northwind.example')}", "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8"]
    text = body or f"This is the pop3gui demo message \"{subject}\"."
    return ("\r\n".join(headers) + "\r\n\r\n" + text.replace("\n", "\r\n") + "\r\n").encode("utf-8")


def sample_mailboxes() -> dict[str, tuple[str, list[bytes]]]:
    """The ISP's mailboxes: two user mailboxes and one global (catch-all) mailbox."""
    alice = [
        sample_message(subject="Your order 4711 has shipped", to="alice@contoso.com"),
        sample_message(subject="Minutes of Monday's meeting", to="alice@contoso.com",
                       sender="Bob <bob@contoso.com>",
                       body="Minutes attached.\n.\n..a line that starts with dots survives POP3 dot-stuffing\n"),
    ]
    office = [
        sample_message(subject="Project kickoff", to="bob@contoso.com",
                       cc=f"carol@contoso.com, {FOREIGN_CC}", sender="Partner <partner@fabrikam.example>",
                       body=f"The Cc to {FOREIGN_CC} is a foreign address: the connector never relays to it.\n"),
        sample_message(subject="Board agenda (Bcc copy)", to="bob@contoso.com",
                       extra=["Delivered-To: dave@contoso.com"],
                       body="Dave was in Bcc: only the ISP's Delivered-To header names him.\n"),
        sample_message(subject="Request for quote", to="sales@contoso.com",
                       body="A routing rule sends mail for sales@ to sales-team@contoso.com too.\n"),
    ]
    erin = [
        sample_message(subject=KB_SUBJECT, to=ERIN, sender="HR <hr@contoso.com>",
                       body=f"Welcome, Erin! Your address is {ERIN}: {MISSING_DOMAIN} is the office's new "
                       "domain, but no recipient policy covers it yet, so the local server refuses it "
                       "(KB Q325464).\n"),
    ]
    return {"alice": (PASSWORDS["alice"], alice), "office": (PASSWORDS["office"], office),
            "erin": (PASSWORDS["erin"], erin)}


def sample_oauth_mail() -> list[bytes]:
    """The mail waiting in dana's mailbox, which signs in with OAuth2."""
    return [
        sample_message(subject=OAUTH_SUBJECT, to=DANA, sender="Contoso IT <it@contoso.com>",
                       body="Dana's ISP mailbox signs in with OAuth2, like Microsoft 365 and Gmail: pop3gui keeps "
                       "no password for it, only the sign-in, and logs in with a short-lived access token "
                       "(SASL XOAUTH2).\n"),
    ]


def sample_imap_mail() -> dict[str, list[bytes]]:
    """The mail waiting in the shared mailbox reached over IMAP, by folder."""
    return {
        "INBOX": [
            sample_message(subject=IMAP_SUBJECT, to=IMAP_USER, sender="Jane Doe <jane@adatum.example>",
                           body="Are you open between Christmas and New Year?\n\nThe shared mailbox info@ is "
                           "reached over IMAP: pop3gui fetches its folders INBOX and Invoices and moves what it "
                           "delivered to the folder Delivered, so the office's phones still show it.\n"),
        ],
        INVOICES_FOLDER: [
            sample_message(subject=INVOICE_SUBJECT, to=ACCOUNTS, sender="Northwind Billing <billing@northwind.example>",
                           body="Invoice 2024-117 for your order 4711.\n\nThe ISP's filter put this message "
                           "in the folder Invoices; it is a global mailbox, so it goes to accounts@, to whom it "
                           "is addressed.\n"),
        ],
    }


def sample_config(pop3_port: int, smtp_port: int, sign_in_url: str = "", *, imap_port: int) -> Config:
    """The sample configuration; *sign_in_url* is the base URL of the demo sign-in server."""
    def account(name: str, kind: str, deliver_to: str = "") -> AccountConfig:
        # security = "none" is the explicit opt-in to a plaintext login: fine on loopback only.
        return AccountConfig(name=name, host="127.0.0.1", port=pop3_port, security="none", username=name,
                             kind=kind, deliver_to=deliver_to, timeout_s=10)

    dana = replace(account(OAUTH_ACCOUNT, "user", DANA), username=DANA, auth="oauth2",
                   oauth_provider=OAUTH_PROVIDER, sasl="xoauth2")
    info = replace(account(IMAP_ACCOUNT, "global"), protocol="imap", port=imap_port, username=IMAP_USER,
                   folders=IMAP_FOLDERS, after_delivery="move", move_to=MOVE_TO)
    return Config(
        smtp=SmtpConfig(host="127.0.0.1", port=smtp_port, security="none", timeout_s=10),
        schedule=ScheduleConfig(interval_min=1),
        delivery=DeliveryConfig(undeliverable_to=UNDELIVERABLE),
        policies=(RecipientPolicy(name="Default Policy", domains=(LOCAL_DOMAIN,), primary=LOCAL_DOMAIN),),
        accounts=(account("alice", "user", "alice@contoso.com"), account("office", "global"),
                  account("erin", "user", ERIN), dana, info),
        rules=(RoutingRuleConfig(account="office", contains="sales@", deliver_to="sales-team@contoso.com"),),
        oauth_providers=(OAuthProviderConfig(name=OAUTH_PROVIDER, client_id=CLIENT_ID, kind="generic",
                                             authorize_url=f"{sign_in_url}/authorize",
                                             token_url=f"{sign_in_url}/token", scopes=SCOPES),),
    )


class Sandbox:
    """A self-contained demo installation; use ``async with Sandbox() as sb:``.

    The folder, the servers' objects and the keyring exist from the
    constructor on; :meth:`start` (on the loop that will run the connector)
    starts the servers and writes the config; :meth:`stop` stops them;
    :meth:`cleanup` (no loop needed) deletes the folder unless *keep*.
    """

    def __init__(self, folder: Path | None = None, *, keep: bool = False) -> None:
        self.owns_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="pop3gui-demo-")) if folder is None else folder
        ensure_private_dir(self.folder)
        self.keep = keep
        # The same layout as POP3GUI_HOME=folder (see pop3gui.core.state.paths.default_paths).
        self.paths = Paths(config_file=self.folder / "config.toml", state_dir=self.folder / "state",
                           log_dir=self.folder / "logs")
        self.sign_in_page = DemoSignIn(DANA)
        self.pop3 = DemoPop3Server(sample_mailboxes(), token_check=self.sign_in_page.is_valid)
        self.pop3.add_mailbox(DANA, "", sample_oauth_mail(), oauth=True)
        self.imap = DemoImapServer()
        self.imap.add_mailbox(IMAP_USER, PASSWORDS[IMAP_ACCOUNT], sample_imap_mail())
        self.exchange = DemoExchange(self.folder / "exchange", [LOCAL_DOMAIN])
        self.keyring = keyring_backend.MemoryKeyring()
        self.config = Config()
        self._restore_keyring: Callable[[], None] | None = None

    @property
    def maildir_root(self) -> Path:
        return self.exchange.root

    async def start(self) -> None:
        self._restore_keyring = keyring_backend.install(self.keyring)
        for name, password in PASSWORDS.items():
            self.keyring.set_password(POP3_SERVICE, name, password)
        self.sign_in_page.start()
        await self.pop3.start()
        await self.imap.start()
        await self.exchange.start()
        self.config = sample_config(self.pop3.port, self.exchange.port, self.sign_in_page.base_url,
                                    imap_port=self.imap.port)
        save_config(self.config, self.paths.config_file)

    async def sign_in(self, sign_ins: SignIns | None = None) -> SignIn:
        """Sign dana in as a user would, the sandbox pressing Allow on the demo sign-in page.

        It is the connector's own sign-in (``pop3gui auth login dana`` runs
        the same code): the authorization code with PKCE comes back to a
        loopback listener, and the sign-in is stored in the keyring - the
        sandbox's in-memory one while the sandbox runs.
        """
        sign_ins = sign_ins or SignIns(Credentials(), self.paths.sign_in_locks)
        account = self.config.account(OAUTH_ACCOUNT)
        return await sign_ins.sign_in(sign_in_key(account.name), self.config.oauth_provider(account.oauth_provider),
                                      open_page=press_allow)

    async def stop(self) -> None:
        await self.pop3.stop()
        await self.imap.stop()
        await self.exchange.stop()
        await asyncio.to_thread(self.sign_in_page.stop)
        if self._restore_keyring is not None:
            self._restore_keyring()
            self._restore_keyring = None

    def cleanup(self) -> None:
        """Delete the sandbox folder (unless keep, or it was given by the caller)."""
        if self.owns_folder and not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            self.cleanup()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()
        self.cleanup()

    # --- for the demo's buttons -----------------------------------------------------

    def connector(self, bus: EventBus) -> Connector:
        """A connector on the sandbox's config and state folder (close() it when done)."""
        return Connector(self.config, self.paths, bus)

    def accept_policy_domains(self, config: Config) -> list[str]:
        """Make the Exchange accept every domain of *config*'s recipient policies; returns the new ones.

        On a real server the admin adds a domain to the policy *and* to the
        server's accepted domains; in the sandbox, saving the policy does both.
        *config* becomes the sandbox's config (it was saved by the caller).
        """
        self.config = config
        added = [d for d in config.local_domains() if d not in self.exchange.accepted_domains]
        for domain in added:
            self.exchange.accept_domain(domain)
        return added

    def fix_policy(self, domain: str = MISSING_DOMAIN) -> Config:
        """The one-click fix of KB Q325464: the first policy covers *domain* and the Exchange accepts it.

        Returns (and saves) the new config; hand it to a running connector with
        ``connector.use_config(sandbox.config)``.
        """
        first, *rest = self.config.policies
        if domain.lower() not in (d.lower() for d in first.domains):
            first = replace(first, domains=(*first.domains, domain))
        config = replace(self.config, policies=(first, *rest))
        save_config(config, self.paths.config_file)
        self.accept_policy_domains(config)
        return self.config

    def send_to_isp(self, account: str, subject: str, body: str = "", *, folder: str = "INBOX",
                    to: str = "") -> str:
        """Drop one more message into an ISP mailbox; returns its UIDL (POP3) or UID (IMAP).

        It is addressed to *to*, else to the account's target (a global
        mailbox: ``account@contoso.com``, or its IMAP user name).  An IMAP
        mailbox gets it in *folder*, and a connector waiting there with IDLE
        hears of it at once.
        """
        acc = self.config.account(account)
        if acc.protocol == "imap":
            data = sample_message(subject=subject, to=to or acc.deliver_to or acc.username, body=body)
            return str(self.imap.add_message(acc.username, data, folder))
        to = to or acc.deliver_to or f"{account}@{LOCAL_DOMAIN}"
        return self.pop3.add_message(acc.username, sample_message(subject=subject, to=to, body=body))

    # --- what happened ---------------------------------------------------------------

    def oauth_story(self) -> OAuthStory:
        """The OAuth2 mailbox so far: its sign-ins, token renewals and POP3 logins."""

        return oauth_story(self)

    def imap_story(self) -> ImapStory:
        """The mailbox reached over IMAP so far: its logins, folders and what moved to Delivered."""

        return imap_story(self)

    def report(self, events: Iterable[Event], preflight: Report | None = None) -> DemoReport:
        """Summarise a first run on the fresh sample, and check it against the designed outcome."""

        return build_report(self, events, preflight)
