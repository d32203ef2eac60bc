"""``pop3gui demo``: the whole connector in a sandbox (fake ISP and Exchange on loopback)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import time
from typing import TYPE_CHECKING

from pop3gui.cli.output import EXIT_OK, EXIT_PROBLEMS, console_sink, print_findings
from pop3gui.core.desktop.display import has_display
from pop3gui.core.engine.cycle import Connector
from pop3gui.core.events.model import Event, Severity
from pop3gui.core.events.recorder import EventRecorder
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.paths import HOME_ENV, Paths

if TYPE_CHECKING:
    from pop3gui.demo.sandbox import Sandbox


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="see the whole connector work in a sandbox (fake ISP and Exchange on "
                          "loopback; touches no real mail, config or keyring)",
                          description="Start a sandbox: a fake ISP POP3 server with sample mail, a fake Exchange "
                          "that accepts only contoso.com, and a sample configuration in a temporary folder. "
                          "Then run `check` and one cycle, and summarise what was delivered, refused (the "
                          "KB Q325464 case: erin@contoso.eu, a domain no recipient policy covers), quarantined "
                          "and left on the server. Exit 0 when the demo behaved as designed - the refusal of "
                          "erin@contoso.eu is part of the design, and the message is kept in the quarantine with "
                          "the reason and the fix - 1 when it did not.")
    demo.add_argument("--headless", action="store_true", help="no window: print everything on the terminal")
    demo.add_argument("--once", action="store_true", help="one cycle, then exit (default: keep the sandbox "
                      "running and cycling until interrupted)")
    demo.add_argument("--tray", action="store_true", help="the window demo starts in the system tray")
    demo.add_argument("--keep", action="store_true", help="keep the sandbox folder (config, state, the "
                      "Exchange's Maildirs) and print its path")
    demo.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    """The sandbox demo; the window hook is ``pop3gui.gui.demo_window.run_demo_window``.

    Hook contract: ``run_demo_window(sandbox, *, once: bool, tray: bool) -> int``
    receives a :class:`~pop3gui.demo.sandbox.Sandbox` that is not started yet,
    starts it on its own (qasync) loop with ``await sandbox.start()``, stops it
    with ``await sandbox.stop()`` before returning, and returns the exit code.
    The folder is removed here afterwards (unless --keep).
    """
    headless, once, tray, keep = args.headless, args.once, args.tray, args.keep
    from pop3gui.demo.sandbox import Sandbox

    sandbox = Sandbox(keep=keep)
    # Anything calling default_paths() lands in the sandbox; the sandbox's sign-in page is on loopback, so
    # a proxy from the environment must not carry the sign-in's requests.
    changes = {HOME_ENV: str(sandbox.folder), **{name: _with_loopback(os.environ.get(name, ""))
                                                  for name in ("NO_PROXY", "no_proxy")}}
    previous_env = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        if not headless and not has_display():
            print("This session has no screen (no DISPLAY or WAYLAND_DISPLAY): running the demo in the "
                  "terminal instead.", flush=True)
            headless = True
        if not headless:
            try:  # looked up by name: the window part of the demo is optional
                window = importlib.import_module("pop3gui.gui.demo_window")
            except ImportError as exc:
                print(f"The window demo is not available ({exc}); running the demo on the terminal.",
                      flush=True)
            else:
                code: int = window.run_demo_window(sandbox, once=once, tray=tray)
                return code
        return asyncio.run(_demo_headless(sandbox, once))
    finally:
        for name, value in previous_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sandbox.cleanup()
        if keep:
            print(f"\nThe sandbox folder is kept: {sandbox.folder}\n"
                  f"  events:    POP3GUI_HOME={sandbox.folder} pop3gui events\n"
                  f"  Maildirs:  {sandbox.maildir_root}", flush=True)


def _with_loopback(no_proxy: str) -> str:
    """A NO_PROXY value that also exempts 127.0.0.1."""
    return f"{no_proxy},127.0.0.1" if no_proxy.strip() else "127.0.0.1"


async def _demo_headless(sandbox: Sandbox, once: bool) -> int:
    from pop3gui.core.engine.preflight import run_preflight
    from pop3gui.demo.story import DANA, OAUTH_ACCOUNT

    started = time.monotonic()
    async with sandbox:
        print(f"pop3gui demo sandbox in {sandbox.folder}\n"
              f"  fake ISP (POP3):      127.0.0.1:{sandbox.pop3.port}, mailboxes "
              f"{', '.join(sandbox.pop3.mailboxes)}\n"
              f"  fake ISP (IMAP):      127.0.0.1:{sandbox.imap.port}, with push (IDLE)\n"
              f"  fake Exchange (SMTP): 127.0.0.1:{sandbox.exchange.port}, accepts "
              f"{', '.join(sorted(sandbox.exchange.accepted_domains))}\n"
              f"  demo sign-in page:    {sandbox.sign_in_page.authorize_url} (OAuth2 for {DANA})\n"
              f"  configuration:        {sandbox.paths.config_file}\n", flush=True)
        print(f"== pop3gui auth login {OAUTH_ACCOUNT}: sign in with OAuth2 ==\n"
              f"Signing in {DANA} at the demo sign-in page (a real provider would show its own page in your "
              "browser); the demo presses Allow itself.", flush=True)
        record = await sandbox.sign_in()
        print(f"Signed in account {OAUTH_ACCOUNT!r} as {record.identity}; the sign-in is kept in the sandbox's "
              "in-memory keyring (`pop3gui auth login` keeps it in the OS keyring). No password is stored for "
              "this mailbox.\n", flush=True)
        print("== pop3gui check: find problems before any mail flows ==", flush=True)
        preflight = await run_preflight(sandbox.config,
                                        sign_ins=SignIns(Credentials(), sandbox.paths.sign_in_locks))
        print_findings(preflight)
        print("\n== pop3gui run --once: one cycle ==", flush=True)
        events: list[Event] = []
        with EventRecorder(sandbox.paths, sandbox.config.logging.level) as recorder:
            for sink in (events.append, console_sink(Severity.INFO)):
                recorder.bus.subscribe(sink)
            connector = sandbox.connector(recorder.bus)
            try:
                await connector.run_cycle()
                report = sandbox.report(events, preflight)
                print("\n" + report.summary(), flush=True)
                print(f"\nThe demo took {time.monotonic() - started:.1f} s.", flush=True)
                if not once:
                    await _demo_keep_running(sandbox, connector)
            finally:
                connector.close()
    return EXIT_OK if report.as_designed else EXIT_PROBLEMS


async def _demo_keep_running(sandbox: Sandbox, connector: Connector) -> None:
    print(f"\nThe sandbox keeps running, cycling every {sandbox.config.schedule.interval_min} minute(s); "
          "Ctrl+C ends it.\n"
          f"  in another terminal: POP3GUI_HOME={sandbox.folder} pop3gui events --follow", flush=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, connector.request_stop)
        except (NotImplementedError, RuntimeError):
            pass
    try:
        await connector.run_forever()
    except asyncio.CancelledError:
        pass
