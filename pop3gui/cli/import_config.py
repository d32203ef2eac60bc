"""``pop3gui import``: bring the mailboxes of a fetchmail or getmail configuration into pop3gui.

The configuration file is merged, never overwritten account by account (see
:mod:`pop3gui.core.migrate.mapping`); passwords found in the file go to the
OS keyring only with --yes or a "y" at the terminal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import tomli_w

from pop3gui.cli.output import EXIT_OK, EXIT_PROBLEMS
from pop3gui.core.config.load import load_config
from pop3gui.core.config.save import config_to_dict, save_config
from pop3gui.core.migrate import ImportResult, build_config, read_plans
from pop3gui.core.migrate.keyring_store import store_secrets
from pop3gui.core.state.paths import Paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    imp = sub.add_parser("import", help="import the mailboxes of a fetchmail or getmail configuration",
                         description="Read ~/.fetchmailrc (or the files named) or getmail rc files, add their "
                         "mailboxes as accounts to the configuration, and list what could not be carried over. "
                         "See docs/migration.md.")
    imp.add_argument("kind", choices=["fetchmailrc", "getmailrc"], help="the kind of file")
    imp.add_argument("files", nargs="*", metavar="FILE",
                     help="the files to import (fetchmailrc: default ~/.fetchmailrc; getmailrc: at least one)")
    imp.add_argument("--dry-run", action="store_true",
                     help="print the resulting configuration and the report; write nothing")
    imp.add_argument("--yes", action="store_true", help="store the passwords found in the keyring without asking")
    imp.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    files = [Path(f).expanduser() for f in args.files]
    if not files:
        if args.kind == "getmailrc":
            print("pop3gui: error: name the getmail rc file(s) to import, e.g. "
                  "`pop3gui import getmailrc ~/.getmail/getmailrc`", file=sys.stderr)
            return 2
        files = [Path("~/.fetchmailrc").expanduser()]
    existing = load_config(paths.config_file) if paths.config_file.exists() else None
    result = build_config(read_plans(args.kind, files), existing)
    if args.dry_run:
        print(tomli_w.dumps(config_to_dict(result.config)))
        _report(result, paths, existing is not None, written=False)
        if result.secrets:
            print(f"Passwords: {len(result.secrets)} would go to the keyring (not in the configuration file):")
            for secret in result.secrets:
                print(f"  {secret.describe()}")
        print("Dry run: nothing was written.")
        return EXIT_PROBLEMS if result.unmapped else EXIT_OK
    if result.added:
        save_config(result.config, paths.config_file)
    _report(result, paths, existing is not None, written=bool(result.added))
    stored = _passwords(result, args.yes)
    return EXIT_PROBLEMS if result.unmapped or not stored else EXIT_OK


def _report(result: ImportResult, paths: Paths, merged: bool, *, written: bool) -> None:
    print(f"Accounts: {len(result.added)} imported" + (":" if result.added else "."))
    for acc in result.added:
        target = acc.deliver_to if acc.kind == "user" else "global mailbox (envelope: "  \
            f"{', '.join(acc.envelope_headers) or 'To/Cc'})"
        print(f"  {acc.name}: {acc.protocol} {acc.username}@{acc.host}:{acc.port} ({acc.security}) -> {target}"
              + ("" if acc.enabled else " [disabled]"))
    if result.added_policy is not None:
        print(f"Recipient policy {result.added_policy.name!r}: {', '.join(result.added_policy.domains)}")
    if result.smtp_changed:
        print(f"SMTP: {result.config.smtp.host}:{result.config.smtp.port}"
              + (f" as {result.config.smtp.username}" if result.config.smtp.username else ""))
    info = [n for n in result.notes if not n.unmapped]
    if info:
        print("Changed on the way:")
        for note in info:
            print(f"  {note}")
    if result.unmapped:
        print(f"Not mapped ({len(result.unmapped)}):")
        for note in result.unmapped:
            print(f"  {note}")
    if written:
        print(f"{'Merged into' if merged else 'Wrote'} {paths.config_file}.")
    elif not result.added:
        print("Nothing to add: the configuration file was left unchanged.")


def _passwords(result: ImportResult, yes: bool) -> bool:
    """Store the passwords when allowed; False when some were left for the admin to store."""
    secrets = [s for s in result.secrets if any(a.name == s.account for a in result.added) or s.smtp_username]
    if not secrets:
        return True
    if not yes:
        if sys.stdin is None or not sys.stdin.isatty():
            print(f"Passwords: {len(secrets)} found, NOT stored (not a terminal and no --yes). Store them with "
                  "`pop3gui import ... --yes` again, or one by one:")
            for secret in secrets:
                command = "pop3gui secret set --smtp" if secret.smtp_username else f"pop3gui secret set "\
                    f"{_quoted(secret.account)}"
                print(f"  {command}    ({secret.describe()})")
            return False
        answer = input(f"Store the {len(secrets)} password(s) found in the OS keyring? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Passwords were not stored; `pop3gui secret set ACCOUNT` stores one.")
            return False
    for secret in store_secrets(secrets):
        print(f"Stored in the keyring: {secret.describe()}")
    print(f"The imported file ({', '.join(sorted({s.file for s in secrets}))}) still holds these passwords in "
          "plain text: delete it, or remove them, once pop3gui fetches the mail.")
    return True


def _quoted(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").replace(".", "").replace("@", "").isalnum() \
        else "'" + name.replace("'", "'\\''") + "'"
