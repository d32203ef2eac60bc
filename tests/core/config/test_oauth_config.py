"""The OAuth2 parts of the file: [[oauth_provider]], and accounts and [smtp] that sign in with one."""

from __future__ import annotations

from typing import Any

import pytest

from pop3gui.core.config.load import parse_config
from pop3gui.core.config.model import Config, OAuthProviderConfig
from pop3gui.core.config.save import config_to_dict
from pop3gui.core.errors import ConfigError

ENTRA = {"name": "contoso-entra", "kind": "microsoft", "client_id": "11111111-2222-3333-4444-555555555555",
         "tenant": "contoso.onmicrosoft.com"}
ACCOUNT = {"name": "m365", "host": "outlook.office365.com", "username": "alice@contoso.com",
           "deliver_to": "alice@contoso.com", "auth": "oauth2", "oauth_provider": "contoso-entra"}


def document(**parts: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": 1, "oauth_provider": [ENTRA], "account": [ACCOUNT]}
    doc.update(parts)
    return doc


def test_an_oauth_account_and_its_provider_are_read_with_their_defaults() -> None:
    config = parse_config(document())
    [provider] = config.oauth_providers
    assert provider == OAuthProviderConfig(name="contoso-entra", client_id=ENTRA["client_id"], kind="microsoft",
                                           tenant="contoso.onmicrosoft.com")
    account = config.account("m365")
    assert (account.auth, account.oauth_provider, account.sasl, account.port) == ("oauth2", "contoso-entra",
                                                                                  "xoauth2", 995)
    assert config.oauth_provider("contoso-entra") is provider


def test_a_file_without_oauth_reads_as_before() -> None:
    config = parse_config({"version": 1, "account": [{**ACCOUNT, "auth": "password", "oauth_provider": ""}]})
    assert config.oauth_providers == () and config.account("m365").auth == "password"
    assert config.smtp.auth == "password"


def test_the_saved_document_reads_back_the_same() -> None:
    config = parse_config(document(smtp={"host": "smtp.office365.com", "port": 587, "security": "starttls",
                                         "username": "relay@contoso.com", "auth": "oauth2",
                                         "oauth_provider": "contoso-entra"}))
    again = parse_config(config_to_dict(config))
    assert again == config and again.smtp.auth == "oauth2"


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"account": [{**ACCOUNT, "oauth_provider": "nobody"}]}, "account[1].oauth_provider", "no [[oauth_provider]]"),
    ({"account": [{**ACCOUNT, "oauth_provider": ""}]}, "account[1].oauth_provider", "is missing"),
    ({"account": [{**ACCOUNT, "sasl": "plain"}]}, "sasl", "xoauth2, oauthbearer"),
    ({"account": [{**ACCOUNT, "auth": "kerberos"}]}, "auth", "password, apop, oauth2"),
    ({"oauth_provider": [{**ENTRA, "kind": "okta"}]}, "kind", "microsoft, google, generic"),
    ({"oauth_provider": [{"name": "idp", "client_id": "x", "kind": "generic"}]}, "token_url", "is missing"),
    ({"oauth_provider": [{**ENTRA, "token_url": "http://idp.example/token"}]}, "token_url", "https://"),
    ({"oauth_provider": [{**ENTRA, "token_url": "http://localhost.evil.example/token"}]}, "token_url", "https://"),
    ({"oauth_provider": [{**ENTRA, "token_url": "http://localhost@evil.example/token"}]}, "token_url", "https://"),
    ({"oauth_provider": [{**ENTRA, "token_url": "http://127.0.0.1.evil.example/t"}]}, "token_url", "https://"),
    ({"oauth_provider": [ENTRA, ENTRA]}, "name", "already called"),
    ({"oauth_provider": [{**ENTRA, "client_secret": "s3cret"}]}, "client_secret", ""),
    ({"smtp": {"username": "relay@contoso.com", "auth": "oauth2"}}, "smtp.oauth_provider", "is missing"),
])
def test_mistakes_name_the_key_and_what_to_do(change: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(**change))
    assert key in str(caught.value) and words in str(caught.value), str(caught.value)
    assert caught.value.fix or "client_secret" in key


def test_a_generic_provider_on_loopback_may_use_http_for_tests_and_labs() -> None:
    local = {"name": "lab", "client_id": "x", "kind": "generic", "authorize_url": "http://127.0.0.1:8080/authorize",
             "token_url": "http://127.0.0.1:8080/token"}
    config = parse_config(document(oauth_provider=[local], account=[{**ACCOUNT, "oauth_provider": "lab"}]))
    assert config.oauth_provider("lab").token_url.endswith("/token")


def test_smtp_oauth_is_only_checked_when_the_connector_logs_in() -> None:
    config = parse_config({"version": 1, "smtp": {"auth": "oauth2"}})
    assert config.smtp.auth == "oauth2" and isinstance(config, Config)
