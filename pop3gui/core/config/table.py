"""Reading one TOML table into one dataclass, with errors that name the key, why and the fix.

The parser (:mod:`.load`) reads each section through a :class:`Table`; a key
the file leaves out takes the default of its dataclass field.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

from pop3gui.core.errors import ConfigError
from pop3gui.core.mail.addresses import normalize_address

T = TypeVar("T")


class Table:
    """Reads one TOML table into the fields of one dataclass, remembering where it came from."""

    def __init__(self, data: Any, path: str, key: str, model: type[Any]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(
                f"must be a table, not {type_name(data)}",
                path=path,
                key=key,
                fix="See README.md, section Configuration, for the layout of the file.",
            )
        self.data: dict[str, Any] = data
        self.path = path
        self.key = key
        self.fields = {f.name: f for f in fields(model)}

    def _where(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, message: str, fix: str = "") -> ConfigError:
        return ConfigError(message, path=self.path, key=self._where(name), fix=fix)

    def check_known(self, allowed: list[str] | None = None) -> None:
        """Refuse a key that is not *allowed* (by default: the model's fields), suggesting the closest."""
        known = list(self.fields) if allowed is None else allowed
        for name in self.data:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise self.error(
                    name,
                    "unknown key",
                    fix=f"{hint}Known keys here: {', '.join(known)}.",
                )

    def default(self, name: str) -> Any:
        """The model's default for a field the file leaves out."""
        spec = self.fields[name]
        if spec.default_factory is not MISSING:
            return spec.default_factory()
        if spec.default is MISSING:
            raise LookupError(f"the field {name} has no default")  # a required key: use required_str
        return spec.default

    def get(self, name: str, kind: type[T], check: Callable[[T], str] | None = None, *,
            default: T | None = None) -> T:
        """The value of a key of the given type; *default*, else the model's, when it is left out."""
        if name not in self.data:
            return self.default(name) if default is None else default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(
                name,
                f"must be {type_name_of(kind)}, not {type_name(value)} ({show(value)})",
            )
        if check is not None:
            problem = check(value)
            if problem:
                raise self.error(name, problem)
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.get(name, str)
        if value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}, not {show(value)}",
                             fix=f"Set {name} to one of: {', '.join(choices)}.")
        return value

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, default=list(self.default(name)))
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.error(name, f"must be a list of non-empty strings, found {show(item)}")
        return tuple(value)

    def required_str(self, name: str) -> str:
        if name not in self.data:
            raise self.error(name, "is missing", fix=f"Add {name} = \"...\" to this table.")
        return self.get(name, str, check_non_empty)


def show(value: Any) -> str:
    """A value for an error message: short, and safe for numbers with thousands of digits."""
    try:
        text = repr(value)
    except ValueError:
        return "a number with thousands of digits"
    return text if len(text) <= 80 else text[:77] + "..."


def describe_error(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]


def type_name_of(kind: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
            list: "a list", dict: "a table"}.get(kind, kind.__name__)


def type_name(value: Any) -> str:
    return type_name_of(type(value))


def check_non_empty(value: str) -> str:
    return "must not be empty" if not value.strip() else ""


def check_port(value: int) -> str:
    return "" if 1 <= value <= 65535 else f"must be a port number between 1 and 65535, not {show(value)}"


def check_address(value: str) -> str:
    if not value:
        return ""
    return "" if normalize_address(value) else f"is not an e-mail address: {show(value)}"


def check_name(value: str) -> str:
    if not value.strip():
        return "must not be empty"
    if any(ord(c) < 32 for c in value) or len(value) > 100:
        return "must be at most 100 printable characters"
    return ""


def check_range(low: int, high: int) -> Callable[[int], str]:
    def check(value: int) -> str:
        return "" if low <= value <= high else f"must be between {low} and {high}, not {show(value)}"

    return check


def check_timeout(value: float) -> str:
    """A timeout in seconds: positive and finite (an endless wait would hang the connector)."""
    return "" if 0 < value <= 3600 else f"must be a number of seconds between 0 and 3600, not {show(value)}"


def sub_table(root: Table, name: str, model: type[Any]) -> Table:
    """The [name] table (empty when the file has none), its keys checked against the model."""
    table = Table(root.data.get(name, {}), root.path, name, model)
    table.check_known()
    return table


def list_of_tables(root: Table, name: str, model: type[Any]) -> list[Table]:
    """The [[name]] tables (none when the file has none); each must be a table."""
    value = root.data.get(name, [])
    if not isinstance(value, list):
        raise root.error(name, f"must be an array of tables ([[{name}]]), not {type_name(value)}")
    return [Table(item, root.path, f"{name}[{i + 1}]", model) for i, item in enumerate(value)]
