"""The runner under soak: the real ``pop3gui run`` or ``pop3gui tray``, with a probe, in this process.

Started by :mod:`soak_rig` as a child process, so that its memory, file
descriptors and threads are the runner's own and not the harness's::

    python benchmarks/soak_runner.py headless|tray

The runner is entered exactly as the command line enters it
(``pop3gui.cli.main(["run"])`` / ``main(["tray"])``), with one class swapped
for a subclass that attaches the probe, as tests/gui/tray_scenarios.py does:

* headless: :class:`Connector` (``pop3gui.cli.run``'s) gets the probe as its
  status observer and a clock of its own (``Connector.now``, the one the
  schedule reads).  A cycle is asked for by moving that clock one interval on
  and waking ``run_forever`` with :meth:`Connector.wake` (look at the clock
  now rather than at the end of the current wait): the scheduled cycle is
  then due and ``run_forever`` runs it.  Nothing else of the schedule is
  bypassed.
* tray: :class:`TrayRunner` (``run_tray``'s) has the probe choose "Retrieve
  Now" from its menu, as the user would.

Commands arrive one per line on the file descriptor in ``SOAK_COMMAND_FD``
(``cycle``, ``quit``); after every finished cycle one JSON line goes to
``SOAK_PROBE_FD``: the cycle's outcome and the number of asyncio tasks alive
on the loop once the cycle is over (what only an in-process probe can see).
The runner's own stdout and stderr go where the harness points them (a log).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COMMAND_FD_ENV = "SOAK_COMMAND_FD"
PROBE_FD_ENV = "SOAK_PROBE_FD"


class Probe:
    """Reads commands, triggers cycles, reports each finished cycle with the loop's task count."""

    def __init__(self) -> None:
        self._commands = os.fdopen(int(os.environ[COMMAND_FD_ENV]), "rb", buffering=0)
        self._out = os.fdopen(int(os.environ[PROBE_FD_ENV]), "w", buffering=1, encoding="utf-8")
        self._buffer = b""
        self._listening = False
        self.cycles = 0
        self.trigger: Any = None  # a callable: start the next cycle
        self.quit: Any = None  # a callable: stop the runner as its user would
        # The headless driver reports when run_cycle has returned (after the cycle's housekeeping step,
        # whose worker-thread connections would otherwise be counted as open fds).
        self.report_on_cycle_finished = True

    def listen(self) -> None:
        """Read commands on the running loop (asyncio's or qasync's): one reader, for the whole run."""
        if self._listening:
            return
        self._listening = True
        os.set_blocking(self._commands.fileno(), False)
        asyncio.get_running_loop().add_reader(self._commands.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            chunk = self._commands.read(4096)
        except BlockingIOError:
            return
        if not chunk:  # the harness went away: stop cleanly
            asyncio.get_running_loop().remove_reader(self._commands.fileno())
            self.quit()
            return
        self._buffer += chunk
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            command = line.decode().strip()
            if command == "cycle":
                self.trigger()
            elif command == "quit":
                asyncio.get_running_loop().remove_reader(self._commands.fileno())
                self.quit()

    def finished(self, result: Any) -> None:
        """A cycle ended: report it once the loop has run the callbacks the cycle's end scheduled."""
        asyncio.get_running_loop().call_soon(self._report, result)

    def _report(self, result: Any) -> None:
        self.cycles += 1
        loop = asyncio.get_running_loop()
        accounts = [] if result is None else result.accounts
        line = {
            "cycle": self.cycles,
            "tasks": sum(1 for t in asyncio.all_tasks(loop) if not t.done()),
            "exit_code": None if result is None else result.exit_code,
            "delivered": sum(a.delivered for a in accounts),
            "quarantined": sum(a.quarantined for a in accounts),
            "deferred": sum(a.deferred for a in accounts),
            "failed": sorted(a.account for a in accounts if a.failed),
        }
        self._out.write(json.dumps(line) + "\n")

    # --- StatusObserver (headless) ---------------------------------------------------

    def on_account_status(self, status: Any) -> None:
        pass

    def on_cycle_finished(self, result: Any) -> None:
        if self.report_on_cycle_finished:
            self.finished(result)


def run_headless(probe: Probe) -> int:
    import pop3gui.cli.run as run_command
    from pop3gui.cli import main
    from pop3gui.core.engine.cycle import Connector

    class ProbedConnector(Connector):
        """``pop3gui run``'s Connector with the probe as its observer and a clock the harness moves."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("observer") is None:
                kwargs["observer"] = probe
            super().__init__(*args, **kwargs)
            self.skipped = timedelta(0)
            self.now = lambda: datetime.now() + self.skipped
            interval = timedelta(minutes=self.config.schedule.interval_min)

            self.cycling = False
            self.asked = False

            def trigger() -> None:
                if self.cycling:  # the cycle reported its end but is still finishing (housekeeping):
                    self.asked = True  # the next is asked for once it has returned
                    return
                self.skipped += interval  # the next scheduled cycle is due now ...
                self.wake()  # ... and run_forever looks at the clock at once

            self.trigger = trigger
            probe.trigger = trigger
            probe.quit = self.request_stop

        async def run_cycle(self, only: set[str] | None = None) -> Any:
            """A cycle as the runner runs it; a request that came before it returned is served after.

            The runner reckons the next cycle from the moment the last one returned: moving the
            clock before that would be lost in the interval.
            """
            self.cycling = True
            try:
                result = await super().run_cycle(only)
            finally:
                self.cycling = False
                if self.asked:
                    self.asked = False
                    asyncio.get_running_loop().call_soon(self.trigger)
            probe.finished(result)
            return result

        async def run_forever(self) -> None:
            probe.listen()  # the loop exists from here on
            await super().run_forever()

    probe.report_on_cycle_finished = False
    setattr(run_command, "Connector", ProbedConnector)
    return main(["run", "--quiet"])


def run_tray(probe: Probe) -> int:
    import pop3gui.gui.tray as tray_module
    from pop3gui.cli import main

    class ProbedTray(tray_module.TrayRunner):
        """``run_tray``'s tray icon, with the probe choosing Retrieve Now and Quit from its menu."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.controller.run_finished.connect(probe.finished)

            def trigger() -> None:
                self.rebuild_menu()  # what opening the menu does
                self.action("retrieve").trigger()

            def quit_now() -> None:
                self.rebuild_menu()
                self.action("quit").trigger()

            probe.trigger = trigger
            probe.quit = quit_now
            asyncio.get_running_loop().call_soon(probe.listen)

    setattr(tray_module, "TrayRunner", ProbedTray)
    return main(["tray"])


def main(argv: list[str]) -> int:
    probe = Probe()
    if argv[:1] == ["headless"]:
        return run_headless(probe)
    if argv[:1] == ["tray"]:
        return run_tray(probe)
    raise SystemExit("usage: soak_runner.py headless|tray")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
