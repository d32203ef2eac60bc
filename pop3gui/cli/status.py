"""``pop3gui status``: the connector's health for a person, a script (``--json``) or Nagios (``--nagios``).

It reads the state other processes write and changes nothing: a running
runner keeps its lock, and the OAuth2 providers are not asked (only whether
a sign-in is kept in the keyring).  The exit code is the Nagios plugin's in
every form: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (no configuration, no or
an unreadable health state) -- never a traceback.
"""

from __future__ import annotations

import argparse
import json

from pop3gui.core.config.load import load_config
from pop3gui.core.errors import Pop3guiError
from pop3gui.core.health.status import (
    State,
    nagios_line,
    read_snapshot,
    safe_error,
    snapshot_json,
    snapshot_text,
    unknown_json,
    unknown_line,
)
from pop3gui.core.oauth.store import SignInStore, sign_in_key
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.paths import Paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "status", help="health of each account, active alerts and the next run (--nagios for monitoring)",
        description="Show each account's last success and failure, failed cycles in a row, messages in "
        "quarantine, OAuth2 sign-ins, the active alerts and the runner's next run. Exit 0 OK, 1 WARNING, "
        "2 CRITICAL, 3 UNKNOWN, as a Nagios plugin; see docs/monitoring.md.")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document (keys in docs/monitoring.md)")
    form.add_argument("--nagios", action="store_true", help="one line in the Nagios plugin format, with perfdata")
    parser.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    try:
        config = load_config(paths.config_file)
        store = SignInStore(Credentials())

        def kept(account: str) -> bool | None:
            try:
                return store.load(sign_in_key(account)) is not None
            except (Pop3guiError, OSError):
                return None

        snap = read_snapshot(config, paths, sign_in_kept=kept)
    except Pop3guiError as exc:
        reason = safe_error(exc)
        if args.nagios:
            print(unknown_line(reason))
        elif args.json:
            print(json.dumps(unknown_json(reason, exc.fix), ensure_ascii=False))
        else:
            print(f"pop3gui status: UNKNOWN: {exc.explain()}")
        return int(State.UNKNOWN)
    if args.nagios:
        state, line = nagios_line(snap)
        print(line)
        return int(state)
    document = snapshot_json(snap)
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print(snapshot_text(snap, paths.config_file))
    return int(State[document["state"].upper()])
