"""Session fixtures for the extra real SMTP servers of the compatibility tests."""

from __future__ import annotations

__all__: list[str] = []
