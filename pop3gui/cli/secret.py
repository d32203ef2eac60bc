"""``pop3gui secret``: store or delete a password (or an app's client secret) in the OS keyring."""

from __future__ import annotations

import argparse
import getpass
import sys

from pop3gui.cli.output import EXIT_OK
from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import Config
from pop3gui.core.errors import ConfigError
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.paths import Paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sec = sub.add_parser("secret", help="store or delete a password in the OS keyring",
                         description="Passwords live only in the OS keyring. `set` reads the password with a "
                         "hidden prompt on a terminal, or from standard input otherwise.")
    sec.add_argument("action", choices=["set", "delete"])
    sec.add_argument("account", nargs="?", help="the account name (not needed with --smtp)")
    sec.add_argument("--smtp", action="store_true", help="the SMTP login of [smtp] username instead")
    sec.add_argument("--oauth-client", metavar="PROVIDER",
                     help="the client secret of an [[oauth_provider]] instead (app-only apps; Google's Desktop "
                     "clients)")
    sec.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    if args.oauth_client:
        return _client_secret(paths, args.action, args.oauth_client)
    return _account_secret(paths, args.action, args.account, smtp=args.smtp)


def _read_password(prompt: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    data = sys.stdin.read() if sys.stdin is not None else ""
    return data.rstrip("\r\n")


def _config_if_present(paths: Paths) -> Config | None:
    return load_config(paths.config_file) if paths.config_file.exists() else None


def _account_secret(paths: Paths, action: str, account: str | None, *, smtp: bool) -> int:
    credentials = Credentials()
    config = _config_if_present(paths)
    if smtp:
        username = config.smtp.username if config else ""
        if not username:
            raise ConfigError("smtp.username is empty, so the SMTP login needs no password",
                              path=str(paths.config_file), key="smtp.username",
                              fix="Set smtp.username first, then run `pop3gui secret set --smtp`.")
        if action == "set":
            password = _read_password(f"SMTP password for {username}: ")
            _require(password)
            credentials.set_smtp_password(username, password)
            print(f"Stored the SMTP password of {username} in the keyring.")
        else:
            credentials.delete_smtp_password(username)
            print(f"Deleted the SMTP password of {username} from the keyring.")
        return EXIT_OK
    if not account:
        raise ConfigError("name the account: `pop3gui secret set ACCOUNT` (or use --smtp)",
                          fix="Use the name = ... of an [[account]] in the configuration.")
    if config is not None and account not in {a.name for a in config.accounts}:
        known = ", ".join(a.name for a in config.accounts) or "(none)"
        raise ConfigError(f"no account is called {account!r}", path=str(paths.config_file),
                          fix=f"Use one of: {known}.")
    if action == "set":
        password = _read_password(f"POP3 password for account {account}: ")
        _require(password)
        credentials.set_pop3_password(account, password)
        print(f"Stored the password of account {account} in the keyring.")
    else:
        credentials.delete_pop3_password(account)
        print(f"Deleted the password of account {account} from the keyring.")
    return EXIT_OK


def _client_secret(paths: Paths, action: str, provider: str) -> int:
    config = _config_if_present(paths)
    if config is not None and provider not in {p.name for p in config.oauth_providers}:
        known = ", ".join(p.name for p in config.oauth_providers) or "(none)"
        raise ConfigError(f"no [[oauth_provider]] is called {provider!r}", path=str(paths.config_file),
                          fix=f"Use one of: {known}.")
    if action == "delete":
        raise ConfigError("deleting a client secret is not offered", fix="Store a new one with `secret set`, or "
                          "remove the app's secret in the app registration.")
    secret = _read_password(f"Client secret of {provider}: ")
    _require(secret)
    Credentials().set_oauth_client_secret(provider, secret)
    print(f"Stored the client secret of {provider} in the keyring.")
    return EXIT_OK


def _require(password: str) -> None:
    if not password:
        raise ConfigError("the password is empty; nothing was stored",
                          fix="Type the password at the prompt, or pipe it on standard input.")
