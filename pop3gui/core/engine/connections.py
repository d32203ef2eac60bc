"""Where the configuration becomes protocol clients.

The POP3 client and the SMTP submitter take plain values (host, port, security,
a TLS context); this module is the one place that reads them out of an
:class:`~pop3gui.core.config.schema.AccountConfig` or
:class:`~pop3gui.core.config.schema.SmtpConfig`, for a run and for the
connection check alike.
"""

from __future__ import annotations

from pop3gui.core.config.model import AccountConfig, SmtpConfig
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.smtp.submit import SmtpSubmitter
from pop3gui.core.tls import client_context


def pop3_client(account: AccountConfig) -> Pop3Client:
    """A client for *account*'s mailbox, not yet connected."""
    return Pop3Client(account.host, account.port, security=account.security, verify_tls=account.verify_tls,
                      timeout=account.timeout_s,
                      ssl_context=client_context(verify=account.verify_tls, ca_file=account.ca_file)
                      if account.security != "none" else None)


def smtp_submitter(smtp: SmtpConfig, password: str | None) -> SmtpSubmitter:
    """A session to the local mail server, opened on first use."""
    return SmtpSubmitter(smtp.host, smtp.port, security=smtp.security, username=smtp.username, password=password,
                         timeout=smtp.timeout_s,
                         ssl_context=client_context(verify=smtp.verify_tls, ca_file=smtp.ca_file)
                         if smtp.security != "none" else None)
