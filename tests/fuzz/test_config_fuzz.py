"""Broken configuration: every mistake is one ConfigError naming the key.

Two generated targets: a valid document with one key given a wrong type or
an out-of-range value (parse_config must name exactly that key path), and
arbitrary text written to a file for load_config (a Config or a
ConfigError, never a traceback).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pop3gui.core.config.load import load_config, parse_config
from pop3gui.core.config.model import Config, PerformanceConfig
from pop3gui.core.errors import ConfigError
from tests.fuzz import corpus, count, decode_recipe, run

PROPERTY = settings(
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

Record = Callable[[str, object], None]

BASE: dict[str, Any] = {
    "version": 1,
    "smtp": {"host": "mail.contoso.local", "port": 25, "security": "none", "verify_tls": True, "username": "",
             "timeout_s": 60.0, "ca_file": ""},
    "schedule": {"interval_min": 15, "enabled": True},
    "delivery": {"undeliverable_to": "admin@contoso.com", "max_message_kb": 25600},
    "logging": {"level": "info"},
    "recipient_policy": [{"name": "Default", "domains": ["contoso.com", "dömain.de"], "primary": "contoso.com"}],
    "account": [
        {"name": "alice", "host": "pop.isp.example", "username": "alice", "port": 995, "security": "tls",
         "verify_tls": True, "ca_file": "", "kind": "user", "deliver_to": "alice@contoso.com",
         "envelope_headers": ["Delivered-To"], "leave_on_server": False, "delete_after_days": 0,
         "enabled": True, "timeout_s": 60.0},
        {"name": "catchall", "host": "pop.isp.example", "username": "info", "kind": "global"},
    ],
    "routing_rule": [{"account": "catchall", "contains": "sales", "deliver_to": "bob@contoso.com",
                      "field": "to-cc"}],
}

_NOW = datetime.datetime(2024, 1, 1, 10, 0)
_ANY_WRONG: dict[str, list[Any]] = {
    "str": [1, 0, -1, 1.5, True, False, [], ["x"], {}, {"a": 1}, _NOW, _NOW.date(), _NOW.time(), 10**30],
    "int": ["25", "", 1.0, 25.5, True, False, [], [25], {}, _NOW, math.nan, "0x19"],
    "float": ["60", "", True, False, [], [1.0], {}, _NOW.time()],
    "bool": ["true", "yes", 1, 0, 1.0, [], {}, "", _NOW],
    "list": ["Delivered-To", 1, True, {}, {"a": "b"}, _NOW, [""], [" "], [1], ["ok", None], [[]], [{}]],
}
#: key path -> (kind, invalid values of the right type). Missing-type keys get every wrong type.
SCHEMA: dict[str, tuple[str, list[Any]]] = {
    "version": ("int", [0, 2, -1, 10**20]),
    "smtp.host": ("str", ["", "   "]),
    "smtp.port": ("int", [0, -1, 65536, 10**12]),
    "smtp.security": ("str", ["ssl", "TLS", "", "starttls "]),
    "smtp.verify_tls": ("bool", []),
    "smtp.username": ("str", []),
    "smtp.timeout_s": ("float", [0, 0.0, -1, -0.5, -math.inf, math.nan]),
    "smtp.ca_file": ("str", []),
    "schedule.interval_min": ("int", [0, -5, 1441, 10**9]),
    "schedule.enabled": ("bool", []),
    "delivery.undeliverable_to": ("str", ["admin", "admin@", "@contoso.com", "a b@contoso.com", "a@b@c",
                                          "admin@contoso..com", "<admin@contoso.com>x"]),
    "delivery.max_message_kb": ("int", [0, -1, 4 * 1024 * 1024 + 1]),
    "logging.level": ("str", ["verbose", "INFO", ""]),
    "recipient_policy[1].name": ("str", ["", " ", "x" * 101, "tab\there"]),
    "recipient_policy[1].domains": ("list", [["not a domain"], ["-bad.com"], ["contoso.com", "a..b"], ["1.2.3.4"]]),
    "recipient_policy[1].primary": ("str", ["fabrikam.com", "contoso", "@contoso.com"]),
    "account[1].name": ("str", ["", " ", "x" * 101, "new\nline", "catchall"]),
    "account[1].host": ("str", ["", "  "]),
    "account[1].username": ("str", ["", "\t"]),
    "account[1].port": ("int", [0, 65536, -995]),
    "account[1].security": ("str", ["ssl", "STARTTLS", ""]),
    "account[1].verify_tls": ("bool", []),
    "account[1].ca_file": ("str", []),
    "account[1].kind": ("str", ["catchall", "User", ""]),
    "account[1].deliver_to": ("str", ["", "alice", "alice@", "alice@contoso.com, bob@contoso.com"]),
    "account[1].envelope_headers": ("list", []),
    "account[1].leave_on_server": ("bool", []),
    "account[1].delete_after_days": ("int", [-1, 36501]),
    "account[1].enabled": ("bool", []),
    "account[1].timeout_s": ("float", [0, -3.5, -math.inf, math.nan]),
    "routing_rule[1].account": ("str", ["", "nobody", "alice"]),
    "routing_rule[1].contains": ("str", ["", "  "]),
    "routing_rule[1].deliver_to": ("str", ["", "bob", "bob@@contoso.com"]),
    "routing_rule[1].field": ("str", ["subject ", "to", "body", ""]),
}
BASE["performance"] = {}
for _f in dataclasses.fields(PerformanceConfig):
    SCHEMA[f"performance.{_f.name}"] = ("int", [0, -1, 10**6])
TABLES = ["smtp", "schedule", "delivery", "logging", "performance", "recipient_policy[1]", "account[1]",
          "routing_rule[1]"]
MUTATIONS: list[tuple[str, Any]] = [
    (path, value)
    for path, (kind, bad) in SCHEMA.items()
    for value in bad + _ANY_WRONG[kind] + [None]
] + [(table, value) for table in TABLES for value in ["x", 1, [], [1], True]] + [
    (f"{table}.unknwn", 1) for table in TABLES] + [
    ("recipient_policy", {"name": "x"}), ("account", "alice"), ("routing_rule", 5), ("nope", {})]


def _split(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        steps.append(name)
        if index:
            steps.append(int(index.rstrip("]")) - 1)
    return steps


def mutate(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of *document* with the key at *path* set to *value* (None deletes it)."""
    doc = copy.deepcopy(document)
    *parents, last = _split(path)
    node: Any = doc
    for step in parents:
        node = node[step]
    if value is None and isinstance(last, str):
        node.pop(last, None)
    else:
        node[last] = value
    return doc


#: Keys that must be present: leaving one out is a mistake too.
REQUIRED = {"account[1].name", "account[1].host", "account[1].username", "account[1].deliver_to",
            "routing_rule[1].account", "routing_rule[1].contains", "routing_rule[1].deliver_to"}


def expected_key(path: str, value: Any) -> str | None:
    """The key the ConfigError for this one mutation must name; None when the document stays valid."""
    if value is None and path not in REQUIRED:
        # Optional keys have defaults; without domains the primary names no domain of the policy.
        return "recipient_policy[1].primary" if path == "recipient_policy[1].domains" else None
    if (path, value) == ("account[1].name", "catchall"):
        return "account[2].name"  # the duplicate is the second account
    return path


def test_base_document_is_valid() -> None:
    config = parse_config(BASE)
    assert isinstance(config, Config) and len(config.accounts) == 2


def _expect_error(document: dict[str, Any], path: str) -> ConfigError:
    try:
        parse_config(document, "office.toml")
    except ConfigError as exc:
        assert type(exc) is ConfigError
        assert exc.key == path, f"{path}: the error names {exc.key!r}: {exc}"
        assert str(exc).startswith(f"office.toml: {path}: ")
        assert exc.__cause__ is None
        return exc
    raise AssertionError(f"{path}: no ConfigError")


def check_mutation(path: str, value: Any) -> None:
    document = mutate(BASE, path, value)
    key = expected_key(path, value)
    if key is None:
        assert isinstance(parse_config(document), Config)
    else:
        _expect_error(document, key)


@PROPERTY
@given(pick=st.integers(0, len(MUTATIONS) - 1), other=st.integers(0, len(MUTATIONS) - 1))
def _prop_mutation(pick: int, other: int) -> None:
    """One broken key; or two, where the one parse_config reads first must be named."""
    count("config keys")
    path, value = MUTATIONS[pick]
    check_mutation(path, value)
    # A second mistake in a later table must not hide or replace the first.
    second, second_value = MUTATIONS[other]
    first_table, second_table = TABLES_ORDER.index(_table(path)), TABLES_ORDER.index(_table(second))
    key = expected_key(path, value)
    if key is None or expected_key(second, second_value) is None or first_table >= second_table:
        return
    if _table(path) in ("account", "recipient_policy", "routing_rule") or _table(second) == "routing_rule":
        return  # rules refer to accounts, primaries to domains: no independent order there
    _expect_error(mutate(mutate(BASE, path, value), second, second_value), key)


TABLES_ORDER = ["nope", "version", "smtp", "schedule", "delivery", "logging", "performance", "recipient_policy", "account",
                "routing_rule"]


def _table(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def test_every_broken_key_is_one_config_error_naming_it(record_property: Record) -> None:
    """Every key of the documented format, every wrong type and out-of-range value."""
    run("config keys", _prop_mutation, record_property)


@pytest.mark.parametrize(("path", "value"), MUTATIONS, ids=[f"{p}={v!r}"[:60] for p, v in MUTATIONS])
def test_each_mutation(path: str, value: Any) -> None:
    """The same table, exhaustively: each single broken key is named."""
    check_mutation(path, value)


# ------------------------------------------------------------- files on disk

_TOML_TOKENS = [s.encode() for s in [
    "\n", "\r\n", " = ", "=", "[smtp]\n", "[schedule]\n", "[delivery]\n", "[logging]\n", "[[account]]\n",
    "[[recipient_policy]]\n", "[[routing_rule]]\n", "[performance]\n", "[", "]", "[[", "]]", "{", "}", ",", ".",
    '"', "'", '"""', "'''", "\\", "\\u", "\\U0001F600", "#", "version", "host", "port", "security", "name",
    "domains", "deliver_to", "kind", "timeout_s", "interval_min", "max_message_kb", "level", "1", "0", "-1",
    "65536", "1e400", "-0.0", "inf", "nan", "+inf", "0x1F", "0o777", "0b11", "1_000", "true", "false",
    "1979-05-27T07:32:00Z", "2024-13-45", "07:32:00", '"contoso.com"', '"alice@contoso.com"', '"tls"',
    '["a", 1]', "[]", "{}", "\0", "\x7f", "\ufeff", "é", "\t", " ",
]] + [b"\xff", b"\xc3", b"9" * 5000, b"[" * 3000, b"{a=" * 2000]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pop3gui-fuzz-") as folder:
        yield Path(folder)


def _load(path: Path) -> Config | ConfigError:
    try:
        return load_config(path)
    except ConfigError as exc:
        assert type(exc) is ConfigError and str(exc).startswith(str(path))
        assert exc.__cause__ is None and exc.__context__ is None or exc.__suppress_context__
        return exc


_SCRATCH: list[Path] = []


@PROPERTY
@given(raw=st.binary(max_size=200))
def _prop_load(raw: bytes) -> None:
    count("config files")
    text = raw[1:] if raw[:1] == b"\xfe" else decode_recipe(raw, _TOML_TOKENS)
    path = _SCRATCH[0] / "config.toml"
    path.write_bytes(text)
    _load(path)


def test_any_file_is_a_config_or_a_config_error(record_property: Record, scratch: Path) -> None:
    _SCRATCH[:] = [scratch]
    run("config files", _prop_load, record_property)


@pytest.mark.parametrize("path", corpus("configs"), ids=lambda p: p.name)
def test_config_corpus(path: Path) -> None:
    """Files named ok-* must load; every other one must be refused with a ConfigError."""
    result = _load(path)
    if path.name.startswith("ok-"):
        assert isinstance(result, Config), result
    else:
        assert isinstance(result, ConfigError), f"{path.name} loaded"
        expect = path.with_suffix(".expect")
        if expect.exists():
            assert result.key == expect.read_text().strip()


# ------------------------------------------------- engine bugs found, now fixed


def test_huge_integer_in_file_is_a_config_error(scratch: Path) -> None:
    path = scratch / "huge-int.toml"
    path.write_text("[smtp]\nport = " + "9" * 5000 + "\n")
    assert isinstance(_load(path), ConfigError)


@pytest.mark.parametrize("value", ["[" * 3000 + "]" * 3000, "{a=" * 2000 + "1" + "}" * 2000])
def test_deep_nesting_in_file_is_a_config_error(scratch: Path, value: str) -> None:
    path = scratch / "deep.toml"
    path.write_text(f"x = {value}\n")
    assert isinstance(_load(path), ConfigError)


@pytest.mark.parametrize("path", ["smtp.host", "smtp.port", "schedule.interval_min"])
def test_huge_integer_value_is_a_config_error(path: str) -> None:
    _expect_error(mutate(BASE, path, 10**5000), path)


@pytest.mark.parametrize("path", ["smtp.timeout_s", "account[1].timeout_s"])
def test_infinite_timeout_is_refused(path: str) -> None:
    _expect_error(mutate(BASE, path, math.inf), path)
