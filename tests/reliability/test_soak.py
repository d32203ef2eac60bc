"""A short soak: 200 cycles of the real runner, back to back, with mail and faults; nothing may pile up.

The runner runs in a child process (benchmarks/soak_runner.py: ``pop3gui run``
or ``pop3gui tray`` with an in-process probe for its asyncio tasks), so the
figures are the runner's own, not pytest's.  The rig and the fault plan are
the soak benchmark's (benchmarks/soak_rig.py; the long run is
benchmarks/soak.py): mail on every other cycle and, in every period of 40
cycles, bob's password refused by the server, Postfix stopped for a stretch,
a message refused by policy and quarantined, and the quarantine emptied.

After a warm-up of one whole period (every fault seen once): open file
descriptors, threads and asyncio tasks on the last quiet cycles equal their
values on the first quiet cycle after the warm-up and never exceed the
warm-up's maximum; RSS grows by less than 10 % and by less than 4 MiB
(headless) or 10 MiB (tray).  Each mail cycle brings two 192 KiB messages (kept
in memory while handled), so a runner keeping one message per mail cycle grows
by 80 × 192 KiB = 15 MiB after the warm-up and fails.  Measured without a
leak: headless +1 to +2 MiB, tray +4 to +6 MiB (Qt and malloc still settling;
the tray levels off after about 500 cycles, see benchmarks/soak.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks.soak_rig import Sample, Verdict, soak, verdict
from tests.support.requirements import require

pytestmark = [pytest.mark.servers, pytest.mark.slow]

RecordProperty = Callable[[str, object], None]

CYCLES = 200
PERIOD = 40
WARMUP = PERIOD / CYCLES
MESSAGE_SIZE = 192 * 1024
MAX_GROWTH_KB = {"headless": 4 * 1024, "tray": 10 * 1024}


def check(mode: str, samples: list[Sample], record_property: RecordProperty) -> Verdict:
    v = verdict(samples, warmup=WARMUP, max_growth_kb=MAX_GROWTH_KB[mode])
    runs = [s for s in samples if s.cycle > 0]
    record_property("soak", f"RSS {v.rss_warm_kb} -> {v.rss_end_kb} KiB ({v.rss_growth:+.1%}), "
                            f"constant counts (after warm-up, max, end) {v.constant}")
    # The plan really ran: mail was delivered, the faults failed what they should, a message was quarantined.
    assert sum(s.delivered for s in runs) >= CYCLES  # two messages on every other cycle
    assert any("bob" in s.failed and "login-refused" in s.step for s in runs)
    assert any("alice" in s.failed.split() for s in runs if "local-down" in s.step)
    assert sum(s.quarantined for s in runs) == CYCLES // PERIOD
    assert set(v.constant) == {"fds", "threads", "tasks"}
    assert v.ok, "; ".join(v.problems)
    return v


def test_the_headless_runner_keeps_no_memory_fds_threads_or_tasks_over_200_cycles(
        record_property: RecordProperty) -> None:
    require("Dovecot and Postfix", ["dovecot", "postfix", "postconf", "script"], "dovecot-pop3d postfix")
    samples, _ = soak("headless", CYCLES, interval=0, period=PERIOD, message_size=MESSAGE_SIZE)
    check("headless", samples, record_property)


@pytest.mark.gui
def test_the_tray_runner_keeps_no_memory_fds_threads_or_tasks_over_200_cycles(
        record_property: RecordProperty) -> None:
    require("Dovecot and Postfix", ["dovecot", "postfix", "postconf", "script"], "dovecot-pop3d postfix")
    require("An X server with a system tray", ["Xvfb", "trayer"], "xvfb trayer")
    samples, _ = soak("tray", CYCLES, interval=0, period=PERIOD, message_size=MESSAGE_SIZE)
    check("tray", samples, record_property)
