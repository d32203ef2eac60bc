"""The names of the demo's story: the office's domains, its people, the KB Q325464 case, the OAuth2 mailbox,
the shared mailbox reached over IMAP."""

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
# The shared mailbox at the ISP that is reached over IMAP: a global mailbox fetched from two folders, its
# handled mail moved to a folder (created at the first move) instead of deleted.
IMAP_ACCOUNT = "info"
IMAP_USER = f"info@{LOCAL_DOMAIN}"  # its ISP user name, and the address most of its mail is for
ACCOUNTS = f"accounts@{LOCAL_DOMAIN}"  # the suppliers' invoices are for the accounts department
INVOICES_FOLDER = "Invoices"  # the ISP's filter files suppliers' invoices here
IMAP_FOLDERS = ("INBOX", INVOICES_FOLDER)
MOVE_TO = "Delivered"
IMAP_SUBJECT = "Opening hours over the holidays?"
INVOICE_SUBJECT = "Invoice 2024-117"
DELIVERED = ("alice@contoso.com", "bob@contoso.com", "carol@contoso.com", "dave@contoso.com",
             "sales-team@contoso.com", DANA, IMAP_USER, ACCOUNTS)
FOREIGN_CC = "partner@fabrikam.example"
PASSWORDS = {"alice": "alice-demo-password", "office": "office-demo-password", "erin": "erin-demo-password",
             IMAP_ACCOUNT: "info-demo-password"}
