"""The ``pop3gui`` command line: run, check, events, secret, auth, demo.

The headless commands import no Qt (fast start under cron or systemd); only
the window, opened when no sub-command is given, and ``demo`` without
``--headless`` load the GUI package.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pop3gui import __version__, cli_auth
from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import Config
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.state.credentials import Credentials, prepare_in_background
from pop3gui.core.desktop.display import has_display, no_display_error
from pop3gui.core.errors import ConfigError, Pop3guiError
from pop3gui.core.events.model import Event, Severity, event_record
from pop3gui.core.events.recorder import EventRecorder
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.state.paths import HOME_ENV, Paths, default_paths
from pop3gui.core.engine.cycle import Connector

if TYPE_CHECKING:
    from pop3gui.core.engine.preflight import Report
    from pop3gui.demo.sandbox import Sandbox

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pop3gui",
        description="Download ISP POP3 mailboxes and deliver the mail to the office's own mail server, "
        "never losing a message.",
        epilog="Without a command, opens the connector's properties window.",
    )
    parser.add_argument("--version", action="version", version=f"pop3gui {__version__}")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: the platform's config "
                        "folder, or $POP3GUI_HOME/config.toml)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="the headless runner: retrieve on the schedule until stopped",
                         description="Retrieve and deliver mail on the schedule until SIGINT/SIGTERM (the "
                         "message in flight is finished first). Exit 0 when every message reached its "
                         "recipients or stayed on the server by rule, 1 when an account failed or a recipient "
                         "was refused, 2 on a configuration error.")
    run.add_argument("--once", action="store_true", help="run one cycle and exit")
    run.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    run.add_argument("-v", "--verbose", action="store_true", help="print debug events too")

    sub.add_parser("check", help="preflight: validate the config, log in everywhere, probe every local "
                   "recipient (sends no mail)",
                   description="Validate the configuration, flag every target outside the recipient policies, "
                   "log in to each POP3 account and the SMTP server, and probe each local target with "
                   "MAIL FROM + RCPT TO + RSET. Exit 0 when clean, 1 otherwise, 2 on a configuration error.")

    ev = sub.add_parser("events", help="show the event log", description="Show recorded events, oldest first.")
    ev.add_argument("--json", action="store_true", help="one JSON object per line")
    ev.add_argument("--follow", "-f", action="store_true", help="keep printing new events until interrupted")
    ev.add_argument("--limit", "-n", type=int, default=50, metavar="N", help="how many recent events (default 50)")

    sub.add_parser("tray", help="run in the system tray: retrieve on the schedule in the background",
                   description="Run the connector in the background with a system tray icon (Retrieve Now, "
                   "Pause, the properties window, notifications of problems). Only one instance runs per state "
                   "folder: a second `pop3gui` or `pop3gui tray` opens the running one's window. Without a "
                   "system tray, the properties window stays open instead.")

    sec = sub.add_parser("secret", help="store or delete a password in the OS keyring",
                         description="Passwords live only in the OS keyring. `set` reads the password with a "
                         "hidden prompt on a terminal, or from standard input otherwise.")
    sec.add_argument("action", choices=["set", "delete"])
    sec.add_argument("account", nargs="?", help="the account name (not needed with --smtp)")
    sec.add_argument("--smtp", action="store_true", help="the SMTP login of [smtp] username instead")
    sec.add_argument("--oauth-client", metavar="PROVIDER",
                     help="the client secret of an [[oauth_provider]] instead (app-only apps; Google's Desktop "
                     "clients)")

    cli_auth.add_parser(sub)

    demo = sub.add_parser("demo", help="see the whole connector work in a sandbox (fake ISP and Exchange on "
                          "loopback; touches no real mail, config or keyring)",
                          description="Start a sandbox: a fake ISP POP3 server with sample mail, a fake Exchange "
                          "that accepts only contoso.com, and a sample configuration in a temporary folder. "
                          "Then run `check` and one cycle, and summarise what was delivered, refused (the "
                          "KB Q325464 case: erin@contoso.eu, a domain no recipient policy covers), quarantined "
                          "and left on the server. Exit 0 when the demo behaved as designed - the refusal of "
                          "erin@contoso.eu is part of the design, and the message is kept in the quarantine with "
                          "the reason and the fix - 1 when it did not.")
    demo.add_argument("--headless", action="store_true", help="no window: print everything on the terminal")
    demo.add_argument("--once", action="store_true", help="one cycle, then exit (default: keep the sandbox "
                      "running and cycling until interrupted)")
    demo.add_argument("--tray", action="store_true", help="the window demo starts in the system tray")
    demo.add_argument("--keep", action="store_true", help="keep the sandbox folder (config, state, the "
                      "Exchange's Maildirs) and print its path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = default_paths(args.config)
    try:
        if args.command == "run":
            return cmd_run(paths, once=args.once, quiet=args.quiet, verbose=args.verbose)
        if args.command == "check":
            return cmd_check(paths)
        if args.command == "events":
            return cmd_events(paths, as_json=args.json, follow=args.follow, limit=args.limit)
        if args.command == "secret":
            if args.oauth_client:
                return cmd_client_secret(paths, args.action, args.oauth_client)
            return cmd_secret(paths, args.action, args.account, smtp=args.smtp)
        if args.command == "auth":
            return cli_auth.run(paths, args)
        if args.command == "tray":
            return cmd_tray(paths)
        if args.command == "demo":
            return cmd_demo(headless=args.headless, once=args.once, tray=args.tray, keep=args.keep)
        return cmd_window(paths)
    except ConfigError as exc:
        _print_error(exc)
        return EXIT_CONFIG
    except Pop3guiError as exc:
        _print_error(exc)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130


def _print_error(exc: Pop3guiError) -> None:
    print(f"pop3gui: error: {exc.explain()}", file=sys.stderr)


def _console_sink(min_severity: Severity) -> Callable[[Event], None]:
    def show(event: Event) -> None:
        if event.severity < min_severity:
            return
        print(event.one_line(), flush=True)
        if event.severity >= Severity.WARNING:
            for label, value in (("cause", event.cause), ("fix", event.fix)):
                if value:
                    print(f"    {label}: {value}", flush=True)

    return show


def cmd_run(paths: Paths, *, once: bool, quiet: bool, verbose: bool) -> int:
    config = load_config(paths.config_file)
    prepare_in_background()
    with RunnerLock(paths.lock_file):
        with EventRecorder(paths, config.logging.level) as recorder:
            level = Severity.WARNING if quiet else Severity.DEBUG if verbose else Severity.INFO
            recorder.bus.subscribe(_console_sink(level))
            connector = Connector(config, paths, recorder.bus)
            try:
                return asyncio.run(_run(connector, once))
            finally:
                connector.close()


async def _run(connector: Connector, once: bool) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, connector.request_stop)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl+C arrives as KeyboardInterrupt
            pass
    if once:
        return (await connector.run_cycle()).exit_code
    await connector.run_forever()
    return EXIT_OK


def cmd_check(paths: Paths) -> int:
    from pop3gui.core.engine.preflight import run_preflight

    config = load_config(paths.config_file)
    print(f"Configuration {paths.config_file}: valid.")
    report = asyncio.run(run_preflight(config, sign_ins=SignIns(Credentials(), paths.sign_in_locks)))
    _print_findings(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _print_findings(report: Report) -> None:
    for finding in report.findings:
        print(f"[{'ok' if finding.ok else 'PROBLEM'}] {finding.subject}: {finding.text}", flush=True)
        if not finding.ok:
            if finding.cause:
                print(f"    cause: {finding.cause}", flush=True)
            if finding.fix:
                print(f"    fix: {finding.fix}", flush=True)
    problems = sum(not f.ok for f in report.findings)
    print("All checks passed." if report.ok else f"{problems} problem(s) found.", flush=True)


def _event_json(event: Event) -> str:
    return json.dumps(event_record(event), ensure_ascii=False)


def cmd_events(paths: Paths, *, as_json: bool, follow: bool, limit: int) -> int:
    if not paths.events_db.exists():
        print(f"No events yet ({paths.events_db} does not exist): run `pop3gui run --once` first.",
              file=sys.stderr)
        if not follow:
            return EXIT_OK
    store = EventStore(paths.events_db)
    try:
        def show(events: list[Event]) -> int:
            last = 0
            for event in events:
                print(_event_json(event) if as_json else event.full_text(), flush=True)
                last = event.seq
            return last

        last = show(store.latest(max(limit, 0)))
        while follow:
            time.sleep(0.5)
            last = show(store.since(last)) or last
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return EXIT_OK


def _read_password(prompt: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt)
    data = sys.stdin.read() if sys.stdin is not None else ""
    return data.rstrip("\r\n")


def _config_if_present(paths: Paths) -> Config | None:
    return load_config(paths.config_file) if paths.config_file.exists() else None


def cmd_secret(paths: Paths, action: str, account: str | None, *, smtp: bool) -> int:
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


def cmd_client_secret(paths: Paths, action: str, provider: str) -> int:
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


def cmd_window(paths: Paths) -> int:
    """Without a command: the properties window."""
    if not has_display():
        raise no_display_error("the properties window")
    from pop3gui.gui.app import run_window

    result: int = run_window(paths)
    return result


def cmd_tray(paths: Paths) -> int:
    """``pop3gui tray``: the background runner with its tray icon."""
    if not has_display():
        raise no_display_error("the tray runner")
    from pop3gui.gui.app import run_tray

    result: int = run_tray(paths)
    return result


# --- demo --------------------------------------------------------------------


def cmd_demo(*, headless: bool, once: bool, tray: bool, keep: bool) -> int:
    """The sandbox demo; the window hook is ``pop3gui.gui.demo_window.run_demo_window``.

    Hook contract: ``run_demo_window(sandbox, *, once: bool, tray: bool) -> int``
    receives a :class:`~pop3gui.demo.sandbox.Sandbox` that is not started yet,
    starts it on its own (qasync) loop with ``await sandbox.start()``, stops it
    with ``await sandbox.stop()`` before returning, and returns the exit code.
    The folder is removed here afterwards (unless --keep).
    """
    from pop3gui.demo.sandbox import Sandbox

    sandbox = Sandbox(keep=keep)
    # Anything calling default_paths() lands in the sandbox; the sandbox's sign-in page is on loopback, so
    # a proxy from the environment must not carry the sign-in's requests.
    changes = {HOME_ENV: str(sandbox.folder), **{name: _with_loopback(os.environ.get(name, ""))
                                                  for name in ("NO_PROXY", "no_proxy")}}
    previous_env = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        if not headless and not has_display():
            print("This session has no screen (no DISPLAY or WAYLAND_DISPLAY): running the demo in the "
                  "terminal instead.", flush=True)
            headless = True
        if not headless:
            try:  # looked up by name: the window part of the demo is optional
                window = importlib.import_module("pop3gui.gui.demo_window")
            except ImportError as exc:
                print(f"The window demo is not available ({exc}); running the demo on the terminal.",
                      flush=True)
            else:
                code: int = window.run_demo_window(sandbox, once=once, tray=tray)
                return code
        return asyncio.run(_demo_headless(sandbox, once))
    finally:
        for name, value in previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sandbox.cleanup()
        if keep:
            print(f"\nThe sandbox folder is kept: {sandbox.folder}\n"
                  f"  events:    POP3GUI_HOME={sandbox.folder} pop3gui events\n"
                  f"  Maildirs:  {sandbox.maildir_root}", flush=True)


def _with_loopback(no_proxy: str) -> str:
    """A NO_PROXY value that also exempts 127.0.0.1."""
    return f"{no_proxy},127.0.0.1" if no_proxy.strip() else "127.0.0.1"


async def _demo_headless(sandbox: Sandbox, once: bool) -> int:
    from pop3gui.core.engine.preflight import run_preflight
    from pop3gui.demo.story import DANA, OAUTH_ACCOUNT

    started = time.monotonic()
    async with sandbox:
        print(f"pop3gui demo sandbox in {sandbox.folder}\n"
              f"  fake ISP (POP3):      127.0.0.1:{sandbox.pop3.port}, mailboxes "
              f"{', '.join(sandbox.pop3.mailboxes)}\n"
              f"  fake ISP (IMAP):      127.0.0.1:{sandbox.imap.port}, with push (IDLE)\n"
              f"  fake Exchange (SMTP): 127.0.0.1:{sandbox.exchange.port}, accepts "
              f"{', '.join(sorted(sandbox.exchange.accepted_domains))}\n"
              f"  demo sign-in page:    {sandbox.sign_in_page.authorize_url} (OAuth2 for {DANA})\n"
              f"  configuration:        {sandbox.paths.config_file}\n", flush=True)
        print(f"== pop3gui auth login {OAUTH_ACCOUNT}: sign in with OAuth2 ==\n"
              f"Signing in {DANA} at the demo sign-in page (a real provider would show its own page in your "
              "browser); the demo presses Allow itself.", flush=True)
        record = await sandbox.sign_in()
        print(f"Signed in account {OAUTH_ACCOUNT!r} as {record.identity}; the sign-in is kept in the sandbox's "
              "in-memory keyring (`pop3gui auth login` keeps it in the OS keyring). No password is stored for "
              "this mailbox.\n", flush=True)
        print("== pop3gui check: find problems before any mail flows ==", flush=True)
        preflight = await run_preflight(sandbox.config,
                                        sign_ins=SignIns(Credentials(), sandbox.paths.sign_in_locks))
        _print_findings(preflight)
        print("\n== pop3gui run --once: one cycle ==", flush=True)
        events: list[Event] = []
        with EventRecorder(sandbox.paths, sandbox.config.logging.level) as recorder:
            for sink in (events.append, _console_sink(Severity.INFO)):
                recorder.bus.subscribe(sink)
            connector = sandbox.connector(recorder.bus)
            try:
                await connector.run_cycle()
                report = sandbox.report(events, preflight)
                print("\n" + report.summary(), flush=True)
                print(f"\nThe demo took {time.monotonic() - started:.1f} s.", flush=True)
                if not once:
                    await _demo_keep_running(sandbox, connector)
            finally:
                connector.close()
    return EXIT_OK if report.as_designed else EXIT_PROBLEMS


async def _demo_keep_running(sandbox: Sandbox, connector: Connector) -> None:
    print(f"\nThe sandbox keeps running, cycling every {sandbox.config.schedule.interval_min} minute(s); "
          "Ctrl+C ends it.\n"
          f"  in another terminal: POP3GUI_HOME={sandbox.folder} pop3gui events --follow", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, connector.request_stop)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await connector.run_forever()
    except asyncio.CancelledError:
        pass
