"""What an event search asks of the store: the filter, and the SQL that answers it on indexes.

The Events tab's filters and ``pop3gui events``' flags become one
:class:`EventFilter`; :func:`where` turns it into a WHERE clause over a seq
range: the account and severity indexes, the time index for *since*, and for
text the store's trigram index (FTS5) where it holds the events and finds the
text as a case-blind ``in`` would, a LIKE (or :func:`contains`) elsewhere.
"""

from __future__ import annotations

import functools
import itertools
import math
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from pop3gui.core.events.model import Event, Severity
from pop3gui.core.events.schema import SEARCH_FIELDS, stored_time

__all__ = ["GREP_FIELDS", "MIN_INDEXED_SEARCH", "NO_SEQ", "SEARCH_SCAN_ROWS", "EventFilter", "contains",
           "indexable", "like", "search_match", "where"]

GREP_FIELDS = ("text", "cause", "fix")  # what ``pop3gui events --grep`` reads
MIN_INDEXED_SEARCH = 3  # the trigram index finds substrings of at least 3 characters
SEARCH_SCAN_ROWS = 40_000  # a search the index cannot answer reads at most this many events per call (~50 ms)
NO_SEQ = 2**63 - 1  # past every seq: nothing is that recent


@dataclass(frozen=True)
class EventFilter:
    """Which events to show: the Events tab's filters, and ``pop3gui events``' flags.

    *min_severity* keeps that level and above; *account* is an exact account
    name ("" is the events of no account); *text* keeps events whose *fields*
    contain it, ignoring case; *since* keeps events at or after that moment.
    """

    min_severity: Severity | None = None
    account: str | None = None
    text: str = ""
    fields: tuple[str, ...] = SEARCH_FIELDS
    since: datetime | None = None

    def levels(self) -> list[int] | None:
        """The severities listed (not a range), so the (severity, seq) index yields each level in seq order."""
        if self.min_severity is None or self.min_severity <= min(Severity):
            return None
        return [int(s) for s in Severity if s >= self.min_severity]

    def matches(self, event: Event) -> bool:
        """The same test in Python, for live events that are shown before they are read back."""
        if self.min_severity is not None and event.severity < self.min_severity:
            return False
        if self.account is not None and event.account != self.account:
            return False
        if self.since is not None:
            since = self.since.astimezone() if self.since.tzinfo is None else self.since
            moment = event.time.astimezone() if event.time.tzinfo is None else event.time
            if moment < since:
                return False
        if self.text:
            haystack = "\n".join(str(getattr(event, name)) for name in self.fields)
            return self.text.casefold() in haystack.casefold()
        return True


def where(flt: EventFilter, lo: int, hi: int, search_low: int | None) -> tuple[str, list[object]]:
    """The WHERE clause for *flt* over lo <= seq < hi, on columns of ``events``.

    *search_low* is the store's oldest seq in the text index (0: all of them; None: no index).
    """
    where: list[str] = ["events.seq >= ?", "events.seq < ?"]
    params: list[object] = [lo, hi]
    if flt.account is not None:
        where.append("events.account = ?")
        params.append(flt.account)
    levels = flt.levels()
    if levels is not None:
        where.append(f"events.severity IN ({', '.join('?' * len(levels))})")
        params.extend(levels)
    if flt.since is not None:
        # Times grow with seq, nearly: the first stored at or after *since* (found on the time index)
        # bounds the seq range to read, and the time test itself keeps the answer exact.
        since = flt.since
        stamp = stored_time(since.astimezone() if since.tzinfo is None else since)
        # One lower bound on seq (SQLite ranges the primary key on one of them only).
        where[0] = (f"events.seq >= max(?, (SELECT coalesce(min(seq), {NO_SEQ}) FROM events INDEXED BY "
                    "events_time WHERE time >= ?))")
        params.insert(1, stamp)
        where.append("events.time >= ?")
        params.append(stamp)
    if flt.text:
        low = search_low
        clause, more = like(flt)
        if low is not None and indexable(flt.text):
            fts, fts_params = search_match(flt)
            # The seq range inside too: a follower's few new events are not a million index entries.
            indexed = f"events.seq IN (SELECT rowid FROM events_fts WHERE {fts} AND rowid >= ? AND rowid < ?)"
            fts_params = [*fts_params, lo, hi]
            if low > 0:
                where.append(f"((events.seq >= ? AND {indexed}) OR (events.seq < ? AND {clause}))")
                params.extend([low, *fts_params, low, *more])
            else:
                where.append(indexed)
                params.extend(fts_params)
        else:
            where.append(clause)
            params.extend(more)
    return " AND ".join(where), params


def like(flt: EventFilter) -> tuple[str, list[object]]:
    """The text test without the index: LIKE for ASCII (no call into Python per row), else casefold."""
    if flt.text.isascii():  # LIKE ignores ASCII case itself
        pattern = "%" + flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return ("(" + " OR ".join(f"events.{f} LIKE ? ESCAPE '\\'" for f in flt.fields) + ")",
                [pattern] * len(flt.fields))
    joined = " || char(10) || ".join(f"events.{f}" for f in flt.fields)
    return f"pop3gui_contains({joined}, ?)", [flt.text.casefold()]


def search_match(flt: EventFilter) -> tuple[str, list[object]]:
    """The FTS5 query: the text as one phrase (quotes doubled), in the filter's columns only; a text with
    letters the index folds otherwise than Python, as one phrase per spelling (:func:`_spellings`)."""
    spellings = [flt.text] if flt.text.isascii() else _spellings(flt.text) or [flt.text]
    phrases = ['"' + spelling.replace('"', '""') + '"' for spelling in spellings]
    query = phrases[0] if len(phrases) == 1 else "(" + " OR ".join(phrases) + ")"
    return "events_fts MATCH ?", ["{" + " ".join(flt.fields) + "} : " + query]


def indexable(text: str) -> bool:
    """Whether the trigram index finds *text* as a case-blind ``in`` would.

    Three characters at least; and no part that case folding writes as several
    letters ("ß" folds to "ss", "ﬁ" to "fi"): the index folds one letter to one,
    so "GRÜSSE" is looked for by reading the rows instead (ASCII text was matched
    by LIKE, which folds only ASCII, so the index gives it what it always had).
    """
    if len(text) < MIN_INDEXED_SEARCH:
        return False
    if text.isascii():
        return True
    folded = text.casefold()
    if any(part in folded for part in _multi_letter_folds()):
        return False
    return _spellings(text) is not None


@functools.cache
def _multi_letter_folds() -> frozenset[str]:
    return frozenset(f for f in (chr(c).casefold() for c in range(0x10000)) if len(f) > 1)


# A search needing more spellings reads the rows instead; a spelling with a letter no event contains costs
# the index next to nothing (256 of them: a few milliseconds on 300,000 events).
MAX_SPELLINGS = 256


def _spellings(text: str) -> list[str] | None:
    """The spellings of *text* that the trigram index must be asked for, so that it finds what a case-blind
    ``in`` would; None when there would be more than MAX_SPELLINGS.

    Usually *text* alone.  SQLite's case tables can be older than Python's
    (SQLite 3.40 does not know about 800 letters: Cherokee and Georgian
    Mtavruli small letters, Osage, Adlam, the rounded and tall forms of some
    Cyrillic letters ...): a letter whose case partners the index does not
    fold together is asked for in each form the index tells apart.
    """
    forms = _forms_the_index_tells_apart()
    choices = [forms.get(letter, (letter,)) for letter in text]
    if math.prod(len(c) for c in choices) > MAX_SPELLINGS:
        return None
    return ["".join(parts) for parts in itertools.product(*choices)]


@functools.cache
def _forms_the_index_tells_apart() -> dict[str, tuple[str, ...]]:
    """For each letter whose case group the trigram index splits: one letter of each part it splits it into.

    Found once per process by asking an index in memory (a few tens of
    milliseconds): every letter of every case group is searched for, and
    the letters it finds make its part.
    """
    groups: dict[str, set[str]] = {}
    for code in range(0x80, 0x30000):
        if 0xD800 <= code < 0xE000:  # surrogates
            continue
        letter = chr(code)
        fold = letter.casefold()
        if len(fold) == 1 and fold != letter:
            groups.setdefault(fold, {fold}).add(letter)
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE probe USING fts5(t, tokenize='trigram')")
        db.executemany("INSERT INTO probe VALUES (?)", [(f"q{c}q",) for group in groups.values() for c in group])
        forms: dict[str, tuple[str, ...]] = {}
        for group in groups.values():
            parts: list[frozenset[str]] = []
            for letter in sorted(group):
                found = frozenset(str(row[0])[1] for row in db.execute(
                    "SELECT t FROM probe WHERE probe MATCH ?", [f'"q{letter}q"']))
                if found not in parts:
                    parts.append(found)
            if len(parts) > 1:
                one_each = tuple(min(part) for part in parts)
                forms.update((letter, one_each) for letter in group)
        return forms
    except sqlite3.OperationalError:  # no FTS5 here: the index is never used
        return {}
    finally:
        db.close()


def contains(haystack: object, needle: object) -> bool:
    return str(needle) in str(haystack).casefold()
