"""Show the reliability figures (kills survived, lost, duplicates, secrets found) in pytest's summary."""

from __future__ import annotations

import pytest

_SHOWN = ("crash_summary", "secret_places_searched", "secret_hits", "soak")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = []
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if not getattr(report, "nodeid", "").startswith("tests/reliability/"):
                continue
            for name, value in getattr(report, "user_properties", []):
                if name in _SHOWN:
                    lines.append(f"{report.nodeid.split('::')[-1]}: {name} = {value}")
    if lines:
        terminalreporter.write_sep("-", "reliability figures")
        for line in lines:
            terminalreporter.write_line(line)
