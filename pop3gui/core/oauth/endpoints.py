"""Where each kind of provider signs in, and what it is asked for.

Microsoft (Entra ID, v2.0 endpoints, per tenant) and Google are standard
OAuth 2.0 providers; only their URLs and scopes differ, so one client serves
all kinds and the generic kind — the one the tests drive — is the same path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pop3gui.core.config.model import OAuthProviderConfig

POP3 = "pop3"
IMAP = "imap"
SMTP = "smtp"

_MICROSOFT = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/"
_MICROSOFT_SCOPES = {
    POP3: ("https://outlook.office.com/POP.AccessAsUser.All", "offline_access", "openid", "email"),
    IMAP: ("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access", "openid", "email"),
    SMTP: ("https://outlook.office.com/SMTP.Send", "offline_access", "openid", "email"),
}
# An app without a user asks for the application permissions granted to it (POP.AccessAsApp).
_MICROSOFT_APP_SCOPE = ("https://outlook.office365.com/.default",)
_GOOGLE_SCOPES = ("https://mail.google.com/", "openid", "email")


def mailbox_purpose(protocol: str) -> str:
    """What an account's sign-in is for: reading mail over POP3 or over IMAP (Microsoft scopes differ)."""
    return IMAP if protocol == "imap" else POP3


@dataclass(frozen=True)
class Endpoints:
    """The URLs and scopes of one provider for one use (reading mail, or sending it)."""

    authorize_url: str
    token_url: str
    device_url: str
    scopes: tuple[str, ...]
    # Extra query parameters of the sign-in page (Google returns a refresh token only when asked).
    authorize_params: dict[str, str] = field(default_factory=dict)


def endpoints(provider: OAuthProviderConfig, purpose: str = POP3) -> Endpoints:
    """The endpoints of *provider*; its own scopes replace the kind's defaults when given."""
    if provider.kind == "microsoft":
        base = _MICROSOFT.format(tenant=provider.tenant or "common")
        scopes = _MICROSOFT_APP_SCOPE if provider.app_only else _MICROSOFT_SCOPES[purpose]
        found = Endpoints(base + "authorize", base + "token", base + "devicecode", scopes)
    elif provider.kind == "google":
        # Google's device flow does not grant the Gmail scope: the browser flow is the way in.
        found = Endpoints("https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
                          "https://oauth2.googleapis.com/device/code", _GOOGLE_SCOPES,
                          {"access_type": "offline", "prompt": "consent"})
    else:
        found = Endpoints(provider.authorize_url, provider.token_url, provider.device_url, ())
    return Endpoints(
        authorize_url=provider.authorize_url or found.authorize_url,
        token_url=provider.token_url or found.token_url,
        device_url=provider.device_url or found.device_url,
        scopes=provider.scopes or found.scopes,
        authorize_params=found.authorize_params,
    )
