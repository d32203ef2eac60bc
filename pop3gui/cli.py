"""The ``pop3gui`` command line: run, check, events, secret.

The headless commands import no Qt (fast start under cron or systemd); only
the window, opened when no sub-command is given, loads the GUI package.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

from pop3gui import __version__
from pop3gui.core.config import Config, load_config
from pop3gui.core.credentials import Credentials
from pop3gui.core.errors import ConfigError, Pop3guiError
from pop3gui.core.events import Event, EventBus, Severity
from pop3gui.core.eventstore import EventLog, EventStore
from pop3gui.core.lock import RunnerLock
from pop3gui.core.paths import Paths, default_paths
from pop3gui.core.worker import Connector

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

    sec = sub.add_parser("secret", help="store or delete a password in the OS keyring",
                         description="Passwords live only in the OS keyring. `set` reads the password with a "
                         "hidden prompt on a terminal, or from standard input otherwise.")
    sec.add_argument("action", choices=["set", "delete"])
    sec.add_argument("account", nargs="?", help="the account name (not needed with --smtp)")
    sec.add_argument("--smtp", action="store_true", help="the SMTP login of [smtp] username instead")
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
            return cmd_secret(paths, args.action, args.account, smtp=args.smtp)
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
    with RunnerLock(paths.lock_file):
        store = EventStore(paths.events_db)
        logfile = EventLog(paths.log_file)
        bus = EventBus()
        bus.subscribe(store)
        bus.subscribe(logfile)
        level = Severity.WARNING if quiet else Severity.DEBUG if verbose else Severity.INFO
        bus.subscribe(_console_sink(level))
        connector = Connector(config, paths, bus)
        try:
            return asyncio.run(_run(connector, once))
        finally:
            connector.close()
            store.close()
            logfile.close()


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
    from pop3gui.core.preflight import run_preflight

    config = load_config(paths.config_file)
    print(f"Configuration {paths.config_file}: valid.")
    report = asyncio.run(run_preflight(config))
    for finding in report.findings:
        print(f"[{'ok' if finding.ok else 'PROBLEM'}] {finding.subject}: {finding.text}")
        if not finding.ok:
            if finding.cause:
                print(f"    cause: {finding.cause}")
            if finding.fix:
                print(f"    fix: {finding.fix}")
    problems = sum(not f.ok for f in report.findings)
    print("All checks passed." if report.ok else f"{problems} problem(s) found.")
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _event_json(event: Event) -> str:
    data = asdict(event)
    data["id"] = int(event.id)
    data["severity"] = event.severity.name.lower()
    data["time"] = event.time.isoformat()
    return json.dumps(data, ensure_ascii=False)


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


def _require(password: str) -> None:
    if not password:
        raise ConfigError("the password is empty; nothing was stored",
                          fix="Type the password at the prompt, or pipe it on standard input.")


def cmd_window(paths: Paths) -> int:
    """Without a command: the properties window, once the GUI package provides it."""
    try:
        from pop3gui.gui.app import run_window
    except ImportError:
        build_parser().print_help()
        return EXIT_OK
    result: int = run_window(paths)
    return result

