"""Reading the configuration file: the documented contract, defaults, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pop3gui.core.config.load import load_config, parse_config
from pop3gui.core.config.model import (
    AccountConfig,
    Config,
    RecipientPolicy,
    RoutingRuleConfig,
)
from pop3gui.core.config.policies import policy_warnings
from pop3gui.core.errors import ConfigError

EXAMPLE = Path(__file__).parents[3] / "resources" / "example-config.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_with_documented_values() -> None:
    config = load_config(EXAMPLE)
    assert config.smtp.host == "localhost" and config.smtp.port == 25
    assert config.schedule.interval_min == 15
    assert config.delivery.undeliverable_to == "administrator@contoso.com"
    assert config.local_domains() == ("contoso.com", "contoso.local")
    alice = config.account("alice")
    assert alice.kind == "user" and alice.deliver_to == "alice@contoso.com" and alice.port == 995
    catch_all = config.account("catch-all")
    assert catch_all.kind == "global"
    assert catch_all.envelope_headers[0] == "Delivered-To"
    assert config.rules_for("catch-all")[0].deliver_to == "sales-team@contoso.com"
    assert policy_warnings(config) == []


def test_defaults_fill_missing_tables(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "version = 1\n"))
    assert config == Config()


def test_left_out_keys_take_the_models_defaults() -> None:
    """Only the required keys given: every other value is the dataclass field's default."""
    config = parse_config({
        "recipient_policy": [{"name": "Default", "domains": ["contoso.com"], "primary": ""}],
        "account": [
            {"name": "alice", "host": "h", "username": "u", "deliver_to": "alice@contoso.com"},
            {"name": "office", "host": "h", "username": "o", "kind": "global"},
        ],
        "routing_rule": [{"account": "office", "contains": "sales@", "deliver_to": "s@contoso.com"}],
    })
    assert config.accounts == (
        AccountConfig(name="alice", host="h", username="u", deliver_to="alice@contoso.com"),
        AccountConfig(name="office", host="h", username="o", kind="global"),
    )
    assert config.rules == (RoutingRuleConfig(account="office", contains="sales@", deliver_to="s@contoso.com"),)
    assert config.policies == (RecipientPolicy("Default", ("contoso.com",)),)
    assert all(isinstance(timeout, float) for timeout in (config.smtp.timeout_s, config.accounts[0].timeout_s))


def test_port_defaults_follow_security(tmp_path: Path) -> None:
    text = """
[[account]]
name = "a"
host = "h"
username = "u"
security = "starttls"
deliver_to = "a@contoso.com"
"""
    assert load_config(write(tmp_path, text)).account("a").port == 110


def test_a_policy_without_name_or_primary_gets_them_from_its_place_and_domains() -> None:
    config = parse_config({"recipient_policy": [{"domains": ["contoso.com"]}, {"domains": ["b.example", "c.example"]}]})
    assert config.policies == (RecipientPolicy("Policy 1", ("contoso.com",), "contoso.com"),
                               RecipientPolicy("Policy 2", ("b.example", "c.example"), "b.example"))


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[smtp]\nport = \"25\"\n", "smtp.port", "must be a whole number"),
        ("[smtp]\nport = 70000\n", "smtp.port", "between 1 and 65535"),
        ("[smtp]\nsecurity = \"ssl\"\n", "smtp.security", "one of none, starttls, tls"),
        ("[schedule]\ninterval_min = 0\n", "schedule.interval_min", "between 1 and 1440"),
        ("[schedule]\nenabled = \"yes\"\n", "schedule.enabled", "true or false"),
        ("[delivery]\nundeliverable_to = \"admin\"\n", "delivery.undeliverable_to", "not an e-mail address"),
        ("[schedule]\nintervall_min = 5\n", "schedule.intervall_min", "unknown key"),
        ("smtp = 5\n", "smtp", "must be a table"),
        ("[[recipient_policy]]\ndomains = [\"not a domain\"]\n", "recipient_policy[1].domains",
         "not a domain name"),
        ("[[recipient_policy]]\ndomains = [\"a.com\"]\nprimary = \"b.com\"\n", "recipient_policy[1].primary",
         "not one of this policy's domains"),
        ("[[account]]\nname = \"a\"\nusername = \"u\"\ndeliver_to = \"a@b.com\"\n", "account[1].host", "missing"),
        ("[[account]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\n", "account[1].deliver_to", "missing"),
        ("[[account]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\nsecurity = \"ssl\"\n", "account[1].security",
         "one of tls, starttls, none"),
        ("[[account]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\nkind = \"global\"\n"
         "[[account]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\nkind = \"global\"\n", "account[2].name",
         "already called"),
        ("[[account]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\ndeliver_to = \"a@b.com\"\n"
         "[[routing_rule]]\naccount = \"a\"\ncontains = \"x\"\ndeliver_to = \"s@b.com\"\n",
         "routing_rule[1].account", "user mailbox"),
        ("[[routing_rule]]\naccount = \"nope\"\ncontains = \"x\"\ndeliver_to = \"s@b.com\"\n",
         "routing_rule[1].account", "no account is called"),
        ("[[account]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\nkind = \"global\"\n"
         "[[routing_rule]]\naccount = \"a\"\ncontains = \"x\"\ndeliver_to = \"s@b.com\"\nfield = \"body\"\n",
         "routing_rule[1].field", "one of to-cc, subject"),
        ("version = 2\n", "version", "reads version 1"),
    ],
)
def test_bad_values_name_file_key_and_problem(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert key in message
    assert words in message


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[schedule]\nintervall_min = 5\n"))
    assert "interval_min" in info.value.fix


def test_a_missing_key_says_how_to_add_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"account": [{"name": "a", "username": "u", "deliver_to": "a@b.com"}]})
    assert info.value.key == "account[1].host" and 'host = "..."' in info.value.fix


def test_toml_syntax_error_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[smtp\nport = 1\n"))


def test_missing_file_explains_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "does not exist" in str(info.value)
    assert "example-config.toml" in info.value.fix


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"[smtp]\nhost = \"\xff\"\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_config({"smtp": {"port": "x"}})
