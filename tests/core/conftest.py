"""Fixtures for the core tests: an in-process SMTP sink on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.smtp_sink import SmtpSink


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as server:
        yield server
