"""The alert mail: one message to ``[alerts] mail_to`` when an alert starts, one when it ends.

Built with the standard library's ``email`` package (``policy.default``) and
marked ``Auto-Submitted: auto-generated`` (RFC 3834), so vacation responders
and mailing lists do not answer it.  It goes through the local mail server
with the connector's own ``[smtp]`` settings.
"""

from __future__ import annotations

import socket
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pop3gui.core.config.model import Config
from pop3gui.core.health.conditions import recovered_subject
from pop3gui.core.health.store import AlertRow
from pop3gui.core.mail.addresses import domain_of, normalize_address

ALERT_HEADER = "X-Pop3gui-Alert"
"""``<condition>; account=<name>; state=raised|recovered``: for mail filters and tests."""


def alert_sender(config: Config) -> str:
    """``[alerts] mail_from``, else postmaster@ the first recipient policy's primary domain."""
    if config.alerts.mail_from:
        return config.alerts.mail_from
    for policy_ in config.policies:
        domain = policy_.primary or (policy_.domains[0] if policy_.domains else "")
        if domain:
            return f"postmaster@{domain}"
    return f"postmaster@{domain_of(config.alerts.mail_to) or 'localhost'}"


def _when(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts):%Y-%m-%d %H:%M} (local time of {socket.gethostname()})"


def alert_message(row: AlertRow, config: Config, *, recovery: bool, now: datetime) -> EmailMessage:
    """The mail for *row*: its start, or (with *recovery*) its end."""
    sender = alert_sender(config)
    msg = EmailMessage(policy=policy.default)
    msg["From"] = f"pop3gui <{sender}>"
    msg["To"] = config.alerts.mail_to
    msg["Date"] = format_datetime(now.astimezone())
    domain = domain_of(normalize_address(sender) or sender) or "pop3gui.invalid"
    msg["Message-ID"] = make_msgid("pop3gui-alert", domain=domain)
    msg["Subject"] = recovered_subject(row.condition, row.account, row.recipient) if recovery else row.subject
    msg["Auto-Submitted"] = "auto-generated"
    msg[ALERT_HEADER] = f"{row.condition}; account={row.account}; state={'recovered' if recovery else 'raised'}"
    lines: list[str] = []
    if recovery:
        lines += [f"Resolved: {row.text}", "",
                  f"Since:     {_when(row.started_at)}",
                  f"Ended:     {_when(row.ended_at or now.timestamp())}"]
        if not row.mailed:
            lines += ["", "The mail about its start could not be sent at the time (the local mail server did not "
                      "take it); this is the first you hear of it."]
    else:
        lines += [f"What:      {row.text}",
                  f"Since:     {_when(row.started_at)}",
                  f"Cause:     {row.cause}",
                  f"Fix:       {row.fix}"]
    account_hint = f"pop3gui events --account {row.account}" if row.account else "pop3gui events"
    lines += ["", "To see more on the connector's computer:",
              "  pop3gui status",
              f"  {account_hint}",
              "", ("You will get one more mail when this alert ends." if not recovery else
                   "Nothing more will be sent about this alert."),
              "", "-- ", f"pop3gui on {socket.gethostname()}; alerts are set in [alerts] of its configuration."]
    msg.set_content("\n".join(lines) + "\n")
    return msg
