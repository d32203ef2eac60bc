"""Stable names of what can go wrong: the ``diagnosis`` of an event.

Programs read these names (the tray, the demo, ``pop3gui events --json``,
monitoring scripts); people read the event's text, cause and fix.  A name
never changes once released; new ones may be added.
"""

from __future__ import annotations

from enum import StrEnum


class Failure(StrEnum):
    """The class of a failure, as an event's ``diagnosis`` names it."""

    # The local server refused a recipient or the message (core/smtp/diagnose.py tells which).
    DOMAIN_NOT_ACCEPTED = "domain_not_accepted"  # no recipient policy covers it: the KB's failure
    UNKNOWN_USER = "unknown_user"
    MAILBOX_FULL = "mailbox_full"
    TOO_BIG = "too_big"
    LINE_TOO_LONG = "line_too_long"
    POLICY = "policy"
    TEMPORARY = "temporary"
    UNCLEAR = "unclear"  # domain or mailbox: the server's words do not say
    OTHER = "other"
    # The mailbox server (POP3 or IMAP).
    AUTH_FAILED = "auth_failed"
    MAILBOX_IN_USE = "mailbox_in_use"
    CONNECTION_FAILED = "connection_failed"
    TLS_FAILED = "tls_failed"
    TLS_NOT_VERIFIED = "tls_not_verified"
    TIMEOUT = "timeout"
    PROTOCOL_ERROR = "protocol_error"
    COMMAND_FAILED = "command_failed"
    INSECURE_REFUSED = "insecure_refused"
    QUIT_FAILED = "quit_failed"
    FOLDER_MISSING = "folder_missing"  # IMAP: a folder the account names is not on the server
    FOLDER_RENUMBERED = "folder_renumbered"  # IMAP: UIDVALIDITY changed; messages are known by content
    NOT_EXPUNGED = "not_expunged"  # IMAP: marked deleted, removal waits (other deleted mail in the folder)
    NO_IDLE = "no_idle"  # IMAP: the server cannot push new mail; polled on the schedule
    # The local server's session.
    SMTP_AUTH_FAILED = "smtp_auth_failed"
    SMTP_CONNECTION_FAILED = "smtp_connection_failed"
    SMTP_TIMEOUT = "smtp_timeout"
    SMTP_FAILED = "smtp_failed"
    # This machine and its settings.
    CREDENTIAL_MISSING = "credential_missing"
    CONFIG_INVALID = "config_invalid"
    STATE_FAILED = "state_failed"
    RUNNER_BUSY = "runner_busy"
    POLICY_MISSING = "policy_missing"
    # Signing in with OAuth2.
    SIGN_IN_NEEDED = "sign_in_needed"  # no tokens, or the provider no longer honours them
    OAUTH_TOKEN_REFUSED = "oauth_token_refused"  # the mail server refused a fresh access token
    OAUTH_CONSENT_MISSING = "oauth_consent_missing"  # the user or the tenant admin has not allowed the app
    OAUTH_CLIENT_INVALID = "oauth_client_invalid"  # unknown client id, wrong tenant, or a bad client secret
    OAUTH_PROVIDER_FAILED = "oauth_provider_failed"  # the sign-in service could not be reached or answered oddly
    # The message itself.
    OVER_SIZE_LIMIT = "over_size_limit"
    NO_LOCAL_RECIPIENT = "no_local_recipient"
    FOREIGN_RECIPIENTS = "foreign_recipients"
    DUPLICATE = "duplicate"
    MAIL_LOOP = "mail_loop"
    MALFORMED = "malformed"


REFUSALS = frozenset({
    Failure.DOMAIN_NOT_ACCEPTED, Failure.UNKNOWN_USER, Failure.MAILBOX_FULL, Failure.TOO_BIG,
    Failure.LINE_TOO_LONG, Failure.POLICY, Failure.TEMPORARY, Failure.UNCLEAR, Failure.OTHER,
})
"""The meanings a refusal by the local server can have."""
