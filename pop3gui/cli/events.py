"""``pop3gui events``: the event log on the terminal, as text or JSON lines."""

from __future__ import annotations

import argparse
import sys
import time

from pop3gui.cli.output import EXIT_OK, event_json
from pop3gui.core.events.model import Event
from pop3gui.core.events.store import EventStore
from pop3gui.core.state.paths import Paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("events", help="show the event log", description="Show recorded events, oldest first.")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new events until interrupted")
    parser.add_argument("--limit", "-n", type=int, default=50, metavar="N",
                        help="how many recent events (default 50)")
    parser.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    as_json, follow, limit = args.json, args.follow, args.limit
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
                print(event_json(event) if as_json else event.full_text(), flush=True)
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
