"""``pop3gui events``: the event log on the terminal, as text, JSON lines or CSV, filtered by the store."""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from pop3gui.cli.output import EXIT_OK, event_json
from pop3gui.core.errors import ConfigError
from pop3gui.core.events.model import Event, Severity
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.paths import Paths

CSV_COLUMNS = ("time", "severity", "id", "account", "text", "cause", "fix", "diagnosis")
_RELATIVE = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "events", help="show the event log",
        description="Show recorded events, oldest first: the most recent ones that pass every filter given.")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON object per line")
    form.add_argument("--csv", action="store_true",
                      help="CSV with a header row: " + ", ".join(CSV_COLUMNS))
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing new events (that pass the filters) until interrupted")
    parser.add_argument("--limit", "-n", type=int, default=50, metavar="N",
                        help="how many recent events (default 50; 0 for all)")
    parser.add_argument("--account", metavar="NAME", help="only this account's events")
    parser.add_argument("--severity", metavar="LEVEL",
                        help="this level and above: debug, info, warning or error")
    parser.add_argument("--since", metavar="WHEN",
                        help="only events since then: an ISO date or date and time (2024-05-01, "
                        "2024-05-01T08:00), or a time ago (30m, 2h, 3d, 1w)")
    parser.add_argument("--grep", metavar="TEXT", help="only events whose text, cause or fix contains TEXT "
                        "(ignoring case)")
    parser.set_defaults(handler=run)


def parse_severity(text: str) -> Severity:
    try:
        return Severity[text.strip().upper()]
    except KeyError:
        raise ConfigError(f"unknown severity {text!r}", key="--severity",
                          cause="The levels are debug, info, warning and error.",
                          fix="Give one of them, e.g. --severity warning for warnings and errors.") from None


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A moment from an ISO date/time (naive: local time) or a time ago like ``2h``; zone-aware."""
    now = now or datetime.now(timezone.utc)
    cleaned = text.strip()
    relative = _RELATIVE.fullmatch(cleaned)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(cleaned.replace(" ", "T", 1) if " " in cleaned else cleaned)
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r} as a time", key="--since",
            cause="--since takes an ISO 8601 date or date and time, or a time ago in s, m, h, d or w.",
            fix="For example --since 2024-05-01, --since '2024-05-01 08:00', --since 2h or --since 3d.",
        ) from None
    return moment.astimezone() if moment.tzinfo is None else moment


def run(paths: Paths, args: argparse.Namespace) -> int:
    severity = parse_severity(args.severity) if args.severity is not None else None
    since = parse_since(args.since) if args.since is not None else None
    if args.limit < 0:
        raise ConfigError(f"{args.limit} is not a number of events", key="--limit",
                          cause="The limit counts the most recent events to show.",
                          fix="Give 0 for all, or a positive number.")
    follow = args.follow
    if not paths.events_db.exists():
        print(f"No events yet ({paths.events_db} does not exist): run `pop3gui run --once` first.",
              file=sys.stderr)
        if not follow:
            return EXIT_OK
    show = _printer(args)
    store = EventStore(paths.events_db)
    try:
        def matching(after: int, limit: int | None) -> list[Event]:
            return store.query(account=args.account, min_severity=severity, since=since, grep=args.grep,
                               after_seq=after, limit=limit)

        def top() -> int:
            newest = store.latest(1)
            return newest[0].seq if newest else 0

        # Following goes on after the newest event stored, whether or not it passed the filters:
        # the next poll reads only what came since, not everything since the last match.
        last, stored = 0, top()
        for event in matching(0, args.limit or None):
            show(event)
            last = event.seq
        last = max(last, stored)
        while follow:
            time.sleep(0.5)
            stored = top()
            for event in matching(last, None):
                show(event)
                last = event.seq
            last = max(last, stored)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `pop3gui events | head`: stop quietly, and let the exit flush nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        store.close()
    return EXIT_OK


def _printer(args: argparse.Namespace) -> Callable[[Event], None]:
    if args.json:
        return lambda event: print(event_json(event), flush=True)
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)

        def row(event: Event) -> None:
            writer.writerow((event.time.isoformat(), event.severity.name.lower(), int(event.id), event.account,
                             event.text, event.cause, event.fix, str(event.diagnosis or "")))
            sys.stdout.flush()

        return row
    return lambda event: print(event.full_text(), flush=True)
