"""The local domains: which domains a recipient policy covers, in any spelling."""

from __future__ import annotations

import pytest

from pop3gui.core.errors import ConfigError
from pop3gui.core.mail.local_domains import LocalDomains

LOCAL = LocalDomains(["contoso.com", "Dömain.de"])


def test_local_domains_compare_case_and_idn_insensitively() -> None:
    local = LocalDomains(["Contoso.COM", "xn--dmain-jua.de"])
    assert local.is_local("bob@contoso.com")
    assert local.is_local("Bob@CONTOSO.com")
    assert local.is_local("jörg@DÖMAIN.de")
    assert not local.is_local("bob@contoso.com.evil.example")
    assert not local.is_local("bob@notcontoso.com")
    assert "CONTOSO.com" in local
    assert "dömain.de" in local
    assert "evil.example" not in local
    assert 42 not in local
    assert list(local) == ["contoso.com", "xn--dmain-jua.de"]


def test_a_display_name_is_not_an_address() -> None:
    assert not LOCAL.is_local('"alice@contoso.com" <mallory@evil.example>')
    assert not LOCAL.is_local("Alice <alice@contoso.com>")
    assert not LOCAL.is_local("contoso.com")


def test_an_invalid_local_domain_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        LocalDomains(["contoso.com", "not a domain"])
    assert "not a domain" in str(caught.value)
    assert caught.value.fix
    assert isinstance(caught.value, ValueError)



def test_an_invalid_domain_can_be_skipped_in_a_draft() -> None:
    local = LocalDomains(["contoso.com", "not a domain", "", "CONTOSO.com."], skip_invalid=True)
    assert list(local) == ["contoso.com"] and len(local) == 1
    assert repr(local) == "LocalDomains(['contoso.com'])"
    assert not LocalDomains([], skip_invalid=True)


def test_a_domain_covers_neither_its_subdomains_nor_its_parent() -> None:
    assert "sales.contoso.com" not in LOCAL
    assert "com" not in LOCAL
    assert not LOCAL.is_local("bob@sales.contoso.com")
