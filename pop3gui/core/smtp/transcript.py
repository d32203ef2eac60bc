"""The SMTP session as the admin reads it: each line sent and received, AUTH redacted.

Every event about the local server carries it (like the SBS connector's event
4022), so a refusal can be read in the server's own words.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Transcript:
    """Lines of one session: ``<C>:`` what we sent, ``<S>:`` what the server answered."""

    lines: list[str] = field(default_factory=list)

    def client(self, text: str) -> None:
        self.lines.append(f"<C>: {text}")

    def server(self, code: int, message: str) -> None:
        for i, line in enumerate(message.splitlines() or [""]):
            self.lines.append(f"<S>: {code}{'-' if i < len(message.splitlines()) - 1 else ' '}{line}")

    def text(self) -> str:
        return "\n".join(self.lines)
