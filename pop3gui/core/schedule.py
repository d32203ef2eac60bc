"""The hours of the week the connector retrieves mail: the SBS connector's 7 × 24 grid.

The file says it per day, ``[schedule] hours = { mon = "7-19", sat = "9-12",
sun = "" }``: a day left out runs all day, ``""`` never, ``"7-19"`` from
7:00 until 19:00 (the hour cells 7 to 18), ``"8"`` the hour from 8:00, and
ranges join with commas (``"7-12,13-19"``).  Times are the computer's local
time.  ``interval_min`` applies inside the chosen hours; "Retrieve Now"
always runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["DAY_KEYS", "DAY_NAMES", "HoursError", "WeekHours", "format_day", "next_run", "parse_day"]

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The keys of ``[schedule] hours``, Monday first as :meth:`datetime.weekday` counts."""

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_ALL_DAY = frozenset(range(24))
_LOOKAHEAD_HOURS = 7 * 24 + 1  # a week and an hour: every weekly pattern repeats within it


class HoursError(ValueError):
    """A day's hours that cannot be read; the config loader names the key and the fix."""


def parse_day(text: str) -> frozenset[int]:
    """The hour cells (0-23) of one day's text: ``""``, ``"8"``, ``"7-19"``, ``"7-12, 13-19"``."""
    hours: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        start_text, dash, end_text = part.partition("-")
        try:
            start = int(start_text)
            end = int(end_text) if dash else start + 1
        except ValueError:
            raise HoursError(f"{part!r} is not an hour or a range of hours like 7-19") from None
        if not 0 <= start <= 23 or not 1 <= end <= 24:
            raise HoursError(f"{part!r} is outside the day: hours run from 0 to 24")
        if end <= start:
            raise HoursError(f"{part!r} ends before it starts; for a range past midnight write "
                             f"\"0-{end},{start}-24\" and the next day's hours")
        hours.update(range(start, end))
    return frozenset(hours)


def _runs(hours: Iterable[int]) -> list[tuple[int, int]]:
    """Hour cells as runs ``(start, end)``, the end exclusive: {7, 8, 9, 13} -> [(7, 10), (13, 14)]."""
    runs: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + 1)
        else:
            runs.append((hour, hour + 1))
    return runs


def format_day(hours: Iterable[int]) -> str:
    """The shortest text :func:`parse_day` reads back as *hours*: ``"7-12,13-19"``; ``""`` for none."""
    return ",".join(str(start) if end == start + 1 else f"{start}-{end}" for start, end in _runs(hours))


@dataclass(frozen=True)
class WeekHours:
    """Which hour of which weekday automatic retrieval may run (Monday first)."""

    days: tuple[frozenset[int], ...] = (_ALL_DAY,) * 7

    def __post_init__(self) -> None:
        if len(self.days) != 7 or any(not h <= _ALL_DAY for h in self.days):
            raise ValueError("WeekHours needs seven days of hours 0-23")

    @classmethod
    def from_table(cls, table: Mapping[str, str]) -> WeekHours:
        """Read ``{mon = "7-19", ...}``; a day left out runs all day.  Raises HoursError naming the day."""
        unknown = sorted(set(table) - set(DAY_KEYS))
        if unknown:
            raise HoursError(f"{', '.join(unknown)} is not a day; the days are {', '.join(DAY_KEYS)}")
        days: list[frozenset[int]] = []
        for key in DAY_KEYS:
            try:
                days.append(parse_day(table[key]) if key in table else _ALL_DAY)
            except HoursError as exc:
                raise HoursError(f"{key}: {exc}") from None
        return cls(tuple(days))

    def to_table(self) -> dict[str, str]:
        """The file's form: only the days that do not run all day."""
        return {key: format_day(hours) for key, hours in zip(DAY_KEYS, self.days) if hours != _ALL_DAY}

    @property
    def always(self) -> bool:
        return all(hours == _ALL_DAY for hours in self.days)

    @property
    def never(self) -> bool:
        return not any(self.days)

    def is_open(self, moment: datetime) -> bool:
        """Whether automatic retrieval may run at *moment* (local time)."""
        return moment.hour in self.days[moment.weekday()]

    def next_open(self, moment: datetime) -> datetime | None:
        """The first moment at or after *moment* inside the chosen hours; None when no hour is chosen."""
        if self.is_open(moment):
            return moment
        hour = moment.replace(minute=0, second=0, microsecond=0)
        for _ in range(_LOOKAHEAD_HOURS):
            hour += timedelta(hours=1)
            if self.is_open(hour):
                return hour
        return None

    def open_hours_between(self, start: datetime, end: datetime) -> float:
        """How many hours between *start* and *end* fall inside the chosen hours (for "no mail for N hours")."""
        total = 0.0
        moment = start
        while moment < end:
            boundary = min(end, moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
            if self.is_open(moment):
                total += (boundary - moment).total_seconds() / 3600
            moment = boundary
        return total

    def summary(self) -> str:
        """One line for people: "Every day, all day", "Mon-Fri 7:00-19:00; Sat 9:00-12:00; Sun never"."""
        if self.always:
            return "Every day, all day"
        if self.never:
            return "Never (no hour is chosen)"
        groups: list[tuple[int, int, frozenset[int]]] = []  # first day, last day, hours
        for index, hours in enumerate(self.days):
            if groups and groups[-1][2] == hours:
                groups[-1] = (groups[-1][0], index, hours)
            else:
                groups.append((index, index, hours))
        parts = []
        for first, last, hours in groups:
            label = DAY_KEYS[first].capitalize() + ("" if first == last else f"-{DAY_KEYS[last].capitalize()}")
            if hours == _ALL_DAY:
                text = "all day"
            elif not hours:
                text = "never"
            else:
                text = ", ".join(f"{start}:00-{end}:00" for start, end in _runs(hours))
            parts.append(f"{label} {text}")
        return "; ".join(parts)


def next_run(hours: WeekHours, after: datetime, interval_min: int) -> datetime | None:
    """When the schedule runs next: *interval_min* after *after*, moved to the next chosen hour if outside.

    None when no hour of the week is chosen.
    """
    return hours.next_open(after + timedelta(minutes=interval_min))


def moment_text(at: datetime, now: datetime) -> str:
    """A planned moment as a person reads it: "14:15" today, "Tue 07:00" this week, else with the date."""
    if at.date() == now.date():
        return at.strftime("%H:%M")
    if 0 < (at.date() - now.date()).days < 7:
        return at.strftime("%a %H:%M")
    return at.strftime("%a %d %b %H:%M")
