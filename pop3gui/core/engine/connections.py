"""Where the configuration becomes protocol clients.

The POP3 and IMAP clients and the SMTP submitter take plain values (host, port, security,
a TLS context); this module is the one place that reads them out of an
:class:`AccountConfig` or :class:`SmtpConfig`, for a run and for the
connection check alike.  What a session to the local server needs (password,
TLS context) is loaded once, before any mail flows: :func:`open_local_server`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from pop3gui.core.config.model import AccountConfig, Config, SmtpConfig
from pop3gui.core.imap.client import ImapClient
from pop3gui.core.oauth.endpoints import SMTP
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import smtp_sign_in_key
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.errors import SmtpError
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.threads import in_lookup_thread
from pop3gui.core.tls import client_context


def pop3_client(account: AccountConfig) -> Pop3Client:
    """A client for *account*'s mailbox, not yet connected; raises TlsSetupError for a bad ca_file."""
    return Pop3Client(account.host, account.port, security=account.security, verify_tls=account.verify_tls,
                      timeout=account.timeout_s,
                      ssl_context=client_context(verify=account.verify_tls, ca_file=account.ca_file)
                      if account.security != "none" else None)


def imap_client(account: AccountConfig) -> ImapClient:
    """A client for *account*'s IMAP mailbox, not yet connected; raises TlsSetupError for a bad ca_file."""
    return ImapClient(account.host, account.port, security=account.security, verify_tls=account.verify_tls,
                      timeout=account.timeout_s,
                      ssl_context=client_context(verify=account.verify_tls, ca_file=account.ca_file)
                      if account.security != "none" else None)


@dataclass(frozen=True)
class LocalServer:
    """The local mail server with its password and TLS context, ready to open sessions."""

    config: SmtpConfig
    password: str | None = field(repr=False)  # never in a log or a traceback
    tls: ssl.SSLContext | None
    oauth_token: str | None = field(default=None, repr=False)  # with auth = "oauth2", instead of the password
    _limit: list[int] = field(default_factory=list, repr=False, compare=False)  # learned once: [SIZE limit]
    _asking: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    def session(self) -> SmtpSubmitter:
        """A session to the local mail server, opened on first use."""
        smtp = self.config
        return SmtpSubmitter(smtp.host, smtp.port, security=smtp.security, username=smtp.username,
                             password=self.password, timeout=smtp.timeout_s, ssl_context=self.tls,
                             oauth_token=self.oauth_token)

    async def size_limit(self) -> tuple[int, SmtpSubmitter | None]:
        """The SIZE limit the server announces after EHLO (RFC 1870), learned once; 0 for none or unknown.

        Known before any message is downloaded, so one the server would refuse
        stays on the mail server. When it is learned now, the session opened to
        learn it comes along, connected, for the caller to use or close. A
        session that cannot be opened says nothing here: the submission that
        follows reports it.
        """
        async with self._asking:
            if self._limit:
                return self._limit[0], None
            smtp = self.session()
            try:
                await smtp.connect()
            except SmtpError:
                self._limit.append(0)
                return 0, None
            self._limit.append(smtp.size_limit or 0)
            return self._limit[0], smtp

async def open_local_server(smtp: SmtpConfig, credentials: Credentials, sign_ins: SignIns | None = None,
                            config: Config | None = None) -> LocalServer:
    """Load the password (from the keyring, off the event loop) or access token, and the TLS context.

    Raises CredentialError, OAuthError or TlsSetupError, each with its cause and fix.
    """
    tls = client_context(verify=smtp.verify_tls, ca_file=smtp.ca_file) if smtp.security != "none" else None
    if not smtp.username:
        return LocalServer(smtp, None, tls)
    if smtp.auth == "oauth2":
        if sign_ins is None or config is None:
            raise ValueError("an OAuth2 login to the local server needs the sign-ins and the configuration")
        token = await sign_ins.access_token(smtp_sign_in_key(smtp.username),
                                            config.oauth_provider(smtp.oauth_provider), SMTP)
        return LocalServer(smtp, None, tls, token)
    return LocalServer(smtp, await in_lookup_thread(credentials.smtp_password, smtp.username), tls)
