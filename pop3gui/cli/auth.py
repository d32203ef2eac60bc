"""``pop3gui auth``: sign an account (or the local server's login) in with OAuth2, show, sign out.

Signing in opens the system browser (authorization code with PKCE, answered
on a loopback port), or with ``--device`` — and by itself where there is no
screen and no $BROWSER — prints a code to enter on another device.  What lasts is kept in
the OS keyring; nothing token-like is ever printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
import webbrowser
from dataclasses import dataclass

from pop3gui.cli.output import EXIT_OK, EXIT_PROBLEMS
from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import Config, OAuthProviderConfig
from pop3gui.core.desktop.display import has_display
from pop3gui.core.errors import ConfigError, OAuthConsentMissing, Pop3guiError, SignInNeeded
from pop3gui.core.oauth.endpoints import SMTP, mailbox_purpose
from pop3gui.core.oauth.flows import DeviceCode
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import SignIn, sign_in_key, smtp_sign_in_key
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.paths import Paths
from pop3gui.core.threads import in_lookup_thread



def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    auth = sub.add_parser("auth", help="sign in with OAuth2 (Microsoft 365, Outlook.com, Google, ...)",
                          description="Sign an account in with OAuth2 and keep the sign-in in the OS keyring; "
                          "show who is signed in; sign out. See docs/oauth.md for the app registration.")
    actions = auth.add_subparsers(dest="auth_action", metavar="ACTION", required=True)
    login = actions.add_parser("login", help="sign in (the browser, or --device)")
    login.add_argument("account", nargs="?", help="the account name (not needed with --smtp)")
    login.add_argument("--smtp", action="store_true", help="the [smtp] login to the local mail server instead")
    login.add_argument("--device", action="store_true",
                       help="sign in on another device with a code (the default where there is no screen)")
    status = actions.add_parser("status", help="who is signed in, and whether the sign-in still works")
    status.add_argument("--json", action="store_true", help="one JSON object per sign-in")
    logout = actions.add_parser("logout", help="forget an account's sign-in")
    logout.add_argument("account", nargs="?", help="the account name (not needed with --smtp)")
    logout.add_argument("--smtp", action="store_true", help="the [smtp] login instead")
    auth.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    config = load_config(paths.config_file)
    sign_ins = SignIns(Credentials(), paths.sign_in_locks)
    if args.auth_action == "status":
        return asyncio.run(_status(config, sign_ins, as_json=args.json))
    user = _user(config, args.account, smtp=args.smtp, path=str(paths.config_file))
    if args.auth_action == "logout":
        gone = asyncio.run(sign_ins.sign_out(user.key))
        print(f"Signed out {user.label}." if gone else f"{user.label} was not signed in.")
        return EXIT_OK
    # A screen, or a browser command the user named ($BROWSER, e.g. a text browser over SSH), can show the page.
    device = args.device or not (has_display() or os.environ.get("BROWSER"))
    record = asyncio.run(sign_ins.sign_in(user.key, user.provider, user.purpose,
                                          open_page=None if device else _open_browser,
                                          show_code=_show_code if device else None))
    print(f"Signed in {user.label} as {record.identity or 'the app'}; the sign-in is kept in the OS keyring.")
    return EXIT_OK


@dataclass(frozen=True)
class _User:
    """Whoever signs in: an account, or the [smtp] login."""

    key: str
    label: str
    provider: OAuthProviderConfig
    purpose: str


def _user(config: Config, account: str | None, *, smtp: bool, path: str) -> _User:
    if smtp:
        if config.smtp.auth != "oauth2" or not config.smtp.username:
            raise ConfigError("the [smtp] login does not sign in with OAuth2", path=path, key="smtp.auth",
                              fix='Set smtp.username, auth = "oauth2" and oauth_provider first.')
        return _User(smtp_sign_in_key(config.smtp.username), f"the SMTP login {config.smtp.username}",
                     config.oauth_provider(config.smtp.oauth_provider), SMTP)
    if not account:
        raise ConfigError("name the account: `pop3gui auth login ACCOUNT` (or use --smtp)",
                          fix="Use the name = ... of an [[account]] with auth = \"oauth2\".")
    try:
        acc = config.account(account)
    except KeyError:
        known = ", ".join(a.name for a in config.accounts if a.auth == "oauth2") or "(none)"
        raise ConfigError(f"no account is called {account!r}", path=path,
                          fix=f"Accounts that sign in with OAuth2: {known}.") from None
    if acc.auth != "oauth2":
        raise ConfigError(f"account {account!r} logs in with a {acc.auth}, not with OAuth2", path=path,
                          key=f"account {account}.auth",
                          fix=f'Set auth = "oauth2" and oauth_provider for it, or use `pop3gui secret set {account}`.')
    return _User(sign_in_key(acc.name), f"account {acc.name!r}", config.oauth_provider(acc.oauth_provider),
                 mailbox_purpose(acc.protocol))


def _open_browser(url: str) -> None:
    """Open the page without waiting: a browser command that runs until closed (a text browser over SSH)
    must not hold up the loopback server that receives the sign-in's answer."""
    print("Opening the sign-in page in your browser. If none opens, visit:\n  " + url, flush=True)
    threading.Thread(target=webbrowser.open, args=(url,), name="open sign-in page", daemon=True).start()


def _show_code(code: DeviceCode) -> None:
    minutes = max(1, round(code.expires_in / 60))
    print(f"To sign in, visit {code.verification_uri} and enter the code {code.user_code} "
          f"(within {minutes} minutes). Waiting...", flush=True)


async def _status(config: Config, sign_ins: SignIns, *, as_json: bool) -> int:
    users = [_User(sign_in_key(a.name), f"account {a.name!r}", config.oauth_provider(a.oauth_provider),
                   mailbox_purpose(a.protocol))
             for a in config.accounts if a.auth == "oauth2"]
    if config.smtp.username and config.smtp.auth == "oauth2":
        users.append(_User(smtp_sign_in_key(config.smtp.username), f"the SMTP login {config.smtp.username}",
                           config.oauth_provider(config.smtp.oauth_provider), SMTP))
    if not users:
        print("No account signs in with OAuth2.")
        return EXIT_OK
    problems = 0
    for user in users:
        problem: Pop3guiError | None = None
        stored: SignIn | None = None
        try:
            stored = await in_lookup_thread(sign_ins.store.load, user.key)
            await sign_ins.access_token(user.key, user.provider, user.purpose)  # proves the sign-in still works
            stored = await in_lookup_thread(sign_ins.store.load, user.key) or stored
        except Pop3guiError as exc:  # one account's trouble never hides the others'
            problem = exc
        problems += problem is not None
        _print_status(user, stored, sign_ins.token_expiry(user.key), problem, as_json=as_json)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _print_status(user: _User, record: SignIn | None, expiry: float | None, problem: Pop3guiError | None, *,
                  as_json: bool) -> None:
    def when(moment: float | None) -> str | None:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(moment)) if moment else None

    state = {
        "key": user.key, "who": user.label, "provider": user.provider.name,
        "identity": record.identity if record else None, "signed_in_at": when(record.signed_in_at if record else 0),
        "last_refresh": when(record.refreshed_at if record else 0), "access_token_expires": when(expiry),
        # Only a sign-in the provider no longer honours (or never had) needs one; an outage or a locked
        # keyring is a problem, not a reason to sign in again.
        "needs_sign_in": isinstance(problem, (SignInNeeded, OAuthConsentMissing)),
        "ok": problem is None,
        "diagnosis": str(problem.failure) if problem else None,
        "reason": str(problem) if problem else None, "fix": problem.fix if problem else None,
    }
    if as_json:
        print(json.dumps(state, ensure_ascii=False), flush=True)
        return
    if problem is None:
        print(f"{user.label}: signed in as {state['identity'] or 'the app'} (provider {user.provider.name}); "
              f"access token valid until {state['access_token_expires']}, last refresh {state['last_refresh']}.")
    else:
        label = "NEEDS SIGN-IN" if state["needs_sign_in"] else "PROBLEM"
        print(f"{user.label}: {label}: {problem}\n    cause: {problem.cause}\n    fix: {problem.fix}")
