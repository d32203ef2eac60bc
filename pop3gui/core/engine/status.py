"""What the engine tells its driver while it runs: account status and cycle results.

One channel: the engine calls a :class:`StatusObserver` given to it when it is
made.  The GUI's bridge turns these calls into Qt signals; the command line
and the tests may pass none.  Events (``core/events``) say *what happened*;
status says *where each account is now* and how its cycle ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Protocol

from pop3gui.core.failures import Failure


@dataclass
class AccountResult:
    """What one account's cycle did; the runner's exit code is derived from these."""

    account: str
    failed: bool = False
    downloaded: int = 0
    delivered: int = 0
    diverted: int = 0
    quarantined: int = 0
    deferred: int = 0
    too_big: int = 0
    duplicates: int = 0
    deleted: int = 0
    errors: list[str] = field(default_factory=list)
    smtp_down: bool = False  # the local server failed this cycle; further failures are not news
    diagnosis: Failure | None = None  # why the account failed, when it did
    cause: str = ""
    fix: str = ""

    @property
    def clean(self) -> bool:
        """True when every message reached its intended recipients or stayed by rule."""
        return not self.failed and not self.diverted and not self.quarantined and not self.deferred

    def fail(self, text: str, *, diagnosis: Failure, cause: str = "", fix: str = "") -> None:
        """Record why the account's cycle failed; the first reason is the one shown."""
        if not self.failed:
            self.diagnosis, self.cause, self.fix = diagnosis, cause, fix
        self.failed = True
        self.errors.append(text)


@dataclass
class CycleResult:
    accounts: list[AccountResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if all(a.clean for a in self.accounts) else 1


class Phase(StrEnum):
    """Where an account is in its cycle."""

    IDLE = "idle"
    CONNECTING = "connecting"
    DOWNLOADING = "downloading"  # messages are still arriving from the POP3 server
    DELIVERING = "delivering"  # all downloaded; the last ones are being submitted
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class AccountStatus:
    """One account's state, as published while a cycle runs.

    ``done``/``total`` count the messages to handle this cycle and ``size`` the
    bytes downloaded so far; ``result`` is set once the account is DONE or
    FAILED (its ``diagnosis``, ``cause`` and ``fix`` say why it failed).
    """

    account: str
    phase: Phase
    done: int = 0
    total: int = 0
    size: int = 0
    result: AccountResult | None = None
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


class StatusObserver(Protocol):
    """Receives the engine's status; calls come on the engine's event loop and must be quick."""

    def on_account_status(self, status: AccountStatus) -> None: ...

    def on_cycle_finished(self, result: CycleResult) -> None: ...


class Progress:
    """Messages and bytes handled so far in one mailbox, published as they change."""

    def __init__(self, account: str, total: int, publish: StatusObserver | None) -> None:
        self.account = account
        self.total = total
        self.downloaded = 0
        self.done = 0
        self.size = 0
        self._publish = publish
        self._report()

    def one_downloaded(self) -> None:
        self.downloaded += 1
        if self.downloaded == self.total:
            self._report()

    def one_done(self, size: int) -> None:
        self.done += 1
        self.size += size
        self._report()

    def _report(self) -> None:
        if self._publish is not None:
            phase = Phase.DOWNLOADING if self.downloaded < self.total else Phase.DELIVERING
            self._publish.on_account_status(AccountStatus(self.account, phase, self.done, self.total, self.size))
