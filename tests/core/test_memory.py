"""Memory a large piece of work freed goes back to the operating system (Linux, glibc)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pop3gui.core.memory import give_back_free_memory

# In a fresh interpreter (a heap shaped by nothing else): 100 MiB in 64 KiB blocks, under glibc's mmap
# threshold so they come from the heap as SQLite's allocations do, each followed by a small block that
# stays, so the heap cannot simply shrink from its top; all touched, then freed.
SCENARIO = """
import ctypes, json
from pathlib import Path
from pop3gui.core.memory import give_back_free_memory

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
before = rss()
blocks, keepers = [], []
for _ in range(1600):
    blocks.append(libc.malloc(65536))
    keepers.append(libc.malloc(64))
for block in blocks:
    ctypes.memset(block, 1, 65536)
for block in blocks:
    libc.free(block)
held = rss()
asked = give_back_free_memory()
print(json.dumps({"before": before, "held": held, "after": rss(), "asked": asked}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim; other systems do nothing")
def test_freed_heap_memory_is_given_back() -> None:
    out = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, timeout=60, check=True)
    kib = json.loads(out.stdout)
    assert kib["asked"]
    assert kib["held"] - kib["before"] > 50 * 1024, kib  # freed, yet still resident
    assert kib["held"] - kib["after"] > (kib["held"] - kib["before"]) // 2, kib  # most of it given back


def test_elsewhere_it_says_it_did_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from pop3gui.core import memory

    memory._malloc_trim.cache_clear()
    monkeypatch.setattr(memory.sys, "platform", "win32")
    try:
        assert give_back_free_memory() is False
    finally:
        memory._malloc_trim.cache_clear()
