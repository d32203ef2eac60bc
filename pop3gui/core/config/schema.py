"""The connector's configuration: one TOML file, validated whole, saved atomically.

The file format is a user-facing contract documented in README.md.  Loading
turns every mistake into one :class:`ConfigError` naming the file, the key and
what is wrong; nothing here ever prints a traceback at the user.
"""

from __future__ import annotations

import difflib
import os
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from pop3gui.core.errors import ConfigError
from pop3gui.core.state.paths import ensure_private_dir
from pop3gui.core.mail.recipients import normalize_address, normalize_domain

CONFIG_VERSION = 1
SECURITY_POP3 = ("tls", "starttls", "none")
SECURITY_SMTP = ("none", "starttls", "tls")
ACCOUNT_KINDS = ("user", "global")
RULE_FIELDS = ("to-cc", "subject")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")


@dataclass(frozen=True)
class SmtpConfig:
    """The local mail server that receives downloaded mail."""

    host: str = "localhost"
    port: int = 25
    security: str = "none"
    verify_tls: bool = True
    username: str = ""
    timeout_s: float = 60
    ca_file: str = ""


@dataclass(frozen=True)
class ScheduleConfig:
    interval_min: int = 15
    enabled: bool = True


@dataclass(frozen=True)
class DeliveryConfig:
    undeliverable_to: str = ""
    max_message_kb: int = 25600


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
    """Which e-mail domains are local, like an Exchange recipient policy."""

    name: str
    domains: tuple[str, ...]
    primary: str = ""


@dataclass(frozen=True)
class AccountConfig:
    """One ISP mailbox: a user mailbox (one recipient) or a global catch-all."""

    name: str
    host: str
    username: str
    port: int = 995
    security: str = "tls"
    verify_tls: bool = True
    ca_file: str = ""
    kind: str = "user"
    deliver_to: str = ""
    envelope_headers: tuple[str, ...] = DEFAULT_ENVELOPE_HEADERS
    leave_on_server: bool = False
    delete_after_days: int = 0
    enabled: bool = True
    timeout_s: float = 60


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
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    performance: PerformanceConfig = field(default_factory=PerformanceConfig)
    policies: tuple[RecipientPolicy, ...] = ()
    accounts: tuple[AccountConfig, ...] = ()
    rules: tuple[RoutingRuleConfig, ...] = ()

    def account(self, name: str) -> AccountConfig:
        for acc in self.accounts:
            if acc.name == name:
                return acc
        raise KeyError(name)

    def rules_for(self, account: str) -> tuple[RoutingRuleConfig, ...]:
        return tuple(r for r in self.rules if r.account == account)

    def local_domains(self) -> tuple[str, ...]:
        """Every domain of every recipient policy, in ASCII form, deduped."""
        seen: dict[str, None] = {}
        for policy in self.policies:
            for domain in policy.domains:
                key = normalize_domain(domain)
                if key:
                    seen.setdefault(key, None)
        return tuple(seen)


@dataclass(frozen=True)
class PolicyWarning:
    """An address the local server will likely refuse: no recipient policy covers it."""

    where: str  # in words, e.g. "The local recipient of account 'alice'"
    address: str
    domain: str

    @property
    def text(self) -> str:
        return (
            f"{self.where} is {self.address}, but no recipient policy covers the domain "
            f"{self.domain}: the local server will refuse it (550/554 5.7.1, the relay "
            "refusal that made the SBS POP3 Connector lose mail)."
        )

    @property
    def fix(self) -> str:
        return (
            f"Add {self.domain} to a recipient policy (and to the local server's accepted "
            f"domains), or change {self.where[:1].lower()}{self.where[1:]} to an address in a local domain."
        )


def policy_warnings(config: Config) -> list[PolicyWarning]:
    """Every configured target whose domain no recipient policy covers (the KB's failure)."""
    local = set(config.local_domains())
    targets: list[tuple[str, str]] = []
    for acc in config.accounts:
        if acc.kind == "user":
            targets.append((f"The local recipient of account '{acc.name}'", acc.deliver_to))
    for i, rule in enumerate(config.rules):
        targets.append((f"The target of routing rule {i + 1} ('{rule.contains}')", rule.deliver_to))
    if config.delivery.undeliverable_to:
        targets.append(("The mailbox for undeliverable mail", config.delivery.undeliverable_to))
    warnings = []
    for where, address in targets:
        domain = address.rpartition("@")[2]
        if (normalize_domain(domain) or domain.lower()) not in local:
            warnings.append(PolicyWarning(where, address, domain))
    return warnings


# --- loading -----------------------------------------------------------------

T = TypeVar("T")


class _Table:
    """Reads one TOML table, remembering where it came from for error messages."""

    def __init__(self, data: Any, path: str, key: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(
                f"must be a table, not {_type_name(data)}",
                path=path,
                key=key,
                fix="See README.md, section Configuration, for the layout of the file.",
            )
        self.data: dict[str, Any] = data
        self.path = path
        self.key = key

    def _where(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, message: str, fix: str = "") -> ConfigError:
        return ConfigError(message, path=self.path, key=self._where(name), fix=fix)

    def check_known(self, allowed: list[str]) -> None:
        for name in self.data:
            if name not in allowed:
                close = difflib.get_close_matches(name, allowed, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.error(
                    name,
                    "unknown key",
                    fix=f"{hint}Known keys here: {', '.join(allowed)}.",
                )

    def get(self, name: str, kind: type[T], default: T, check: Callable[[T], str] | None = None) -> T:
        if name not in self.data:
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(
                name,
                f"must be {_type_name_of(kind)}, not {_type_name(value)} ({_show(value)})",
            )
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(name, problem)
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(name, str, default)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}, not {_show(value)}")
        return value

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(name, list, list(default))
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.error(name, f"must be a list of non-empty strings, found {_show(item)}")
        return tuple(value)

    def required_str(self, name: str) -> str:
        if name not in self.data:
            raise self.error(name, "is missing", fix=f"Add {name} = \"...\" to this table.")
        return self.get(name, str, "", _non_empty)


def _show(value: Any) -> str:
    """A value for an error message: short, and safe for numbers with thousands of digits."""
    try:
        text = repr(value)
    except ValueError:
        return "a number with thousands of digits"
    return text if len(text) <= 80 else text[:77] + "..."


def _describe_error(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]


def _type_name_of(kind: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list", dict: "a table"}.get(kind, kind.__name__)


def _type_name(value: Any) -> str:
    return _type_name_of(type(value))


def _non_empty(value: str) -> str:
    return "must not be empty" if not value.strip() else ""


def _port(value: int) -> str:
    return "" if 1 <= value <= 65535 else f"must be a port number between 1 and 65535, not {_show(value)}"


def _address(value: str) -> str:
    if not value:
        return ""
    return "" if normalize_address(value) else f"is not an e-mail address: {_show(value)}"


def _domain(value: str) -> str:
    return "" if normalize_domain(value) else f"is not a domain name: {_show(value)}"


def _name(value: str) -> str:
    if not value.strip():
        return "must not be empty"
    if any(ord(c) < 32 for c in value) or len(value) > 100:
        return "must be at most 100 printable characters"
    return ""


def _range(low: int, high: int) -> Callable[[int], str]:
    def check(value: int) -> str:
        return "" if low <= value <= high else f"must be between {low} and {high}, not {_show(value)}"

    return check


def _timeout(value: float) -> str:
    """A timeout in seconds: positive and finite (an endless wait would hang the connector)."""
    return "" if 0 < value <= 3600 else f"must be a number of seconds between 0 and 3600, not {_show(value)}"


def _list_of_tables(root: _Table, name: str) -> list[_Table]:
    value = root.data.get(name, [])
    if not isinstance(value, list):
        raise root.error(name, f"must be an array of tables ([[{name}]]), not {_type_name(value)}")
    return [_Table(item, root.path, f"{name}[{i + 1}]") for i, item in enumerate(value)]


def _allowed(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def parse_config(data: Mapping[str, Any], path: str = "<config>") -> Config:
    """Validate a parsed TOML document into a :class:`Config` (raises ConfigError)."""
    root = _Table(dict(data), path, "")
    root.check_known(["version", "smtp", "schedule", "delivery", "logging",
                      "recipient_policy", "account", "routing_rule", "performance"])
    version = root.get("version", int, CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise root.error("version", f"this pop3gui reads version {CONFIG_VERSION}, the file says {version}",
                         fix="Use a pop3gui release that matches the file, or recreate the file.")

    t = _Table(root.data.get("smtp", {}), path, "smtp")
    t.check_known(_allowed(SmtpConfig))
    smtp = SmtpConfig(
        host=t.get("host", str, "localhost", _non_empty),
        port=t.get("port", int, 25, _port),
        security=t.choice("security", SECURITY_SMTP, "none"),
        verify_tls=t.get("verify_tls", bool, True),
        username=t.get("username", str, ""),
        timeout_s=t.get("timeout_s", float, 60.0, _timeout),
        ca_file=t.get("ca_file", str, ""),
    )

    t = _Table(root.data.get("schedule", {}), path, "schedule")
    t.check_known(_allowed(ScheduleConfig))
    schedule = ScheduleConfig(
        interval_min=t.get("interval_min", int, 15, _range(1, 1440)),
        enabled=t.get("enabled", bool, True),
    )

    t = _Table(root.data.get("delivery", {}), path, "delivery")
    t.check_known(_allowed(DeliveryConfig))
    delivery = DeliveryConfig(
        undeliverable_to=t.get("undeliverable_to", str, "", _address),
        max_message_kb=t.get("max_message_kb", int, 25600, _range(1, 4 * 1024 * 1024)),
    )

    t = _Table(root.data.get("logging", {}), path, "logging")
    t.check_known(_allowed(LoggingConfig))
    logging_cfg = LoggingConfig(level=t.choice("level", LOG_LEVELS, "info"))

    t = _Table(root.data.get("performance", {}), path, "performance")
    t.check_known(_allowed(PerformanceConfig))
    performance = PerformanceConfig(
        max_parallel_accounts=t.get("max_parallel_accounts", int, 4, _range(1, 64)),
        smtp_connections=t.get("smtp_connections", int, 2, _range(1, 16)),
        pop3_pipeline=t.get("pop3_pipeline", int, 32, _range(1, 256)),
        queue_messages=t.get("queue_messages", int, 8, _range(1, 1024)),
    )

    policies: list[RecipientPolicy] = []
    for t in _list_of_tables(root, "recipient_policy"):
        t.check_known(_allowed(RecipientPolicy))
        domains = t.strings("domains", ())
        for d in domains:
            if not normalize_domain(d):
                raise t.error("domains", f"{d!r} is not a domain name")
        primary = t.get("primary", str, domains[0] if domains else "")
        if primary and (normalize_domain(primary) not in {normalize_domain(d) for d in domains}):
            raise t.error("primary", f"{primary!r} is not one of this policy's domains",
                          fix="Set primary to one of the domains listed in domains.")
        policies.append(RecipientPolicy(name=t.get("name", str, f"Policy {len(policies) + 1}", _name),
                                        domains=domains, primary=primary))

    accounts: list[AccountConfig] = []
    for t in _list_of_tables(root, "account"):
        t.check_known(_allowed(AccountConfig))
        name = t.required_str("name")
        if _name(name):
            raise t.error("name", _name(name))
        if any(a.name == name for a in accounts):
            raise t.error("name", f"another account is already called {name!r}",
                          fix="Give every account a unique name (it is also its keyring key).")
        security = t.choice("security", SECURITY_POP3, "tls")
        kind = t.choice("kind", ACCOUNT_KINDS, "user")
        deliver_to = t.get("deliver_to", str, "", _address)
        if kind == "user" and not deliver_to:
            raise t.error("deliver_to", "is missing: a user mailbox delivers everything to one local address",
                          fix='Add deliver_to = "someone@your-domain" or set kind = "global".')
        accounts.append(AccountConfig(
            name=name,
            host=t.required_str("host"),
            port=t.get("port", int, 995 if security == "tls" else 110, _port),
            security=security,
            verify_tls=t.get("verify_tls", bool, True),
            ca_file=t.get("ca_file", str, ""),
            username=t.required_str("username"),
            kind=kind,
            deliver_to=deliver_to,
            envelope_headers=t.strings("envelope_headers", DEFAULT_ENVELOPE_HEADERS),
            leave_on_server=t.get("leave_on_server", bool, False),
            delete_after_days=t.get("delete_after_days", int, 0, _range(0, 36500)),
            enabled=t.get("enabled", bool, True),
            timeout_s=t.get("timeout_s", float, 60.0, _timeout),
        ))

    rules: list[RoutingRuleConfig] = []
    by_name = {a.name: a for a in accounts}
    for t in _list_of_tables(root, "routing_rule"):
        t.check_known(_allowed(RoutingRuleConfig))
        account = t.required_str("account")
        if account not in by_name:
            raise t.error("account", f"no account is called {account!r}",
                          fix=f"Use one of: {', '.join(by_name) or '(no accounts yet)'}.")
        if by_name[account].kind != "global":
            raise t.error("account", f"account {account!r} is a user mailbox; routing rules apply to global mailboxes",
                          fix=f'Set kind = "global" on account {account!r} or remove this rule.')
        deliver_to = t.required_str("deliver_to")
        if _address(deliver_to):
            raise t.error("deliver_to", _address(deliver_to))
        rules.append(RoutingRuleConfig(
            account=account,
            field=t.choice("field", RULE_FIELDS, "to-cc"),
            contains=t.required_str("contains"),
            deliver_to=deliver_to,
        ))

    return Config(version=version, smtp=smtp, schedule=schedule, delivery=delivery, logging=logging_cfg,
                  performance=performance,
                  policies=tuple(policies), accounts=tuple(accounts), rules=tuple(rules))


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
        raise ConfigError(f"cannot be read as TOML: {_describe_error(exc)}", path=str(path),
                          fix="Look for an absurdly long number or deeply nested brackets.") from None
    return parse_config(data, str(path))


# --- saving ------------------------------------------------------------------


def config_to_dict(config: Config) -> dict[str, Any]:
    """The TOML document for a config, in the documented key names and order."""

    def plain(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(obj):
            if f.name in skip:
                continue
            value = getattr(obj, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    return {
        "version": config.version,
        "smtp": plain(config.smtp),
        "schedule": plain(config.schedule),
        "delivery": plain(config.delivery),
        "logging": plain(config.logging),
        "performance": plain(config.performance),
        "recipient_policy": [plain(p) for p in config.policies],
        "account": [plain(a) for a in config.accounts],
        "routing_rule": [plain(r) for r in config.rules],
    }


def save_config(config: Config, path: Path) -> None:
    """Write the whole file atomically (temp file, fsync, rename), mode 0600.

    The config is validated before anything touches the disk, so the file on
    disk is only ever whole and valid.
    """
    document = config_to_dict(config)
    parse_config(document, str(path))
    text = tomli_w.dumps(document)
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600) if hasattr(os, "fchmod") else None
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable; folders cannot be opened this way on Windows."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "AccountConfig", "Config", "DeliveryConfig", "LoggingConfig", "PerformanceConfig", "PolicyWarning", "RecipientPolicy",
    "RoutingRuleConfig", "ScheduleConfig", "SmtpConfig", "load_config", "parse_config", "policy_warnings",
    "save_config", "config_to_dict",
]
