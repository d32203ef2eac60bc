"""Fixtures for tests that run asyncio code on Qt's event loop (qasync), as the app does.

Imported by the conftest of each folder of GUI tests.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def collect_garbage_on_the_gui_thread() -> Iterator[None]:
    """Free the Qt objects of earlier tests here, not in a keyring or executor thread.

    Python's cyclic garbage collector runs in whichever thread allocates at the
    time; a QObject freed in a worker thread makes Qt warn ("Timers cannot be
    stopped from another thread").
    """
    gc.collect()
    yield
    gc.collect()


@pytest.fixture
def loop(qapp: Any) -> Iterator[asyncio.AbstractEventLoop]:
    """A qasync loop over the test's QApplication, closed before the test ends
    (an unclosed one breaks the interpreter's exit)."""
    import qasync

    qloop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(qloop)
    try:
        yield qloop
    finally:
        qloop.close()
        asyncio.set_event_loop(None)
