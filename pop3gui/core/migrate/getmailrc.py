"""Reading a getmail 5/6 rc file: an INI file with [retriever], [destination] and [options].

getmail reads it with Python's RawConfigParser, so ``%`` has no special
meaning and values run to the end of the line (continuation lines indented).
Tuple values such as ``mailboxes = ("INBOX", "Sent")`` are Python literals.
Each key keeps its line number for the import report.
"""

from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path

from pop3gui.core.errors import ConfigError

__all__ = ["GetmailRc", "parse_getmailrc", "read_getmailrc", "literal_strings", "flag"]

_SECTION = re.compile(r"^\s*\[([^\]]+)\]")
_KEY = re.compile(r"^([^\s=:#;][^=:]*?)\s*[=:]")


@dataclass
class GetmailRc:
    path: str
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    lines: dict[tuple[str, str], int] = field(default_factory=dict)  # (section, key) -> line
    section_lines: dict[str, int] = field(default_factory=dict)

    def get(self, section: str, key: str, default: str = "") -> str:
        return self.sections.get(section, {}).get(key, default)

    def line(self, section: str, key: str = "") -> int:
        if key and (section, key) in self.lines:
            return self.lines[(section, key)]
        return self.section_lines.get(section, 1)


def parse_getmailrc(text: str, path: str) -> GetmailRc:
    """Parse the text; a malformed file is a ConfigError naming path:line."""
    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        line = getattr(exc, "lineno", 1)
        raise ConfigError(f"is not a valid getmail rc file: {exc.message.splitlines()[0]}",
                          path=f"{path}:{line}", fix="Each setting is `name = value` under a [retriever], "
                          "[destination] or [options] header; correct the line and import again.") from None
    rc = GetmailRc(path)
    for section in parser.sections():
        rc.sections[section.lower()] = dict(parser.items(section))
    current = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        if m := _SECTION.match(raw):
            current = m.group(1).strip().lower()
            rc.section_lines.setdefault(current, number)
        elif current and not raw[:1].isspace() and (m := _KEY.match(raw)):
            rc.lines.setdefault((current, m.group(1).strip().lower()), number)
    if "retriever" not in rc.sections:
        raise ConfigError("has no [retriever] section, so it is not a getmail rc file", path=path,
                          fix="Import the getmailrc that names the server (usually in ~/.getmail/ or "
                          "~/.config/getmail/).")
    return rc


def read_getmailrc(path: Path) -> GetmailRc:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise ConfigError("the getmail configuration file does not exist", path=str(path),
                          fix="Name the file to import: `pop3gui import getmailrc PATH`.") from None
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", path=str(path),
                          fix="Check the file's permissions (run the import as the file's owner).") from None
    return parse_getmailrc(text, str(path))


def literal_strings(value: str) -> tuple[str, ...] | None:
    """A getmail tuple value ("INBOX", "Sent") or a single name; None if it is not a literal of strings."""
    text = value.strip()
    if not text:
        return ()
    if text[0] not in "([\"'":
        return (text,)
    try:
        parsed = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(parsed, str):
        return (parsed,)
    if isinstance(parsed, (tuple, list)) and all(isinstance(v, str) for v in parsed):
        return tuple(parsed)
    return None


def flag(value: str, default: bool) -> bool:
    """getmail's booleans: true/false, yes/no, on/off, 1/0 (anything else keeps the default)."""
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    return default
