"""How long the window's event loop stalls while Retrieve Now moves mail (not a timed test).

The properties window and the engine share one thread (qasync); anything that
blocks it freezes the window.  This script shows the real window offscreen on
the test suite's Dovecot and Postfix, presses Retrieve Now on a mailbox of N
messages, and samples the loop every 5 ms: it prints the worst stall, the
99th percentile and how many events reached the Events tab while the run went.
The goal is a worst stall under 50 ms.

    python3 benchmarks/gui_stall.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    from pop3gui.core.config.model import AccountConfig, Config, RecipientPolicy, ScheduleConfig, SmtpConfig
    from pop3gui.core.state.paths import Paths
    from tests.servers.dovecot import DovecotServer
    from tests.servers.postfix import PostfixServer
    from tests.support.office import make_message

    home = Path(tempfile.mkdtemp(prefix="pop3gui-stall-"))
    os.environ["BENCH_KEYRING_JSON"] = json.dumps({"pop3gui": {"bench": "pw"}})
    import keyring

    from bench_keyring import BenchKeyring

    keyring.set_keyring(BenchKeyring())
    dovecot = DovecotServer().start()
    postfix = PostfixServer(("contoso.com",)).start()
    try:
        dovecot.add_user("bench", "pw")
        body = ("x" * 76 + "\r\n") * 130
        for i in range(count):
            dovecot.deliver("bench", make_message(to="a@isp.example", subject=f"m{i}", body=body))
        config = Config(
            smtp=SmtpConfig(host=postfix.host, port=postfix.port),
            schedule=ScheduleConfig(enabled=False),
            policies=(RecipientPolicy("Default", ("contoso.com",)),),
            accounts=(AccountConfig(name="bench", host="127.0.0.1", port=dovecot.pop3_port, security="none",
                                    username="bench", deliver_to="alice@contoso.com"),),
        )
        return measure(Paths(home / "config.toml", home / "state", home / "logs"), config, count)
    finally:
        dovecot.stop()
        postfix.stop()


def measure(paths: object, config: object, count: int) -> int:
    from pop3gui.gui.controller import ConnectorController
    from pop3gui.gui.properties import PropertiesWindow
    from pop3gui.gui.qt import make_application, run_event_loop

    app = make_application()

    async def run() -> int:
        controller = ConnectorController(paths, config)  # type: ignore[arg-type]
        window = PropertiesWindow(controller)
        window.show()
        window.tabs.setCurrentWidget(window.events)
        rows_before = window.events.model.rowCount()
        stalls: list[float] = []
        started = time.perf_counter()
        task = controller.retrieve_now()
        assert task is not None
        while not task.done():
            tick = time.perf_counter()
            await asyncio.sleep(0.005)
            stalls.append(time.perf_counter() - tick - 0.005)
        result = task.result()
        took = time.perf_counter() - started
        window.events.model.flush()
        rows = window.events.model.rowCount() - rows_before
        stalls.sort()
        print(f"{count} messages via Retrieve Now: {took:.2f} s, exit code {result.exit_code if result else '-'}")
        print(f"event-loop stalls over {len(stalls)} samples: worst {max(stalls) * 1000:.1f} ms, "
              f"99th percentile {stalls[int(len(stalls) * 0.99)] * 1000:.1f} ms, "
              f"median {statistics.median(stalls) * 1000:.2f} ms (goal: worst under 50 ms)")
        print(f"events shown in the Events tab: {rows}")
        window.hide()
        controller.close()
        return 0

    return run_event_loop(app, run)


if __name__ == "__main__":
    raise SystemExit(main())
