"""One error hierarchy for everything a user can meet.

Every class also inherits the built-in it is (``ConnectionError``,
``TimeoutError``, ``ValueError`` ...) so callers that only know the standard
library still catch it, and every instance carries a plain-words *cause* and
*fix* that the command line, the events and the GUI show as they are, and
names its class of failure (``failure``): the diagnosis its event carries.
"""

from __future__ import annotations

from typing import ClassVar

from pop3gui.core.failures import Failure


class Pop3guiError(Exception):
    """Base class: a message for the user, with its cause and its fix."""

    failure: ClassVar[Failure] = Failure.OTHER

    def __init__(self, message: str, *, cause: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        self.fix = fix

    def __str__(self) -> str:
        return self.message

    def explain(self) -> str:
        """The message, cause and fix as a few lines for a terminal or a dialog."""
        lines = [self.message]
        if self.cause:
            lines.append(f"Cause: {self.cause}")
        if self.fix:
            lines.append(f"Fix: {self.fix}")
        return "\n".join(lines)


class ConfigError(Pop3guiError, ValueError):
    """The configuration file is missing, unreadable or has a bad value."""

    failure: ClassVar[Failure] = Failure.CONFIG_INVALID

    def __init__(
        self, message: str, *, path: str = "", key: str = "", cause: str = "", fix: str = ""
    ) -> None:
        where = path + (f": {key}" if key else "") if path else key
        super().__init__(f"{where}: {message}" if where else message, cause=cause, fix=fix)
        self.path = path
        self.key = key


class CredentialError(Pop3guiError, RuntimeError):
    """The OS keyring is unusable, locked, or holds no password for an account."""

    failure: ClassVar[Failure] = Failure.CREDENTIAL_MISSING


class StateError(Pop3guiError, OSError):
    """The state folder (journal, spool, quarantine) cannot be written or locked."""

    failure: ClassVar[Failure] = Failure.STATE_FAILED


class TlsSetupError(Pop3guiError, OSError):
    """A TLS context cannot be made: the CA file a server's settings name is missing or not a certificate."""

    failure: ClassVar[Failure] = Failure.TLS_FAILED


class MailboxError(Pop3guiError):
    """A session with a mailbox server (POP3 or IMAP) failed; ``temporary`` says whether a retry may work."""

    failure: ClassVar[Failure] = Failure.COMMAND_FAILED

    temporary = True

    def __init__(
        self,
        message: str,
        *,
        cause: str = "",
        fix: str = "",
        reply: str = "",
        resp_code: str = "",
    ) -> None:
        super().__init__(message, cause=cause, fix=fix)
        self.reply = reply
        self.resp_code = resp_code


class MailboxConnectionError(MailboxError, ConnectionError):
    """The mailbox server could not be reached or dropped the connection."""

    failure: ClassVar[Failure] = Failure.CONNECTION_FAILED


class MailboxTlsError(MailboxConnectionError):
    """TLS could not be set up or the server's certificate did not verify."""

    failure: ClassVar[Failure] = Failure.TLS_FAILED

    temporary = False


class MailboxTimeoutError(MailboxError, TimeoutError):
    """The mailbox server stopped answering; the connection was closed."""

    failure: ClassVar[Failure] = Failure.TIMEOUT


class MailboxProtocolError(MailboxError, ValueError):
    """The mailbox server sent something that is not valid POP3 or IMAP."""

    failure: ClassVar[Failure] = Failure.PROTOCOL_ERROR


class MailboxCommandError(MailboxError):
    """The mailbox server refused a command (POP3 -ERR, IMAP NO or BAD)."""

    failure: ClassVar[Failure] = Failure.COMMAND_FAILED


class MailboxAuthError(MailboxCommandError, PermissionError):
    """The mailbox server refused the login."""

    failure: ClassVar[Failure] = Failure.AUTH_FAILED

    temporary = False


class MailboxInUseError(MailboxCommandError):
    """The mailbox is locked by another client (POP3 [IN-USE], IMAP [INUSE])."""

    failure: ClassVar[Failure] = Failure.MAILBOX_IN_USE


class FolderMissingError(MailboxCommandError):
    """An IMAP folder the account fetches from (or moves to) is not on the server."""

    failure: ClassVar[Failure] = Failure.FOLDER_MISSING

    temporary = False


class MailboxInsecureError(MailboxError, PermissionError):
    """A password would travel unencrypted and the account did not allow that."""

    failure: ClassVar[Failure] = Failure.INSECURE_REFUSED

    temporary = False


class MailboxTokenRefused(MailboxAuthError):
    """The mailbox server refused an OAuth2 access token (XOAUTH2 / OAUTHBEARER).

    ``status`` and ``scope`` are what the server's error JSON said, when it said it.
    """

    failure: ClassVar[Failure] = Failure.OAUTH_TOKEN_REFUSED

    def __init__(self, message: str, *, cause: str = "", fix: str = "", reply: str = "", resp_code: str = "",
                 status: str = "", scope: str = "") -> None:
        super().__init__(message, cause=cause, fix=fix, reply=reply, resp_code=resp_code)
        self.status = status
        self.scope = scope


class SmtpError(Pop3guiError):
    """Submission to the local mail server failed as a whole."""

    failure: ClassVar[Failure] = Failure.SMTP_FAILED

    temporary = True

    def __init__(
        self,
        message: str,
        *,
        cause: str = "",
        fix: str = "",
        code: int = 0,
        reply: str = "",
        transcript: str = "",
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(message, cause=cause, fix=fix)
        self.code = code
        self.reply = reply
        self.transcript = transcript
        # True when the session broke after the message data was sent: the server may have it.
        self.maybe_delivered = maybe_delivered


class SmtpConnectionError(SmtpError, ConnectionError):
    """The local mail server could not be reached or dropped the connection."""

    failure: ClassVar[Failure] = Failure.SMTP_CONNECTION_FAILED


class SmtpTimeoutError(SmtpError, TimeoutError):
    """The local mail server stopped answering."""

    failure: ClassVar[Failure] = Failure.SMTP_TIMEOUT


class SmtpAuthError(SmtpError, PermissionError):
    """The local mail server refused the SMTP login."""

    failure: ClassVar[Failure] = Failure.SMTP_AUTH_FAILED

    temporary = False


class SmtpTokenRefused(SmtpAuthError):
    """The local mail server refused an OAuth2 access token (AUTH XOAUTH2)."""

    failure: ClassVar[Failure] = Failure.OAUTH_TOKEN_REFUSED


class OAuthError(Pop3guiError):
    """Signing in with OAuth2 failed; the account's mail stays on the server until it works."""

    failure: ClassVar[Failure] = Failure.OAUTH_PROVIDER_FAILED


class SignInNeeded(OAuthError, PermissionError):
    """No usable tokens: the account must be signed in (again) with ``pop3gui auth login``."""

    failure: ClassVar[Failure] = Failure.SIGN_IN_NEEDED


class OAuthConsentMissing(OAuthError, PermissionError):
    """The user or the tenant's admin has not allowed the app the mail access it asks for."""

    failure: ClassVar[Failure] = Failure.OAUTH_CONSENT_MISSING


class OAuthClientInvalid(OAuthError, ValueError):
    """The provider does not know the app: wrong client id, tenant, or client secret."""

    failure: ClassVar[Failure] = Failure.OAUTH_CLIENT_INVALID


class SignInBusy(OAuthError, TimeoutError):
    """Another pop3gui process has held an account's sign-in for too long (a sign-in left open?)."""

    failure: ClassVar[Failure] = Failure.OAUTH_PROVIDER_FAILED


class OAuthProviderUnreachable(OAuthError, ConnectionError):
    """The sign-in service could not be reached or did not answer in time."""

    failure: ClassVar[Failure] = Failure.OAUTH_PROVIDER_FAILED
