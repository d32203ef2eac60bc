"""``pop3gui quarantine``: the quarantine page of the window, on a server's terminal.

``list``, ``show``, ``resubmit``, ``export`` and ``delete`` do what the
page's buttons do: resubmitting runs resolution and submission again with the
saved configuration (its events go to the event log), exporting copies the
.eml and keeps it, deleting asks first because it is the message's last copy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pop3gui.cli.output import EXIT_CONFIG, EXIT_OK, EXIT_PROBLEMS, console_sink, print_error
from pop3gui.core.config.load import load_config
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.errors import Pop3guiError, StateError
from pop3gui.core.events.model import Severity
from pop3gui.core.events.recorder import EventRecorder
from pop3gui.core.state import quarantine_ops as ops
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.state.paths import Paths
from pop3gui.core.state.quarantine_ops import QuarantineEntry
from pop3gui.core.state.spool import Quarantine


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "quarantine", help="list, show, resubmit, export or delete quarantined messages",
        description="Messages the connector could deliver nowhere. They are deleted on the mail server, so the "
        "quarantine holds their only copy until you resubmit or export them. An ID may be given by its first "
        "characters when no other ID begins the same way.")
    parser.set_defaults(handler=_no_action, parser=parser)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    listing = actions.add_parser("list", help="one line per message: ID, age, account, sender, subject, reason")
    listing.add_argument("--json", action="store_true", help="one JSON document with every message")
    listing.set_defaults(handler=list_messages)

    show = actions.add_parser("show", help="why a message is here, and its headers")
    show.add_argument("id", metavar="ID")
    output = show.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="the record and the headers as one JSON document")
    output.add_argument("--raw", action="store_true", help="the whole .eml on standard output, unchanged")
    show.set_defaults(handler=show_message)

    resubmit = actions.add_parser(
        "resubmit", help="resolve and submit again (after fixing the cause)",
        description="Run recipient resolution and submission again with the saved configuration. Exit 1 when "
        "any message stayed in quarantine.")
    _ids_or_all(resubmit)
    resubmit.add_argument("--json", action="store_true", help="one JSON object per message: id, result, stayed")
    resubmit.set_defaults(handler=resubmit_messages)

    export = actions.add_parser("export", help="copy the .eml out, keeping it in quarantine")
    export.add_argument("ids", nargs="+", metavar="ID")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="DIR", type=Path, help="write ID.eml files into this folder")
    target.add_argument("-o", "--output", metavar="FILE", type=Path, help="write the one message to this file")
    export.set_defaults(handler=export_messages)

    delete = actions.add_parser("delete", help="remove messages for good (asks first)")
    _ids_or_all(delete)
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask (needed when not at a terminal)")
    delete.set_defaults(handler=delete_messages)


def _ids_or_all(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ids", nargs="*", metavar="ID")
    parser.add_argument("--all", action="store_true", help="every quarantined message")


def _no_action(paths: Paths, args: argparse.Namespace) -> int:
    args.parser.print_help(sys.stderr)
    return EXIT_CONFIG


def _quarantine(paths: Paths) -> Quarantine:
    return Quarantine(paths.quarantine_dir)


def _chosen(quarantine: Quarantine, args: argparse.Namespace) -> list[QuarantineEntry] | None:
    """The entries named on the command line, or all with --all; None (said on stderr) when neither or both."""
    if args.all == bool(args.ids):
        print(f"pop3gui: error: give the IDs of the messages or --all, not {'both' if args.all else 'neither'}.\n"
              + ops.HOW_TO_FIND_IDS, file=sys.stderr)
        return None
    return ops.entries(quarantine) if args.all else ops.resolve(quarantine, args.ids)


# --- list and show ----------------------------------------------------------------

def age(seconds: float) -> str:
    """A short age: 45s, 12m, 5h, 3d."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def entry_record(e: QuarantineEntry, *, transcript: bool = False) -> dict[str, Any]:
    """One message as plain data; a missing record or .eml shows as nulls and ``problem``."""
    r = e.record
    data: dict[str, Any] = {
        "id": e.id, "account": r.account if r else None, "uid": r.uid if r else None,
        "message_id": r.message_id if r else None, "sender": r.sender if r else None,
        "subject": r.subject if r else None, "date": r.date if r else None,
        "recipients": list(r.recipients) if r else None, "reason": r.reason if r else None,
        "cause": r.cause if r else None, "fix": r.fix if r else None,
        "quarantined_at": datetime.fromtimestamp(r.quarantined_at, timezone.utc).isoformat() if r else None,
        "age_seconds": round(time.time() - r.quarantined_at) if r else None,
        "file": str(e.message) if e.message else None, "size": e.size if e.message else None,
        "problem": _problem(e),
    }
    if transcript:
        data["transcript"] = r.transcript if r else None
    return data


def _problem(e: QuarantineEntry) -> str | None:
    if e.record is None:
        return "record missing or unreadable"
    if e.message is None:
        return "message file missing"
    return None


def list_messages(paths: Paths, args: argparse.Namespace) -> int:
    quarantine = _quarantine(paths)
    found = ops.entries(quarantine)
    if args.json:
        print(json.dumps({"quarantine": str(quarantine.root), "count": len(found),
                          "messages": [entry_record(e) for e in found]}, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not found:
        print(f"The quarantine is empty ({quarantine.root}).")
        return EXIT_OK
    now = time.time()
    for e in found:
        r = e.record
        if r is None:
            print(f"{e.id}  ?  -  -  -  ({_problem(e)}; {e.size} bytes)")
            continue
        line = f"{e.id}  {age(now - r.quarantined_at)}  {r.account}  {r.sender or '-'}  {r.subject!r}  {r.reason}"
        problem = _problem(e)
        print(line + (f"  ({problem})" if problem else ""))
    print(f"{len(found)} message(s) in quarantine. `pop3gui quarantine show ID` says why and what to do.")
    return EXIT_OK


def show_message(paths: Paths, args: argparse.Namespace) -> int:
    quarantine = _quarantine(paths)
    [e] = ops.resolve(quarantine, [args.id])
    if args.raw:
        if e.message is None:
            raise StateError(f"the message file of {e.id} is missing",
                             cause="Its .eml file was removed by hand or by another program.",
                             fix="Delete the entry with `pop3gui quarantine delete`.")
        sys.stdout.flush()
        with e.message.open("rb") as fh:
            while chunk := fh.read(65536):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return EXIT_OK
    header_error = ""
    try:
        head: list[tuple[str, str]] = [(k, str(v)) for k, v in ops.headers(e).items()]
    except StateError as exc:
        head, header_error = [], exc.message
    if args.json:
        data = entry_record(e, transcript=True)
        data["headers"] = [[k, v] for k, v in head]
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return EXIT_OK
    r = e.record
    print(f"ID: {e.id}")
    if r is None:
        print("Record: missing or unreadable (only the message file is left)")
    else:
        when = datetime.fromtimestamp(r.quarantined_at).astimezone()
        print(f"Quarantined: {when:%Y-%m-%d %H:%M:%S} ({age(time.time() - r.quarantined_at)} ago)")
        print(f"Account: {r.account}   UIDL: {r.uid}")
        print(f"Sender: {r.sender or '-'}")
        print(f"Subject: {r.subject}")
        print(f"Recipients: {', '.join(r.recipients) or '-'}")
        print(f"Reason: {r.reason}")
        print(f"Cause: {r.cause or '-'}")
        print(f"Fix: {r.fix or '-'}")
        if r.transcript:
            print("Transcript:")
            for line in r.transcript.splitlines():
                print("    " + line)
    print(f"File: {e.message} ({e.size} bytes)" if e.message else "File: missing")
    if header_error:
        print(f"Headers: {header_error}")
    else:
        print("Headers:")
        for k, v in head:
            print(f"    {k}: {v}")
    return EXIT_OK


# --- resubmit ------------------------------------------------------------------------

def resubmit_messages(paths: Paths, args: argparse.Namespace) -> int:
    """Resubmit as the window does: beside a running runner, with the saved configuration.

    When no runner holds the state folder, its lock is held meanwhile, so no
    cycle starts in the middle.
    """
    quarantine = _quarantine(paths)
    chosen = _chosen(quarantine, args)
    if chosen is None:
        return EXIT_CONFIG
    if not chosen:
        print("The quarantine is empty: nothing to resubmit.")
        return EXIT_OK
    config = load_config(paths.config_file)
    lock = RunnerLock(paths.lock_file)
    try:
        lock.acquire()
    except StateError:
        holder = _lock_holder(paths)
        print(f"Note: a pop3gui runner (pid {holder}) is working on {paths.state_dir}; resubmitting beside it, "
              "as the window's Resubmit does.", file=sys.stderr)
    try:
        with EventRecorder(paths, config.logging.level) as recorder:
            if not args.json:
                recorder.bus.subscribe(console_sink(Severity.WARNING))
            connector = Connector(config, paths, recorder.bus)
            try:
                stayed = asyncio.run(_resubmit_all(connector, quarantine, chosen, args.json))
            finally:
                connector.close()
    finally:
        lock.release()
    if not args.json:
        done = len(chosen) - stayed
        print(f"{done} of {len(chosen)} left the quarantine" + (f"; {stayed} stayed." if stayed else "."))
    return EXIT_PROBLEMS if stayed else EXIT_OK


def _lock_holder(paths: Paths) -> str:
    try:
        return paths.lock_file.read_text(encoding="ascii").strip() or "unknown"
    except (OSError, ValueError):
        return "unknown"


async def _resubmit_all(connector: Connector, quarantine: Quarantine, chosen: list[QuarantineEntry],
                        as_json: bool) -> int:
    """Each message in turn; returns how many stayed in quarantine."""
    stayed = 0
    for e in chosen:
        outcome, still = await _resubmit_one(connector, quarantine, e)
        stayed += still
        if as_json:
            print(json.dumps({"id": e.id, "result": outcome, "stayed": still}, ensure_ascii=False), flush=True)
        else:
            print(f"{e.id}: {outcome}", flush=True)
    return stayed


async def _resubmit_one(connector: Connector, quarantine: Quarantine, e: QuarantineEntry) -> tuple[str, bool]:
    if e.record is None or e.message is None:
        return (f"Not resubmitted: {_problem(e)}. Export it or delete it.", True)
    before = {x.id for x in ops.entries(quarantine)}
    try:
        outcome = await connector.resubmit(e.id)
    except Pop3guiError as exc:
        outcome = "Not resubmitted: " + exc.explain().replace("\n", " ")
    except OSError as exc:  # the copy to the spool folder failed; the quarantined copy is untouched
        outcome = (f"Not resubmitted: {exc.strerror or exc} ({exc.filename or quarantine.root}). "
                   "It stays in quarantine; try again.")
    after = ops.entries(quarantine)
    record = e.record
    still = any(x.id == e.id or (x.id not in before and x.record is not None and x.record.account == record.account
                                 and x.record.uid == record.uid) for x in after)
    return outcome, still


# --- export and delete -------------------------------------------------------------------

def export_messages(paths: Paths, args: argparse.Namespace) -> int:
    quarantine = _quarantine(paths)
    chosen = ops.resolve(quarantine, args.ids)
    if args.output is not None and len(chosen) != 1:
        print(f"pop3gui: error: -o FILE takes one message, {len(chosen)} were given.\n"
              "Fix: use --to DIR to export several (each as ID.eml).", file=sys.stderr)
        return EXIT_CONFIG
    failed = 0
    for e in chosen:
        try:
            target = ops.export(e, args.output) if args.output is not None else ops.export_to_dir(e, args.to)
        except StateError as exc:
            print_error(exc)
            failed += 1
            continue
        print(f"{e.id}: exported to {target} (still in quarantine).")
    return EXIT_PROBLEMS if failed else EXIT_OK


def delete_messages(paths: Paths, args: argparse.Namespace) -> int:
    quarantine = _quarantine(paths)
    chosen = _chosen(quarantine, args)
    if chosen is None:
        return EXIT_CONFIG
    if not chosen:
        print("The quarantine is empty: nothing to delete.")
        return EXIT_OK
    if not args.yes:
        if sys.stdin is None or not sys.stdin.isatty():
            print(f"pop3gui: error: not deleting {len(chosen)} message(s) without a confirmation: this is not a "
                  "terminal.\nFix: add --yes to delete without asking (export them first with "
                  "`pop3gui quarantine export ID --to DIR` if in doubt).", file=sys.stderr)
            return EXIT_PROBLEMS
        for e in chosen:
            r = e.record
            print(f"  {e.id}  {r.account + '  ' + repr(r.subject) if r else '(no record)'}")
        try:
            answer = input(f"Delete these {len(chosen)} message(s) for good? They are their only copy. [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return EXIT_PROBLEMS
    with EventRecorder(paths) as recorder:
        for e in chosen:
            ops.remove(quarantine, e)
            recorder.bus.emit(ops.deleted_event(e, "pop3gui quarantine delete"))
            print(f"{e.id}: deleted.")
    return EXIT_OK
