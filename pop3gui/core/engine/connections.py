"""Where the configuration becomes protocol clients.

The POP3 client and the SMTP submitter take plain values (host, port, security,
a TLS context); this module is the one place that reads them out of an
:class:`AccountConfig` or :class:`SmtpConfig`, for a run and for the
connection check alike.  What a session to the local server needs (password,
TLS context) is loaded once, before any mail flows: :func:`open_local_server`.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

from pop3gui.core.config.model import AccountConfig, SmtpConfig
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.tls import client_context


def pop3_client(account: AccountConfig) -> Pop3Client:
    """A client for *account*'s mailbox, not yet connected; raises TlsSetupError for a bad ca_file."""
    return Pop3Client(account.host, account.port, security=account.security, verify_tls=account.verify_tls,
                      timeout=account.timeout_s,
                      ssl_context=client_context(verify=account.verify_tls, ca_file=account.ca_file)
                      if account.security != "none" else None)


@dataclass(frozen=True)
class LocalServer:
    """The local mail server with its password and TLS context, ready to open sessions."""

    config: SmtpConfig
    password: str | None = field(repr=False)  # never in a log or a traceback
    tls: ssl.SSLContext | None

    def session(self) -> SmtpSubmitter:
        """A session to the local mail server, opened on first use."""
        smtp = self.config
        return SmtpSubmitter(smtp.host, smtp.port, security=smtp.security, username=smtp.username,
                             password=self.password, timeout=smtp.timeout_s, ssl_context=self.tls)


async def open_local_server(smtp: SmtpConfig, credentials: Credentials) -> LocalServer:
    """Load the password (from the keyring, off the event loop) and the TLS context.

    Raises CredentialError or TlsSetupError, each with its cause and fix.
    """
    tls = client_context(verify=smtp.verify_tls, ca_file=smtp.ca_file) if smtp.security != "none" else None
    password = await asyncio.to_thread(credentials.smtp_password, smtp.username) if smtp.username else None
    return LocalServer(smtp, password, tls)
