"""The diagnosis names programs read: well-formed, used by every error, worded for people, documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pop3gui.core import errors
from pop3gui.core.errors import Pop3guiError
from pop3gui.core.failures import REFUSALS, Failure
from pop3gui.core.smtp.diagnose import refusal_label

DOC = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_names_are_unique_snake_case() -> None:
    members = Failure.__members__  # aliases too: a repeated value would hide one name behind another
    values = [str(member.value) for member in members.values()]
    assert len(values) == len(set(values)), "two names share one value"
    bad = [value for value in values if not re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", value)]
    assert bad == []


def _error_classes() -> list[type[Pop3guiError]]:
    return [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, Pop3guiError) and cls.__module__ == errors.__name__]


def test_every_error_class_names_its_own_failure() -> None:
    classes = _error_classes()
    assert {errors.SmtpAuthError, errors.MailboxTlsError, errors.ConfigError} <= set(classes)
    unnamed = [cls.__name__ for cls in classes if "failure" not in vars(cls)]
    assert unnamed == [], "each error class says which failure it is"
    assert all(isinstance(cls.failure, Failure) for cls in classes)


def test_every_refusal_meaning_but_other_is_worded_in_the_event_text() -> None:
    assert REFUSALS <= set(Failure) and Failure.OTHER in REFUSALS
    unworded = [str(kind) for kind in REFUSALS - {Failure.OTHER} if not refusal_label(kind).strip(" ()")]
    assert unworded == []
    assert all(re.fullmatch(r" \([a-z ]+\)", refusal_label(kind)) for kind in REFUSALS - {Failure.OTHER})
    assert refusal_label(Failure.OTHER) == ""
    assert refusal_label(Failure.AUTH_FAILED) == "", "only refusals are worded this way"


def _diagnoses_list() -> str:
    """The list of diagnosis names in the "Fields for programs" section of docs/events.md."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Fields for programs")
    section = text[start:text.index("\n## ", start + 1)]
    return section[section.index("\nDiagnoses"):section.index("\nFor example")]


def test_every_name_is_in_the_documented_list() -> None:
    listed = set(re.findall(r"`([a-z0-9_]+)`", _diagnoses_list()))
    missing = [str(f) for f in Failure if str(f) not in listed]
    assert missing == [], f"add these to the list of diagnoses in {DOC}"


def test_the_refusals_are_documented_together() -> None:
    bullets = re.split(r"\n- ", _diagnoses_list())
    [refusals] = [b for b in bullets if b.startswith("refusals by the local server")]
    assert set(re.findall(r"`([a-z0-9_]+)`", refusals)) == {str(f) for f in REFUSALS}
