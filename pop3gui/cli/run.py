"""``pop3gui run``: the headless runner, one cycle or on the schedule until stopped."""

from __future__ import annotations

import argparse
import asyncio
import signal

from pop3gui.cli.output import EXIT_OK, console_sink
from pop3gui.core.config.load import load_config
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.events.model import Severity
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
    run_parser.add_argument("--once", action="store_true", help="run one cycle and exit")
    run_parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    run_parser.add_argument("-v", "--verbose", action="store_true", help="print debug events too")
    run_parser.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    config = load_config(paths.config_file)
    prepare_in_background()
    with RunnerLock(paths.lock_file):
        with EventRecorder(paths, config.logging.level) as recorder:
            level = Severity.WARNING if args.quiet else Severity.DEBUG if args.verbose else Severity.INFO
            recorder.bus.subscribe(console_sink(level))
            connector = Connector(config, paths, recorder.bus)
            try:
                return asyncio.run(_run(connector, args.once))
            finally:
                connector.close()


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
