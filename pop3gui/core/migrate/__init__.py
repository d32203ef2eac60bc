"""Importing fetchmail and getmail configurations: readers, their meaning, and the merged pop3gui config."""

from pop3gui.core.migrate.mapping import ImportResult, build_config
from pop3gui.core.migrate.report import ImportPlan, Mailbox, Note, Secret
from pop3gui.core.migrate.sources import KINDS, read_plans

__all__ = ["KINDS", "ImportPlan", "ImportResult", "Mailbox", "Note", "Secret", "build_config", "read_plans"]
