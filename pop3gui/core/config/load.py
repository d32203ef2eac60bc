"""Reading the configuration file: TOML in, a validated :class:`Config` out.

The file format is a user-facing contract documented in README.md.  Loading
turns every mistake into one :class:`ConfigError` naming the file, the key,
what is wrong and how to fix it; nothing here ever prints a traceback at the
user.  A key the file leaves out takes the default of its dataclass field in
:mod:`.model`, so each default is written in one place.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, TypeVar

from pop3gui.core.config.model import (
    ACCOUNT_KINDS,
    CONFIG_VERSION,
    LOG_LEVELS,
    POP3_PORTS,
    SECURITY_SMTP,
    AccountConfig,
    Config,
    DeliveryConfig,
    LoggingConfig,
    PerformanceConfig,
    RecipientPolicy,
    RoutingRuleConfig,
    ScheduleConfig,
    SmtpConfig,
)
from pop3gui.core.errors import ConfigError
from pop3gui.core.mail.addresses import normalize_address, normalize_domain
from pop3gui.core.mail.routing import RULE_FIELDS
from pop3gui.core.pop3.transport import SECURITY_MODES

__all__ = ["load_config", "parse_config"]

T = TypeVar("T")


class _Table:
    """Reads one TOML table into the fields of one dataclass, remembering where it came from."""

    def __init__(self, data: Any, path: str, key: str, model: type[Any]) -> None:
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
        self.fields = {f.name: f for f in fields(model)}

    def _where(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, message: str, fix: str = "") -> ConfigError:
        return ConfigError(message, path=self.path, key=self._where(name), fix=fix)

    def check_known(self, allowed: list[str] | None = None) -> None:
        """Refuse a key that is not *allowed* (by default: the model's fields), suggesting the closest."""
        known = list(self.fields) if allowed is None else allowed
        for name in self.data:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.error(
                    name,
                    "unknown key",
                    fix=f"{hint}Known keys here: {', '.join(known)}.",
                )

    def default(self, name: str) -> Any:
        """The model's default for a field the file leaves out."""
        spec = self.fields[name]
        if spec.default_factory is not MISSING:
            return spec.default_factory()
        if spec.default is MISSING:
            raise LookupError(f"the field {name} has no default")  # a required key: use required_str
        return spec.default

    def get(self, name: str, kind: type[T], check: Callable[[T], str] | None = None, *,
            default: T | None = None) -> T:
        """The value of a key of the given type; *default*, else the model's, when it is left out."""
        if name not in self.data:
            return self.default(name) if default is None else default
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

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.get(name, str)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}, not {_show(value)}")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, default=list(self.default(name)))
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.error(name, f"must be a list of non-empty strings, found {_show(item)}")
        return tuple(value)

    def required_str(self, name: str) -> str:
        if name not in self.data:
            raise self.error(name, "is missing", fix=f"Add {name} = \"...\" to this table.")
        return self.get(name, str, _non_empty)


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


def _table(root: _Table, name: str, model: type[Any]) -> _Table:
    """The [name] table (empty when the file has none), its keys checked against the model."""
    table = _Table(root.data.get(name, {}), root.path, name, model)
    table.check_known()
    return table


def _list_of_tables(root: _Table, name: str, model: type[Any]) -> list[_Table]:
    """The [[name]] tables (none when the file has none); each must be a table."""
    value = root.data.get(name, [])
    if not isinstance(value, list):
        raise root.error(name, f"must be an array of tables ([[{name}]]), not {_type_name(value)}")
    return [_Table(item, root.path, f"{name}[{i + 1}]", model) for i, item in enumerate(value)]


def parse_config(data: Mapping[str, Any], path: str = "<config>") -> Config:
    """Validate a parsed TOML document into a :class:`Config` (raises ConfigError)."""
    root = _Table(dict(data), path, "", Config)
    root.check_known(["version", "smtp", "schedule", "delivery", "logging",
                      "recipient_policy", "account", "routing_rule", "performance"])
    version = root.get("version", int)
    if version != CONFIG_VERSION:
        raise root.error("version", f"this pop3gui reads version {CONFIG_VERSION}, the file says {version}",
                         fix="Use a pop3gui release that matches the file, or recreate the file.")

    t = _table(root, "smtp", SmtpConfig)
    smtp = SmtpConfig(
        host=t.get("host", str, _non_empty),
        port=t.get("port", int, _port),
        security=t.choice("security", SECURITY_SMTP),
        verify_tls=t.get("verify_tls", bool),
        username=t.get("username", str),
        timeout_s=t.get("timeout_s", float, _timeout),
        ca_file=t.get("ca_file", str),
    )

    t = _table(root, "schedule", ScheduleConfig)
    schedule = ScheduleConfig(
        interval_min=t.get("interval_min", int, _range(1, 1440)),
        enabled=t.get("enabled", bool),
    )

    t = _table(root, "delivery", DeliveryConfig)
    delivery = DeliveryConfig(
        undeliverable_to=t.get("undeliverable_to", str, _address),
        max_message_kb=t.get("max_message_kb", int, _range(1, 4 * 1024 * 1024)),
    )

    t = _table(root, "logging", LoggingConfig)
    logging_cfg = LoggingConfig(level=t.choice("level", LOG_LEVELS))

    t = _table(root, "performance", PerformanceConfig)
    performance = PerformanceConfig(
        max_parallel_accounts=t.get("max_parallel_accounts", int, _range(1, 64)),
        smtp_connections=t.get("smtp_connections", int, _range(1, 16)),
        pop3_pipeline=t.get("pop3_pipeline", int, _range(1, 256)),
        queue_messages=t.get("queue_messages", int, _range(1, 1024)),
    )

    policies = _parse_policies(root)
    accounts = _parse_accounts(root)
    rules = _parse_rules(root, accounts)
    return Config(version=version, smtp=smtp, schedule=schedule, delivery=delivery, logging=logging_cfg,
                  performance=performance, policies=policies, accounts=accounts, rules=rules)


def _parse_policies(root: _Table) -> tuple[RecipientPolicy, ...]:
    policies: list[RecipientPolicy] = []
    for t in _list_of_tables(root, "recipient_policy", RecipientPolicy):
        t.check_known()
        domains = t.strings("domains")
        for d in domains:
            if not normalize_domain(d):
                raise t.error("domains", f"{d!r} is not a domain name")
        primary = t.get("primary", str, default=domains[0] if domains else "")
        if primary and (normalize_domain(primary) not in {normalize_domain(d) for d in domains}):
            raise t.error("primary", f"{primary!r} is not one of this policy's domains",
                          fix="Set primary to one of the domains listed in domains.")
        policies.append(RecipientPolicy(name=t.get("name", str, _name, default=f"Policy {len(policies) + 1}"),
                                        domains=domains, primary=primary))
    return tuple(policies)


def _parse_accounts(root: _Table) -> tuple[AccountConfig, ...]:
    accounts: list[AccountConfig] = []
    for t in _list_of_tables(root, "account", AccountConfig):
        t.check_known()
        name = t.required_str("name")
        if _name(name):
            raise t.error("name", _name(name))
        if any(a.name == name for a in accounts):
            raise t.error("name", f"another account is already called {name!r}",
                          fix="Give every account a unique name (it is also its keyring key).")
        security = t.choice("security", SECURITY_MODES)
        kind = t.choice("kind", ACCOUNT_KINDS)
        deliver_to = t.get("deliver_to", str, _address)
        if kind == "user" and not deliver_to:
            raise t.error("deliver_to", "is missing: a user mailbox delivers everything to one local address",
                          fix='Add deliver_to = "someone@your-domain" or set kind = "global".')
        accounts.append(AccountConfig(
            name=name,
            host=t.required_str("host"),
            port=t.get("port", int, _port, default=POP3_PORTS[security]),
            security=security,
            verify_tls=t.get("verify_tls", bool),
            ca_file=t.get("ca_file", str),
            username=t.required_str("username"),
            kind=kind,
            deliver_to=deliver_to,
            envelope_headers=t.strings("envelope_headers"),
            leave_on_server=t.get("leave_on_server", bool),
            delete_after_days=t.get("delete_after_days", int, _range(0, 36500)),
            enabled=t.get("enabled", bool),
            timeout_s=t.get("timeout_s", float, _timeout),
        ))
    return tuple(accounts)


def _parse_rules(root: _Table, accounts: tuple[AccountConfig, ...]) -> tuple[RoutingRuleConfig, ...]:
    rules: list[RoutingRuleConfig] = []
    by_name = {a.name: a for a in accounts}
    for t in _list_of_tables(root, "routing_rule", RoutingRuleConfig):
        t.check_known()
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
        raise ConfigError(f"cannot be read as TOML: {_describe_error(exc)}", path=str(path),
                          fix="Look for an absurdly long number or deeply nested brackets.") from None
    return parse_config(data, str(path))
