"""The configuration as the program sees it: frozen dataclasses and their vocabulary.

These dataclasses are the one home of every default value: a key the file
leaves out takes the default of its field here (see :mod:`.load`), and a new
account in the GUI starts from the same values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pop3gui.core.mail.local_domains import LocalDomains
from pop3gui.core.schedule import WeekHours

__all__ = [
    "ACCOUNT_KINDS", "AFTER_DELIVERY", "CONFIG_VERSION", "DEFAULT_ENVELOPE_HEADERS", "IMAP_ONLY_KEYS", "IMAP_PORTS",
    "LOG_LEVELS", "POP3_PORTS", "PROTOCOLS", "SECURITY_SMTP", "default_port",
    "AccountConfig", "AlertsConfig", "Config", "DeliveryConfig", "EventsConfig", "LoggingConfig", "PerformanceConfig",
    "RecipientPolicy", "RoutingRuleConfig", "ScheduleConfig", "SmtpConfig",
    "AUTH_METHODS", "SMTP_AUTH_METHODS", "OAUTH_KINDS", "SASL_MECHANISMS", "OAuthProviderConfig",
]

CONFIG_VERSION = 1
SECURITY_SMTP = ("none", "starttls", "tls")
ACCOUNT_KINDS = ("user", "global")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")

AUTH_METHODS = ("password", "apop", "oauth2")  # how an account logs in to its POP3 server
SMTP_AUTH_METHODS = ("password", "oauth2")  # how the connector logs in to the local server (with a username)
OAUTH_KINDS = ("microsoft", "google", "generic")
SASL_MECHANISMS = ("xoauth2", "oauthbearer")  # how a bearer token is presented to a POP3 server

POP3_PORTS = {"tls": 995, "starttls": 110, "none": 110}
"""The usual POP3 port of each security mode: an account's port when none is given."""

IMAP_PORTS = {"tls": 993, "starttls": 143, "none": 143}
"""The usual IMAP port of each security mode."""

PROTOCOLS = ("pop3", "imap")  # how an account's mailbox is reached
AFTER_DELIVERY = ("delete", "move", "keep")  # what becomes of an IMAP message once it is handled

IMAP_ONLY_KEYS = ("folders", "after_delivery", "move_to", "idle")
"""Account keys that mean something only for protocol = "imap"."""


def default_port(protocol: str, security: str) -> int:
    """The usual port of a protocol and security mode."""
    return (IMAP_PORTS if protocol == "imap" else POP3_PORTS)[security]


@dataclass(frozen=True)
class SmtpConfig:
    """The local mail server that receives downloaded mail."""

    host: str = "localhost"
    port: int = 25
    security: str = "none"
    verify_tls: bool = True
    username: str = ""
    timeout_s: float = 60.0
    ca_file: str = ""
    auth: str = "password"  # with a username: "password" (in the keyring) or "oauth2"
    oauth_provider: str = ""  # with auth = "oauth2": the [[oauth_provider]] that signs in


@dataclass(frozen=True)
class ScheduleConfig:
    """Automatic retrieval: every ``interval_min`` minutes inside the chosen ``hours`` of the week."""

    interval_min: int = 15
    enabled: bool = True
    hours: WeekHours = field(default_factory=WeekHours)  # the file's {mon = "7-19", ...}; a day left out: all day


@dataclass(frozen=True)
class AlertsConfig:
    """When the connector tells the admin that something needs them, and where.

    Each condition has its threshold here; 0 (or false) turns it off.  Alerts
    go to the desktop (the tray runner), to ``mail_to`` through the local
    server when it is set, and always to the event log: one when a condition
    starts, one when it ends.
    """

    mail_to: str = ""  # the admin's address; empty: no alert mail
    mail_from: str = ""  # the alert mail's sender; empty: postmaster@ the first recipient policy's primary domain
    desktop: bool = True  # notifications from the tray runner
    no_mail_hours: int = 24  # an account received nothing for this long, counted within its scheduled hours
    failed_cycles: int = 3  # an account failed this many cycles in a row
    quarantine_hours: int = 4  # a message sat in quarantine this long
    sign_in: bool = True  # an OAuth2 sign-in is needed
    policy_refusal: bool = True  # the local server refused a recipient for a policy reason


@dataclass(frozen=True)
class DeliveryConfig:
    undeliverable_to: str = ""
    max_message_kb: int = 25600
    # A quarantined message is removed this many days after it was quarantined (0: kept until the admin acts);
    # an alert lists it a day before, and it is never removed sooner than a day after that alert.
    quarantine_keep_days: int = 30


@dataclass(frozen=True)
class EventsConfig:
    """How much event history the event store keeps: pruned a bounded step after every cycle."""

    keep_days: int = 90  # events older than this are removed; 0: no age limit
    max_mb: int = 200  # the oldest events go while the store holds more than this; 0: no size limit


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"


@dataclass(frozen=True)
class PerformanceConfig:
    """How much work runs at once; the defaults suit a small office server."""

    max_parallel_accounts: int = 4  # mailboxes downloaded side by side
    smtp_connections: int = 2  # per mailbox, to the local server
    pop3_pipeline: int = 32  # RETR commands in flight when the server offers PIPELINING
    queue_messages: int = 8  # downloaded messages waiting for submission, per mailbox


@dataclass(frozen=True)
class RecipientPolicy:
    """Which e-mail domains are local, like an Exchange recipient policy.

    A policy in the file without a name is called "Policy <n>", and without a
    primary its first domain is the primary.
    """

    name: str
    domains: tuple[str, ...] = ()
    primary: str = ""


@dataclass(frozen=True)
class AccountConfig:
    """One ISP mailbox: a user mailbox (one recipient) or a global catch-all.

    The port given here goes with the default security; an account in the
    file without a port gets the usual one of its protocol and security
    (:func:`default_port`).  An IMAP account fetches from ``folders``; what
    becomes of a handled message is ``after_delivery`` ("delete", "move" to
    ``move_to``, or "keep"), and *when* is what ``leave_on_server`` and
    ``delete_after_days`` say, as for POP3.
    """

    name: str
    host: str
    username: str
    protocol: str = "pop3"
    port: int = POP3_PORTS["tls"]
    security: str = "tls"
    verify_tls: bool = True
    ca_file: str = ""
    kind: str = "user"
    deliver_to: str = ""
    envelope_headers: tuple[str, ...] = DEFAULT_ENVELOPE_HEADERS
    leave_on_server: bool = False
    delete_after_days: int = 0
    enabled: bool = True
    timeout_s: float = 60.0
    auth: str = "password"  # "password", "apop" or "oauth2"
    oauth_provider: str = ""  # with auth = "oauth2": the [[oauth_provider]] that signs in
    sasl: str = "xoauth2"  # with auth = "oauth2": how the token is presented
    folders: tuple[str, ...] = ("INBOX",)  # IMAP: the folders fetched from
    after_delivery: str = "delete"  # IMAP: "delete", "move" or "keep"
    move_to: str = ""  # IMAP, with after_delivery = "move": created if missing
    idle: bool = True  # IMAP: wait for new mail with IDLE between cycles (run and the tray)


@dataclass(frozen=True)
class OAuthProviderConfig:
    """An app registration at a sign-in service; several accounts may share one.

    ``kind`` decides the endpoints and default scopes: "microsoft" (Entra ID,
    with ``tenant``), "google", or "generic" (the three URLs given here).
    ``app_only`` signs in as the app itself (client credentials, the secret in
    the keyring) instead of as a user.
    """

    name: str
    client_id: str
    kind: str = "generic"
    tenant: str = "common"
    authorize_url: str = ""
    token_url: str = ""
    device_url: str = ""
    scopes: tuple[str, ...] = ()
    app_only: bool = False


@dataclass(frozen=True)
class RoutingRuleConfig:
    """Text in To/Cc (or Subject) of a global mailbox's mail -> a local address."""

    account: str
    contains: str
    deliver_to: str
    field: str = "to-cc"


@dataclass(frozen=True)
class Config:
    version: int = CONFIG_VERSION
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    policies: tuple[RecipientPolicy, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    rules: tuple[RoutingRuleConfig, ...] = ()
    oauth_providers: tuple[OAuthProviderConfig, ...] = ()

    def account(self, name: str) -> AccountConfig:
        for acc in self.accounts:
            if acc.name == name:
                return acc
        raise KeyError(name)

    def oauth_provider(self, name: str) -> OAuthProviderConfig:
        for provider in self.oauth_providers:
            if provider.name == name:
                return provider
        raise KeyError(name)

    def rules_for(self, account: str) -> tuple[RoutingRuleConfig, ...]:
        return tuple(r for r in self.rules if r.account == account)

    def local_domains(self) -> tuple[str, ...]:
        """Every domain of every recipient policy, in ASCII form, deduped.

        A name that is not a domain (half typed in a draft) is left out.
        """
        domains = (d for policy in self.policies for d in policy.domains)
        return tuple(LocalDomains(domains, skip_invalid=True))
