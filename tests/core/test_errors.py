"""The error hierarchy: each error is also the built-in it is, and says its cause and fix."""

from __future__ import annotations

import inspect

import pytest

from pop3gui.core import errors
from pop3gui.core.errors import (
    ConfigError,
    CredentialError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxError,
    Pop3guiError,
    MailboxInsecureError,
    MailboxInUseError,
    FolderMissingError,
    MailboxProtocolError,
    MailboxTimeoutError,
    MailboxTlsError,
    SmtpAuthError,
    SmtpConnectionError,
    SmtpError,
    SmtpTimeoutError,
    StateError,
    TlsSetupError,
    OAuthError,
    SignInNeeded,
    OAuthConsentMissing,
    OAuthClientInvalid,
    OAuthProviderUnreachable,
    SignInBusy,
    MailboxTokenRefused,
    SmtpTokenRefused,
)

# The built-in each error is, so code that knows only the standard library catches it.
# A class that is no more specific than Exception says so here on purpose.
BUILTIN: dict[type[Pop3guiError], type[Exception]] = {
    Pop3guiError: Exception,
    ConfigError: ValueError,
    CredentialError: RuntimeError,
    StateError: OSError,
    TlsSetupError: OSError,
    MailboxError: Exception,
    MailboxConnectionError: ConnectionError,
    MailboxTlsError: ConnectionError,
    MailboxTimeoutError: TimeoutError,
    MailboxProtocolError: ValueError,
    MailboxCommandError: Exception,
    MailboxAuthError: PermissionError,
    MailboxInUseError: Exception,
    FolderMissingError: Exception,
    MailboxInsecureError: PermissionError,
    SmtpError: Exception,
    SmtpConnectionError: ConnectionError,
    SmtpTimeoutError: TimeoutError,
    SmtpAuthError: PermissionError,
    MailboxTokenRefused: PermissionError,
    SmtpTokenRefused: PermissionError,
    OAuthError: Exception,
    SignInNeeded: PermissionError,
    OAuthConsentMissing: PermissionError,
    OAuthClientInvalid: ValueError,
    OAuthProviderUnreachable: ConnectionError,
    SignInBusy: TimeoutError,
}

# Errors a later attempt cannot cure: retrying them only repeats the failure.
PERMANENT = {MailboxTlsError, MailboxAuthError, MailboxInsecureError, FolderMissingError, SmtpAuthError, MailboxTokenRefused, SmtpTokenRefused}


def _error_classes() -> list[type[Pop3guiError]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, Pop3guiError) and cls.__module__ == errors.__name__]


def test_every_error_class_of_the_module_has_its_builtin_named_here() -> None:
    assert set(_error_classes()) == set(BUILTIN)


@pytest.mark.parametrize("cls", list(BUILTIN), ids=lambda c: c.__name__)
def test_an_error_is_caught_as_its_builtin_and_carries_its_cause_and_fix(cls: type[Pop3guiError]) -> None:
    builtin = BUILTIN[cls]
    with pytest.raises(builtin) as caught:
        raise cls("the thing failed", cause="Why it failed.", fix="What to do.")
    exc = caught.value
    assert isinstance(exc, Pop3guiError)
    assert str(exc) == "the thing failed"
    assert exc.message == "the thing failed"
    assert (exc.cause, exc.fix) == ("Why it failed.", "What to do.")
    assert exc.explain() == "the thing failed\nCause: Why it failed.\nFix: What to do."


@pytest.mark.parametrize("cls", [c for c in BUILTIN if issubclass(c, OSError)], ids=lambda c: c.__name__)
def test_an_oserror_kind_keeps_its_message_whole(cls: type[Pop3guiError]) -> None:
    """OSError reads two arguments as errno and text; one message must stay one message."""
    exc = cls("cannot write /var/lib/pop3gui: disk full", cause="c", fix="f")
    assert str(exc) == "cannot write /var/lib/pop3gui: disk full"
    assert isinstance(exc, OSError) and exc.errno is None


def test_explain_leaves_out_what_is_not_known() -> None:
    assert Pop3guiError("only a message").explain() == "only a message"
    assert StateError("m", fix="Free some space.").explain() == "m\nFix: Free some space."


@pytest.mark.parametrize(("path", "key", "shown"), [
    ("/etc/pop3gui/config.toml", "smtp.port", "/etc/pop3gui/config.toml: smtp.port: not a port"),
    ("/etc/pop3gui/config.toml", "", "/etc/pop3gui/config.toml: not a port"),
    ("", "smtp.port", "smtp.port: not a port"),
    ("", "", "not a port"),
])
def test_a_config_error_names_the_file_and_the_key(path: str, key: str, shown: str) -> None:
    exc = ConfigError("not a port", path=path, key=key, cause="c", fix="f")
    assert str(exc) == shown
    assert (exc.path, exc.key) == (path, key)


@pytest.mark.parametrize("cls", [c for c in BUILTIN if issubclass(c, (MailboxError, SmtpError))],
                         ids=lambda c: c.__name__)
def test_only_errors_a_retry_cannot_cure_are_permanent(cls: type[MailboxError] | type[SmtpError]) -> None:
    assert cls.temporary is (cls not in PERMANENT)


def test_a_pop3_error_keeps_the_servers_reply() -> None:
    exc = MailboxAuthError("login refused", reply="-ERR [AUTH] Authentication failed.", resp_code="AUTH")
    assert (exc.reply, exc.resp_code) == ("-ERR [AUTH] Authentication failed.", "AUTH")


def test_an_smtp_error_keeps_the_reply_and_the_transcript() -> None:
    exc = SmtpConnectionError("dropped", code=421, reply="4.3.2 Shutting down", transcript="<S>: 421 ...",
                              maybe_delivered=True)
    assert (exc.code, exc.reply, exc.transcript, exc.maybe_delivered) == (
        421, "4.3.2 Shutting down", "<S>: 421 ...", True)
    assert SmtpError("x").maybe_delivered is False
