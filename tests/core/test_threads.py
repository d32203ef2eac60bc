"""The runner's blocking work runs on a fixed few threads, however many jobs arrive at once."""

from __future__ import annotations

import asyncio
import threading
import time

from pop3gui.core.threads import in_housekeeping_thread, in_lookup_thread


def _slow_lookup(name: str) -> tuple[str, str]:
    time.sleep(0.01)  # long enough that the jobs overlap: asyncio.to_thread would start a thread for each
    return name, threading.current_thread().name


def _named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


async def test_lookups_made_at_once_share_the_lookup_thread_and_keep_their_answers() -> None:
    for _ in range(3):  # every cycle looks up every account's password at once
        answers = await asyncio.gather(*(in_lookup_thread(_slow_lookup, f"account{n}") for n in range(10)))
        assert [name for name, _ in answers] == [f"account{n}" for n in range(10)]
        assert {thread for _, thread in answers} == {_named("pop3gui-lookups")[0].name}
    assert len(_named("pop3gui-lookups")) == 1


async def test_the_loop_stays_free_while_the_lookup_thread_works() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    ticker = asyncio.create_task(tick())
    try:
        await in_lookup_thread(time.sleep, 0.1)
    finally:
        ticker.cancel()
    assert ticks > 10


async def test_lookups_and_housekeeping_have_threads_of_their_own() -> None:
    _, lookup_thread = await in_lookup_thread(_slow_lookup, "a")
    _, housekeeping_thread = await in_housekeeping_thread(_slow_lookup, "b")
    assert lookup_thread != housekeeping_thread != threading.current_thread().name
    assert len(_named("pop3gui-housekeeping")) == 1


async def test_an_error_in_the_thread_reaches_the_caller_and_the_thread_goes_on() -> None:
    def refuse() -> None:
        raise PermissionError("locked")

    try:
        await in_lookup_thread(refuse)
    except PermissionError as exc:
        assert str(exc) == "locked"
    else:
        raise AssertionError("the error was lost")
    assert (await in_lookup_thread(_slow_lookup, "after"))[0] == "after"
