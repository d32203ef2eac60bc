"""What ``pop3gui check`` found: one line per thing checked, with the cause and fix of each problem.

Kept apart from the checks themselves so that every part that contributes
findings (accounts, the local server, ``[alerts]``) can name them without
importing the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    ok: bool
    subject: str  # what was checked: "account 'alice'", "smtp", "alice@contoso.com"
    text: str
    cause: str = ""
    fix: str = ""
    folders: tuple[str, ...] = ()  # an IMAP account's folders on the server, for the dialog's folder picker


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
