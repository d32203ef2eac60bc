"""Where blocking work runs: a fixed few threads per process, each made at its first use.

``asyncio.to_thread`` hands work to the loop's default executor, which starts
another thread whenever a job arrives while its threads are busy (up to
min(32, cores + 4)).  A runner that looks up every account's password at once,
cycle after cycle, crept from 3 to 6 threads that way over thousands of cycles,
and a thread count that creeps cannot be told from a leak.  Lookups that
wait on another service (the keyring over D-Bus, this host's name in the DNS)
and housekeeping each have one thread of their own instead, shared by every
runner of the process (a window makes a new one for every run) and by the
window's own keyring reads and writes: the count stays fixed, the keyring is
used by one thread at a time, and housekeeping's steps never overlap.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["in_housekeeping_thread", "in_lookup_thread"]

_T = TypeVar("_T")


@functools.cache
def _thread(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pop3gui-{name}")


async def _in_thread(name: str, work: Callable[..., _T], *args: object) -> _T:
    return await asyncio.get_running_loop().run_in_executor(_thread(name), functools.partial(work, *args))


async def in_lookup_thread(work: Callable[..., _T], *args: object) -> _T:
    """``work(*args)`` on the lookups' thread (the keyring, the DNS), the loop free meanwhile."""
    return await _in_thread("lookups", work, *args)


async def in_housekeeping_thread(work: Callable[..., _T], *args: object) -> _T:
    """``work(*args)`` on housekeeping's thread (SQLite pruning, file removal), the loop free meanwhile."""
    return await _in_thread("housekeeping", work, *args)
