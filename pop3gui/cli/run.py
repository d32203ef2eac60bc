"""``pop3gui run``: the headless runner, one cycle or on the schedule until stopped.

With ``--once`` each account's progress is shown as the cycle goes: at a
terminal, one line per account redrawn in place (the events worth reading,
warnings and errors, are printed above those lines); elsewhere (a pipe, cron,
a log), plain lines at each change of phase and at most every few seconds in
between.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from typing import TextIO

from pop3gui.cli.output import EXIT_OK, console_sink
from pop3gui.core.config.load import load_config
from pop3gui.core.config.model import Config
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.engine.status import AccountResult, AccountStatus, CycleResult, Phase
from pop3gui.core.events.model import Event, EventId, Severity
from pop3gui.core.events.recorder import EventRecorder
from pop3gui.core.state.credentials import prepare_in_background
from pop3gui.core.state.lock import RunnerLock
from pop3gui.core.state.paths import Paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run_parser = sub.add_parser(
        "run", help="the headless runner: retrieve on the schedule until stopped",
        description="Retrieve and deliver mail on the schedule until SIGINT/SIGTERM (the message in flight is "
        "finished first). Exit 0 when every message reached its recipients or stayed on the server by rule, 1 "
        "when an account failed or a recipient was refused, 2 on a configuration error.")
    run_parser.add_argument("--once", action="store_true",
                            help="run one cycle and exit, showing each account's progress")
    run_parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    run_parser.add_argument("-v", "--verbose", action="store_true", help="print debug events too")
    run_parser.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    config = load_config(paths.config_file)
    prepare_in_background()
    with RunnerLock(paths.lock_file):
        with EventRecorder(paths, config.logging.level) as recorder:
            level = Severity.WARNING if args.quiet else Severity.DEBUG if args.verbose else Severity.INFO
            view: TerminalProgress | PlainProgress | None = None
            if args.once and not args.quiet:
                if not args.verbose and _redraws(sys.stdout):
                    view = TerminalProgress(sys.stdout, _accounts(config))
                else:
                    view = PlainProgress(sys.stdout)
            if isinstance(view, TerminalProgress):
                recorder.bus.subscribe(view.sink(console_sink(level)))
            else:
                recorder.bus.subscribe(console_sink(level))
            connector = Connector(config, paths, recorder.bus, observer=view)
            try:
                return asyncio.run(_run(connector, args.once))
            finally:
                connector.close()
                if isinstance(view, TerminalProgress):
                    view.finish()


def _accounts(config: Config) -> list[str]:
    return [a.name for a in config.accounts if a.enabled]


def _redraws(stream: TextIO) -> bool:
    """Whether *stream* is a terminal that moves its cursor on ANSI sequences."""
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    # The Windows console interprets them only when asked to; Windows Terminal always does.
    return sys.platform != "win32" or "WT_SESSION" in os.environ


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


# --- progress ---------------------------------------------------------------------------

def describe(status: AccountStatus) -> str:
    """Where an account is, in a few words: ``12 of 40 handled``, ``done: 40 delivered``."""
    phase = status.phase
    if phase is Phase.CONNECTING:
        return "connecting"
    if phase is Phase.DOWNLOADING:
        return f"downloading, {status.done} of {status.total} handled"
    if phase is Phase.DELIVERING:
        return f"delivering, {status.done} of {status.total} handled"
    if phase is Phase.IDLE:
        return "waiting"
    res = status.result
    if res is None:
        return str(phase)
    counts = _counts(res)
    if phase is Phase.FAILED:
        return f"FAILED: {res.errors[0] if res.errors else 'see the events'}" + (f" ({counts})" if counts else "")
    return f"done: {counts or 'no new mail'}"


def _counts(res: AccountResult) -> str:
    parts = [(res.delivered, "delivered"), (res.diverted, "diverted to the undeliverable mailbox"),
             (res.quarantined, "quarantined"), (res.deferred, "left for retry"), (res.too_big, "too big"),
             (res.duplicates, "duplicates skipped")]
    shown = [f"{n} {what}" for n, what in parts if n]
    return ", ".join(shown) if shown or res.failed else "0 delivered"


class TerminalProgress:
    """One line per account at the bottom of the terminal, redrawn in place as the engine reports.

    Events are printed above the block: it is erased, the event written, and
    the block drawn again beneath, so the two never overwrite each other.
    Redraws within a tenth of a second of the last are skipped, except at a
    change of phase.
    """

    ERASE_BELOW = "\x1b[J"

    def __init__(self, out: TextIO, accounts: list[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._lines: dict[str, str] = {name: "waiting" for name in accounts}
        self._phases: dict[str, Phase] = {}
        self._drawn = 0  # lines of the block now on the screen
        self._clock = clock
        self._last_draw = float("-inf")

    def sink(self, show: Callable[[Event], None]) -> Callable[[Event], None]:
        """An event sink printing, above the block, the events a person at the terminal needs."""
        def print_above(event: Event) -> None:
            if event.severity < Severity.WARNING and event.id not in (EventId.CYCLE_FINISHED,
                                                                     EventId.RUNNER_STOPPING):
                return
            self._erase()
            show(event)
            self._draw()

        return print_above

    def on_account_status(self, status: AccountStatus) -> None:
        changed = self._phases.get(status.account) is not status.phase
        self._phases[status.account] = status.phase
        self._lines[status.account] = describe(status)
        if changed or self._clock() - self._last_draw >= 0.1:
            self._redraw()

    def on_cycle_finished(self, result: CycleResult) -> None:
        self._redraw()

    def finish(self) -> None:
        """Leave the block's last state on the screen."""
        self._redraw()

    def _redraw(self) -> None:
        self._erase()
        self._draw()

    def _erase(self) -> None:
        if self._drawn:
            self._out.write(f"\r\x1b[{self._drawn}A{self.ERASE_BELOW}")
            self._drawn = 0

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size((80, 24)).columns - 1)  # a wrapped line would break the count
        lines = [f"{name}: {text}"[:width] for name, text in self._lines.items()]
        if lines:
            self._out.write("\n".join(lines) + "\n")
        self._out.flush()
        self._drawn = len(lines)
        self._last_draw = self._clock()


class PlainProgress:
    """Progress as plain lines for a pipe or a log: each change of phase, and at most every *every* seconds."""

    def __init__(self, out: TextIO, *, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._every = every
        self._clock = clock
        self._said: dict[str, tuple[Phase, float, str]] = {}

    def on_account_status(self, status: AccountStatus) -> None:
        text = describe(status)
        now = self._clock()
        said = self._said.get(status.account)
        if said is not None:
            phase, when, last_text = said
            if text == last_text or (phase is status.phase and now - when < self._every):
                return
        self._said[status.account] = (status.phase, now, text)
        print(f"{status.account}: {text}", file=self._out, flush=True)

    def on_cycle_finished(self, result: CycleResult) -> None:
        pass
