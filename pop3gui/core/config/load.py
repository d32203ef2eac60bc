"""Reading the configuration file: TOML in, a validated :class:`Config` out.

The file format is a user-facing contract documented in README.md.  Loading
turns every mistake into one :class:`ConfigError` naming the file, the key,
what is wrong and how to fix it; nothing here ever prints a traceback at the
user.  A key the file leaves out takes the default of its dataclass field in
:mod:`.model`, so each default is written in one place.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit
from typing import Any

from pop3gui.core.config.model import (
    ACCOUNT_KINDS,
    AFTER_DELIVERY,
    AUTH_METHODS,
    IMAP_ONLY_KEYS,
    PROTOCOLS,
    OAUTH_KINDS,
    SASL_MECHANISMS,
    SMTP_AUTH_METHODS,
    OAuthProviderConfig,
    CONFIG_VERSION,
    LOG_LEVELS,
    SECURITY_SMTP,
    AccountConfig,
    AlertsConfig,
    Config,
    DeliveryConfig,
    EventsConfig,
    LoggingConfig,
    PerformanceConfig,
    RecipientPolicy,
    RoutingRuleConfig,
    ScheduleConfig,
    SmtpConfig,
    default_port,
)
from pop3gui.core.config.table import (
    Table,
    check_address,
    check_name,
    check_non_empty,
    check_port,
    check_range,
    check_timeout,
    describe_error,
    list_of_tables,
    show,
    sub_table,
)
from pop3gui.core.errors import ConfigError
from pop3gui.core.mail.addresses import normalize_domain
from pop3gui.core.mail.routing import RULE_FIELDS
from pop3gui.core.pop3.transport import SECURITY_MODES
from pop3gui.core.schedule import HoursError, WeekHours

__all__ = ["load_config", "parse_config"]

def parse_config(data: Mapping[str, Any], path: str = "<config>") -> Config:
    """Validate a parsed TOML document into a :class:`Config` (raises ConfigError)."""
    root = Table(dict(data), path, "", Config)
    root.check_known(["version", "smtp", "schedule", "alerts", "delivery", "events", "logging",
                      "recipient_policy", "account", "routing_rule", "performance", "oauth_provider"])
    version = root.get("version", int)
    if version != CONFIG_VERSION:
        raise root.error("version", f"this pop3gui reads version {CONFIG_VERSION}, the file says {version}",
                         fix="Use a pop3gui release that matches the file, or recreate the file.")

    t = sub_table(root, "smtp", SmtpConfig)
    smtp = SmtpConfig(
        host=t.get("host", str, check_non_empty),
        port=t.get("port", int, check_port),
        security=t.choice("security", SECURITY_SMTP),
        verify_tls=t.get("verify_tls", bool),
        username=t.get("username", str),
        timeout_s=t.get("timeout_s", float, check_timeout),
        ca_file=t.get("ca_file", str),
        auth=t.choice("auth", SMTP_AUTH_METHODS),
        oauth_provider=t.get("oauth_provider", str),
    )

    t = sub_table(root, "schedule", ScheduleConfig)
    schedule = ScheduleConfig(
        interval_min=t.get("interval_min", int, check_range(1, 1440)),
        enabled=t.get("enabled", bool),
        hours=_parse_hours(t),
    )

    t = sub_table(root, "alerts", AlertsConfig)
    alerts = AlertsConfig(
        mail_to=t.get("mail_to", str, check_address),
        mail_from=t.get("mail_from", str, check_address),
        desktop=t.get("desktop", bool),
        no_mail_hours=t.get("no_mail_hours", int, check_range(0, 24 * 366)),
        failed_cycles=t.get("failed_cycles", int, check_range(0, 10_000)),
        quarantine_hours=t.get("quarantine_hours", int, check_range(0, 24 * 366)),
        sign_in=t.get("sign_in", bool),
        policy_refusal=t.get("policy_refusal", bool),
    )

    t = sub_table(root, "delivery", DeliveryConfig)
    delivery = DeliveryConfig(
        undeliverable_to=t.get("undeliverable_to", str, check_address),
        max_message_kb=t.get("max_message_kb", int, check_range(1, 4 * 1024 * 1024)),
        quarantine_keep_days=_days(t, "quarantine_keep_days", "Set how many days quarantined mail is kept, e.g. "
                                   "quarantine_keep_days = 30; 0 keeps it until you resubmit, export or delete it."),
    )

    t = sub_table(root, "events", EventsConfig)
    max_mb = t.get("max_mb", int)
    if problem := _check_store_cap(max_mb):
        raise t.error("max_mb", problem, fix="Set max_mb = 200 (or the megabytes the event history may take), or "
                      "0 to bound it by keep_days only.")
    events = EventsConfig(
        keep_days=_days(t, "keep_days", "Set how many days of event history to keep, e.g. keep_days = 90; 0 keeps "
                        "events without an age limit (max_mb still bounds the store)."),
        max_mb=max_mb,
    )

    t = sub_table(root, "logging", LoggingConfig)
    logging_cfg = LoggingConfig(level=t.choice("level", LOG_LEVELS))

    t = sub_table(root, "performance", PerformanceConfig)
    performance = PerformanceConfig(
        max_parallel_accounts=t.get("max_parallel_accounts", int, check_range(1, 64)),
        smtp_connections=t.get("smtp_connections", int, check_range(1, 16)),
        pop3_pipeline=t.get("pop3_pipeline", int, check_range(1, 256)),
        queue_messages=t.get("queue_messages", int, check_range(1, 1024)),
    )

    policies = _parse_policies(root)
    providers = _parse_oauth_providers(root)
    accounts = _parse_accounts(root)
    rules = _parse_rules(root, accounts)
    _check_sign_in(root, smtp, accounts, providers)
    return Config(version=version, smtp=smtp, schedule=schedule, alerts=alerts, delivery=delivery, events=events,
                  logging=logging_cfg,
                  performance=performance, policies=policies, accounts=accounts, rules=rules,
                  oauth_providers=providers)


def _parse_hours(t: Table) -> WeekHours:
    """``hours = { mon = "7-19", sat = "9-12", sun = "" }``; a day left out runs all day."""
    if "hours" not in t.data:
        return WeekHours()
    value = t.data["hours"]
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise t.error("hours", f"must be a table of day = \"hours\", not {show(value)}",
                      fix='Write for example hours = { mon = "7-19", sat = "9-12", sun = "" }.')
    try:
        return WeekHours.from_table(value)
    except HoursError as exc:
        raise t.error("hours", str(exc), fix='Write each day as hours from-to, e.g. mon = "7-19" (7:00 until '
                      '19:00), several ranges with commas ("7-12,13-19"), "" for no retrieval that day; a day '
                      'left out runs all day.') from None


def _parse_oauth_providers(root: Table) -> tuple[OAuthProviderConfig, ...]:
    providers: list[OAuthProviderConfig] = []
    for t in list_of_tables(root, "oauth_provider", OAuthProviderConfig):
        t.check_known()
        provider_name = t.required_str("name")
        if any(p.name == provider_name for p in providers):
            raise t.error("name", f"another oauth_provider is already called {provider_name!r}",
                          fix="Give every provider a unique name; accounts name it in oauth_provider.")
        kind = t.choice("kind", OAUTH_KINDS)
        urls = {key: t.get(key, str) for key in ("authorize_url", "token_url", "device_url")}
        for key, url in urls.items():
            if url and not _safe_url(url):
                raise t.error(key, f"must be an https:// address, not {url!r}",
                              fix="Tokens and codes travel over this address: use the provider's https URL.")
        if kind == "generic" and not urls["token_url"]:
            raise t.error("token_url", "is missing: a generic provider names its endpoints",
                          fix='Add token_url and authorize_url (and device_url for sign-in without a browser), '
                          'or use kind = "microsoft" or "google".')
        providers.append(OAuthProviderConfig(
            name=provider_name, client_id=t.required_str("client_id"), kind=kind,
            tenant=t.get("tenant", str, check_non_empty), scopes=t.strings("scopes"), app_only=t.get("app_only", bool),
            **urls,
        ))
    return tuple(providers)


def _safe_url(url: str) -> bool:
    """https, or http to this machine itself (a lab or test provider): codes and tokens travel here."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1") and not parts.username


def _check_sign_in(root: Table, smtp: SmtpConfig, accounts: tuple[AccountConfig, ...],
                   providers: tuple[OAuthProviderConfig, ...]) -> None:
    """Every account (and [smtp]) that signs in with OAuth2 names a provider of the file."""
    known = {p.name for p in providers}
    users = [(f"account[{i + 1}]", a.auth, a.oauth_provider) for i, a in enumerate(accounts)]
    users.append(("smtp", smtp.auth if smtp.username else "password", smtp.oauth_provider))
    for where, auth, provider in users:
        if auth != "oauth2":
            continue
        if provider not in known:
            what = f"names {provider!r}, which no [[oauth_provider]] is called" if provider else "is missing"
            raise ConfigError(f"oauth_provider {what}", path=root.path, key=f"{where}.oauth_provider",
                              fix=f"Use one of: {', '.join(sorted(known))}." if known else
                              "Add an [[oauth_provider]] table with its name, kind and client_id.")




def _parse_policies(root: Table) -> tuple[RecipientPolicy, ...]:
    policies: list[RecipientPolicy] = []
    for t in list_of_tables(root, "recipient_policy", RecipientPolicy):
        t.check_known()
        domains = t.strings("domains")
        for d in domains:
            if not normalize_domain(d):
                raise t.error("domains", f"{d!r} is not a domain name")
        primary = t.get("primary", str, default=domains[0] if domains else "")
        if primary and (normalize_domain(primary) not in {normalize_domain(d) for d in domains}):
            raise t.error("primary", f"{primary!r} is not one of this policy's domains",
                          fix="Set primary to one of the domains listed in domains.")
        policies.append(RecipientPolicy(name=t.get("name", str, check_name, default=f"Policy {len(policies) + 1}"),
                                        domains=domains, primary=primary))
    return tuple(policies)


def _parse_accounts(root: Table) -> tuple[AccountConfig, ...]:
    accounts: list[AccountConfig] = []
    for t in list_of_tables(root, "account", AccountConfig):
        t.check_known()
        name = t.required_str("name")
        if check_name(name):
            raise t.error("name", check_name(name))
        if any(a.name == name for a in accounts):
            raise t.error("name", f"another account is already called {name!r}",
                          fix="Give every account a unique name (it is also its keyring key).")
        security = t.choice("security", SECURITY_MODES)
        kind = t.choice("kind", ACCOUNT_KINDS)
        deliver_to = t.get("deliver_to", str, check_address)
        if kind == "user" and not deliver_to:
            raise t.error("deliver_to", "is missing: a user mailbox delivers everything to one local address",
                          fix='Add deliver_to = "someone@your-domain" or set kind = "global".')
        protocol = t.choice("protocol", PROTOCOLS)
        auth = t.choice("auth", AUTH_METHODS)
        if protocol == "imap":
            folders, after_delivery, move_to = _imap_settings(t, auth)
        else:
            _no_imap_settings(t)
            folders, after_delivery, move_to = t.default("folders"), "delete", ""
        accounts.append(AccountConfig(
            name=name,
            host=t.required_str("host"),
            protocol=protocol,
            port=t.get("port", int, check_port, default=default_port(protocol, security)),
            security=security,
            verify_tls=t.get("verify_tls", bool),
            ca_file=t.get("ca_file", str),
            username=t.required_str("username"),
            kind=kind,
            deliver_to=deliver_to,
            envelope_headers=t.strings("envelope_headers"),
            leave_on_server=t.get("leave_on_server", bool),
            delete_after_days=t.get("delete_after_days", int, check_range(0, 36500)),
            enabled=t.get("enabled", bool),
            timeout_s=t.get("timeout_s", float, check_timeout),
            auth=auth,
            oauth_provider=t.get("oauth_provider", str),
            sasl=t.choice("sasl", SASL_MECHANISMS),
            folders=folders,
            after_delivery=after_delivery,
            move_to=move_to,
            idle=t.get("idle", bool),
        ))
    return tuple(accounts)


def _imap_settings(t: Table, auth: str) -> tuple[tuple[str, ...], str, str]:
    """An IMAP account's folders, what becomes of a handled message, and where "move" puts it."""
    if auth == "apop":
        raise t.error("auth", "apop is a POP3 login; an IMAP account logs in with a password or OAuth2",
                      fix='Set auth = "password" (or "oauth2" for a hosted mailbox).')
    folders = t.strings("folders")
    if not folders:
        raise t.error("folders", "is empty: an IMAP account fetches from at least one folder",
                      fix='Set folders = ["INBOX"], or the folders to fetch from.')
    for folder in folders:
        if problem := check_folder(folder):
            raise t.error("folders", f"{folder!r} {problem}", fix="Use the folder names the server lists (Test "
                          "in the account dialog shows them).")
    if len({f.casefold() for f in folders}) != len(folders):
        raise t.error("folders", "names a folder twice", fix="List every folder once.")
    after_delivery = t.choice("after_delivery", AFTER_DELIVERY)
    move_to = t.get("move_to", str)
    if after_delivery == "move":
        if not move_to.strip():
            raise t.error("move_to", 'is missing: after_delivery = "move" needs the folder to move handled mail to',
                          fix='Add move_to = "Delivered" (it is created if missing), or use after_delivery = '
                          '"delete" or "keep".')
        if problem := check_folder(move_to):
            raise t.error("move_to", f"{move_to!r} {problem}")
        if move_to.casefold() in {f.casefold() for f in folders}:
            raise t.error("move_to", f"{move_to!r} is also one of the folders fetched from, so moved mail would "
                          "be fetched again", fix="Move handled mail to a folder that is not in folders.")
    return folders, after_delivery, move_to


def _no_imap_settings(t: Table) -> None:
    """IMAP-only keys on a POP3 account are a mistake worth saying, unless they keep their defaults."""
    for key in IMAP_ONLY_KEYS:
        default = t.default(key)
        if key != "idle" and key in t.data and t.data[key] != (list(default) if isinstance(default, tuple) else default):
            raise t.error(key, "applies only to IMAP accounts; this account uses POP3",
                          fix='Set protocol = "imap" (POP3 has no folders) or remove the key.')


def check_folder(name: str) -> str:
    """What is wrong with an IMAP folder name, or ""."""
    if not name.strip():
        return "is empty"
    if any(ch in name for ch in "\r\n\0"):
        return "holds a line break or NUL"
    if len(name.encode()) > 512:
        return "is longer than 512 bytes"
    return ""


def _parse_rules(root: Table, accounts: tuple[AccountConfig, ...]) -> tuple[RoutingRuleConfig, ...]:
    rules: list[RoutingRuleConfig] = []
    by_name = {a.name: a for a in accounts}
    for t in list_of_tables(root, "routing_rule", RoutingRuleConfig):
        t.check_known()
        account = t.required_str("account")
        if account not in by_name:
            raise t.error("account", f"no account is called {account!r}",
                          fix=f"Use one of: {', '.join(by_name) or '(no accounts yet)'}.")
        if by_name[account].kind != "global":
            raise t.error("account", f"account {account!r} is a user mailbox; routing rules apply to global mailboxes",
                          fix=f'Set kind = "global" on account {account!r} or remove this rule.')
        deliver_to = t.required_str("deliver_to")
        if check_address(deliver_to):
            raise t.error("deliver_to", check_address(deliver_to))
        rules.append(RoutingRuleConfig(
            account=account,
            field=t.choice("field", RULE_FIELDS),
            contains=t.required_str("contains"),
            deliver_to=deliver_to,
        ))
    return tuple(rules)


def load_config(path: Path) -> Config:
    """Read and validate the file; every problem is one ConfigError naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "the configuration file does not exist",
            path=str(path),
            cause="pop3gui has not been set up on this machine yet, or --config names the wrong file.",
            fix="Create it (see README.md, section Configuration, or start from resources/example-config.toml), "
            "or pass --config PATH.",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(path),
                          fix="Check the file's permissions.") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text (byte {exc.start})", path=str(path),
                          fix="Save the file as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"is not valid TOML: {exc}", path=str(path),
                          fix="Correct the syntax at the position shown.") from None
    except (ValueError, RecursionError) as exc:  # a number with thousands of digits, runaway nesting
        raise ConfigError(f"cannot be read as TOML: {describe_error(exc)}", path=str(path),
                          fix="Look for an absurdly long number or deeply nested brackets.") from None
    return parse_config(data, str(path))


def _days(t: Table, key: str, fix: str) -> int:
    """A number of days to keep something: 0 (no limit) up to a hundred years."""
    value = t.get(key, int)
    if problem := check_range(0, 36500)(value):
        raise t.error(key, problem, fix=fix)
    return value


MIN_EVENT_STORE_MB = 10
"""A smaller cap would keep too few events to read back a day of a busy office."""


def _check_store_cap(value: int) -> str:
    """[events] max_mb: 0 (no size limit) or a cap the store can keep a useful history in."""
    if value == 0 or MIN_EVENT_STORE_MB <= value <= 1024 * 1024:
        return ""
    return (f"must be 0 (no size limit) or between {MIN_EVENT_STORE_MB} and {1024 * 1024} MB, not {show(value)}; "
            "the oldest events are removed while the event store is bigger")
