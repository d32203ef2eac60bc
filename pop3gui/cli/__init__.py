"""The ``pop3gui`` command line: one module per command, gathered here.

Each command module has ``register(sub)``, which adds its sub-parser and sets
``handler`` to a ``run(paths, args) -> int``; :func:`main` turns the errors a
user can meet into one explained line and an exit code (see
:mod:`.output`).  The headless commands import no Qt (fast start under cron or
systemd); only the window, ``tray`` and ``demo`` without ``--headless`` load
the GUI package.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from pop3gui import __version__
from pop3gui.cli import auth, check, demo, events, import_config, quarantine, run, secret, status, window
from pop3gui.cli.output import EXIT_CONFIG, EXIT_PROBLEMS, print_error
from pop3gui.core.errors import ConfigError, Pop3guiError
from pop3gui.core.state.paths import default_paths

__all__ = ["build_parser", "main"]

COMMANDS = (run, check, status, events, quarantine, window, secret, auth, demo, import_config)
"""The command modules, in the order ``pop3gui --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pop3gui",
        description="Download ISP POP3 and IMAP mailboxes and deliver the mail to the office's own mail server, "
        "never losing a message.",
        epilog="Without a command, opens the connector's properties window.",
    )
    parser.add_argument("--version", action="version", version=f"pop3gui {__version__}")
    parser.add_argument("--config", metavar="PATH", help="configuration file (default: the platform's config "
                        "folder, or $POP3GUI_HOME/config.toml)")
    parser.set_defaults(handler=window.open_window)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = default_paths(args.config)
    try:
        code: int = args.handler(paths, args)
        return code
    except ConfigError as exc:
        print_error(exc)
        return EXIT_CONFIG
    except Pop3guiError as exc:
        print_error(exc)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
