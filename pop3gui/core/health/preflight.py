"""What ``pop3gui check`` can tell about ``[alerts]`` before an alert is ever due."""

from __future__ import annotations

from pop3gui.core.config.model import Config
from pop3gui.core.engine.findings import Finding
from pop3gui.core.health.mail import alert_sender
from pop3gui.core.mail.addresses import domain_of, normalize_address


def alert_findings(config: Config) -> list[Finding]:
    """Problems of the alert mail's addresses; none when no alert mail is set up."""
    alerts = config.alerts
    if not alerts.mail_to:
        return []
    findings: list[Finding] = []
    subject = "[alerts]"
    to = normalize_address(alerts.mail_to)
    if to is None:
        findings.append(Finding(False, subject, f"mail_to {alerts.mail_to!r} is not an e-mail address",
                                "Alert mail cannot be addressed.", "Set [alerts] mail_to to the admin's address."))
    elif domain_of(to) not in config.local_domains():
        # Alert mail is the connector's own, not a relayed user's message: it may leave the office, if the
        # local server relays it.  The RCPT probe of the local targets asks the server and says so.
        findings.append(Finding(
            True, subject, f"alert mail goes to {to}, in {domain_of(to)}, which no recipient policy covers: "
            "the local server must relay it (its probe below says whether it accepts it)",
            "", "If the probe is refused (\"Relay access denied\"), allow the connector to relay on the local "
            "server, or send alerts to a local mailbox that forwards them."))
    if alerts.mail_from and normalize_address(alerts.mail_from) is None:
        findings.append(Finding(False, subject, f"mail_from {alerts.mail_from!r} is not an e-mail address",
                                "The alert mail's sender cannot be written.",
                                "Set [alerts] mail_from to an address, or leave it empty for postmaster@ the "
                                "first recipient policy's primary domain."))
    elif not alerts.mail_from and not config.policies:
        findings.append(Finding(True, subject, f"alert mail is sent from {alert_sender(config)}: no recipient policy "
                                "names a primary domain", "", "Set [alerts] mail_from to choose the sender."))
    return findings
