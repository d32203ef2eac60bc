"""Where each kind of provider signs in and what it is asked for."""

from __future__ import annotations

from pop3gui.core.config.model import OAuthProviderConfig
from pop3gui.core.oauth.endpoints import POP3, SMTP, endpoints


def test_microsoft_signs_in_at_the_tenant_with_the_pop_or_smtp_permission() -> None:
    entra = OAuthProviderConfig(name="e", client_id="c", kind="microsoft", tenant="contoso.onmicrosoft.com")
    pop = endpoints(entra, POP3)
    assert pop.authorize_url == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize"
    assert pop.token_url.endswith("/contoso.onmicrosoft.com/oauth2/v2.0/token")
    assert pop.device_url.endswith("/oauth2/v2.0/devicecode")
    assert "https://outlook.office.com/POP.AccessAsUser.All" in pop.scopes and "offline_access" in pop.scopes
    smtp = endpoints(entra, SMTP)
    assert "https://outlook.office.com/SMTP.Send" in smtp.scopes and not any("POP" in s for s in smtp.scopes)
    app = endpoints(OAuthProviderConfig(name="e", client_id="c", kind="microsoft", tenant="t", app_only=True))
    assert app.scopes == ("https://outlook.office365.com/.default",)


def test_google_asks_for_gmail_and_for_a_refresh_token() -> None:
    google = endpoints(OAuthProviderConfig(name="g", client_id="c", kind="google"))
    assert google.scopes[0] == "https://mail.google.com/" and google.token_url == "https://oauth2.googleapis.com/token"
    assert google.authorize_params == {"access_type": "offline", "prompt": "consent"}


def test_a_generic_provider_uses_its_own_urls_and_given_scopes_win_everywhere() -> None:
    lab = OAuthProviderConfig(name="l", client_id="c", kind="generic", authorize_url="https://idp/a",
                              token_url="https://idp/t", scopes=("mail",))
    ends = endpoints(lab)
    assert (ends.authorize_url, ends.token_url, ends.device_url, ends.scopes) == ("https://idp/a", "https://idp/t",
                                                                                  "", ("mail",))
    custom = OAuthProviderConfig(name="e", client_id="c", kind="microsoft", scopes=("x",), token_url="https://t")
    assert endpoints(custom).scopes == ("x",) and endpoints(custom).token_url == "https://t"
    assert endpoints(OAuthProviderConfig(name="e", client_id="c", kind="microsoft", tenant="")).token_url.startswith(
        "https://login.microsoftonline.com/common/")
