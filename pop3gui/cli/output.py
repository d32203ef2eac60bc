"""What every command prints the same way: exit codes, errors, events and findings."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from pop3gui.core.errors import Pop3guiError
from pop3gui.core.events.model import Event, Severity, event_record

if TYPE_CHECKING:
    from pop3gui.core.engine.findings import Report

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2
"""0: all is well; 1: something needs attention (said on the terminal); 2: the configuration is wrong."""


def print_error(exc: Pop3guiError) -> None:
    print(f"pop3gui: error: {exc.explain()}", file=sys.stderr)


def console_sink(min_severity: Severity) -> Callable[[Event], None]:
    """An event-bus subscriber printing each event at or above *min_severity*, with cause and fix for problems."""
    def show(event: Event) -> None:
        if event.severity < min_severity:
            return
        print(event.one_line(), flush=True)
        if event.severity >= Severity.WARNING:
            for label, value in (("cause", event.cause), ("fix", event.fix)):
                if value:
                    print(f"    {label}: {value}", flush=True)

    return show


def event_json(event: Event) -> str:
    return json.dumps(event_record(event), ensure_ascii=False)


def print_findings(report: Report) -> None:
    for finding in report.findings:
        print(f"[{'ok' if finding.ok else 'PROBLEM'}] {finding.subject}: {finding.text}", flush=True)
        if not finding.ok:
            if finding.cause:
                print(f"    cause: {finding.cause}", flush=True)
            if finding.fix:
                print(f"    fix: {finding.fix}", flush=True)
    problems = sum(not f.ok for f in report.findings)
    print("All checks passed." if report.ok else f"{problems} problem(s) found.", flush=True)
