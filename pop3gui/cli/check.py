"""``pop3gui check``: the preflight, before any mail flows."""

from __future__ import annotations

import argparse
import asyncio

from pop3gui.cli.output import EXIT_OK, EXIT_PROBLEMS, print_findings
from pop3gui.core.config.load import load_config
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.state.paths import Paths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "check", help="preflight: validate the config, log in everywhere, probe every local recipient (sends no "
        "mail)",
        description="Validate the configuration, flag every target outside the recipient policies, log in to each "
        "POP3 or IMAP account and the SMTP server, and probe each local target with MAIL FROM + RCPT TO + RSET. "
        "Exit 0 when clean, 1 otherwise, 2 on a configuration error.")
    parser.set_defaults(handler=run)


def run(paths: Paths, args: argparse.Namespace) -> int:
    from pop3gui.core.engine.preflight import run_preflight

    config = load_config(paths.config_file)
    print(f"Configuration {paths.config_file}: valid.")
    report = asyncio.run(run_preflight(config, sign_ins=SignIns(Credentials(), paths.sign_in_locks)))
    print_findings(report)
    return EXIT_OK if report.ok else EXIT_PROBLEMS
