"""The names of the demo's story: the office's domains, its people, the KB Q325464 case, the OAuth2 mailbox."""

from __future__ import annotations

LOCAL_DOMAIN = "contoso.com"
MISSING_DOMAIN = "contoso.eu"  # the office's new domain: neither the Exchange nor the policy has it yet
ERIN = f"erin@{MISSING_DOMAIN}"
UNDELIVERABLE = f"postmaster@{MISSING_DOMAIN}"  # already switched to the new domain, so it refuses too
KB_SUBJECT = "Welcome to Contoso Europe"
DANA = f"dana@{LOCAL_DOMAIN}"  # the mailbox that signs in with OAuth2: its ISP user name and its target
OAUTH_ACCOUNT = "dana"
OAUTH_PROVIDER = "contoso-demo"
OAUTH_SUBJECT = "Your signed-in mailbox works"
DELIVERED = ("alice@contoso.com", "bob@contoso.com", "carol@contoso.com", "dave@contoso.com",
             "sales-team@contoso.com", DANA)
FOREIGN_CC = "partner@fabrikam.example"
PASSWORDS = {"alice": "alice-demo-password", "office": "office-demo-password", "erin": "erin-demo-password"}
