"""The controller's IMAP push: when its IDLE watchers listen, and what a push runs.

Real Dovecot (IMAP) and Postfix through the ``office`` fixture; the controller
runs on a qasync loop over the offscreen QApplication, as in the tray runner.
Whether a watcher is connected is asked of Dovecot itself (``doveadm who``).
A POP3 account that must stay busy for a while is a scripted server that never
answers after the login (tests/support/scripted_pop3.py), so its run ends at
its timeout.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.engine.status import AccountStatus, CycleResult, Phase
from pop3gui.core.events.model import Event, EventId
from pop3gui.gui.controller import ConnectorController
from tests.conftest import Pop3User
from tests.servers.dovecot import DovecotServer
from tests.support.office import Office, make_message
from tests.support.scripted_pop3 import ScriptedPop3Server

pytestmark = pytest.mark.servers

T = TypeVar("T")

#: The POP3 commands after the login: the scripted server never answers them.
STALLED = ("STAT", "LIST", "UIDL")
STALL_S = 3.0  # the stalled account's timeout: how long its run stays in flight


def imap_sessions(server: DovecotServer, user: str) -> int:
    """How many IMAP connections *user* has open on the test Dovecot now."""
    who = subprocess.run(["doveadm", "-c", str(server.config_path), "who", user], capture_output=True, text=True,
                         timeout=30)
    assert who.returncode == 0, who.stdout + who.stderr
    count = 0
    for line in who.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[0] == user and fields[2] == "imap":
            count += int(fields[1])
    return count


def wait_for_imap_sessions(server: DovecotServer, user: str, n: int, timeout: float = 15) -> None:
    """Until *user* has exactly *n* IMAP connections (Dovecot counts one until its connection is gone)."""
    deadline = time.monotonic() + timeout
    while (now := imap_sessions(server, user)) != n:
        assert time.monotonic() < deadline, f"{user} has {now} IMAP session(s) open, not {n}"
        time.sleep(0.05)


async def until(condition: Callable[[], bool], timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        await asyncio.sleep(0.02)


async def sessions(server: DovecotServer, user: str, n: int, timeout: float = 15) -> None:
    """The loop keeps turning while Dovecot is asked (the watchers and runs live on it)."""
    deadline = time.monotonic() + timeout
    while (now := imap_sessions(server, user)) != n:
        assert time.monotonic() < deadline, f"{user} has {now} IMAP session(s) open, not {n}"
        await asyncio.sleep(0.05)


async def within(seconds: float, scenario: Coroutine[Any, Any, T]) -> T:
    """*scenario* in the loop's one task (asyncio.wait_for would add a second): no task of the test's but this."""
    async with asyncio.timeout(seconds):
        return await scenario


def leftover_tasks() -> set[asyncio.Task[Any]]:
    """The loop's unfinished tasks but the test's own and the scripted POP3 server's."""
    me = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not me and not t.done()
            and not qualname(t).startswith(("ScriptedPop3Server.", "_Session."))}


def qualname(task: asyncio.Task[Any]) -> str:
    """What a task runs, e.g. ``ConnectorController._run``."""
    return str(getattr(task.get_coro(), "__qualname__", task.get_name()))


def listening(controller: ConnectorController) -> set[tuple[str, str]]:
    return set() if controller._push is None else set(controller._push.listening)


def watching(controller: ConnectorController) -> bool:
    """Whether the controller has a watcher task (a configuration without push folders has none)."""
    return controller._push is not None and bool(controller._push._tasks)


def account_names(result: CycleResult | None) -> list[str]:
    assert result is not None
    return sorted(a.account for a in result.accounts)


@pytest.fixture
def shared(office: Office, pop3_user: Pop3User, dovecot_imap: DovecotServer) -> AccountConfig:
    """The IMAP account on Dovecot that pushes (idle = true); the schedule runs every 15 minutes."""
    account = office.imap_account_for(pop3_user, "shared", idle=True)
    office.use(account, schedule=replace(office.config.schedule, enabled=True, interval_min=15))
    return account


@pytest.fixture
def controllers(loop: asyncio.AbstractEventLoop, office: Office) -> Iterator[list[ConnectorController]]:
    """Controllers made by a test, stopped and closed at its end (also when it failed half-way)."""
    made: list[ConnectorController] = []
    yield made
    for controller in made:
        loop.run_until_complete(within(60, controller.stop()))
        controller.close()


def make_controller(office: Office, made: list[ConnectorController], config: Config | None = None
                    ) -> ConnectorController:
    controller = ConnectorController(office.paths, config or office.config)
    made.append(controller)
    return controller


def test_watchers_listen_only_while_the_runner_lock_is_held(
        loop: asyncio.AbstractEventLoop, office: Office, shared: AccountConfig, dovecot_imap: DovecotServer,
        pop3_user: Pop3User, controllers: list[ConnectorController]) -> None:
    async def scenario() -> None:
        window = make_controller(office, controllers)  # the properties window: runs take the lock one at a time
        window.set_paused(True)
        window.set_paused(False)
        window.save(window.config)
        assert window._push is None
        await asyncio.sleep(0.5)
        assert imap_sessions(dovecot_imap, pop3_user.name) == 0
        window.close()

        runner = make_controller(office, controllers)  # the tray runner
        assert runner._push is None
        runner.hold_runner_lock()
        assert runner._push is not None
        await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the INBOX watcher")
        await sessions(dovecot_imap, pop3_user.name, 1)
        await runner.stop()
        assert runner._push is None and leftover_tasks() == set()
        await sessions(dovecot_imap, pop3_user.name, 0)

    loop.run_until_complete(within(60, scenario()))


def test_a_schedule_that_is_off_listens_for_nothing(
        loop: asyncio.AbstractEventLoop, office: Office, shared: AccountConfig, dovecot_imap: DovecotServer,
        pop3_user: Pop3User, controllers: list[ConnectorController]) -> None:
    async def scenario() -> None:
        off = replace(office.config, schedule=replace(office.config.schedule, enabled=False))
        runner = make_controller(office, controllers, off)
        runner.hold_runner_lock()
        assert runner._push is None
        runner.save(office.config)  # the schedule turned on: it listens
        assert runner._push is not None
        await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the INBOX watcher")
        runner.save(off)  # and off again: it stops
        assert runner._push is None
        await sessions(dovecot_imap, pop3_user.name, 0)
        await runner.stop()
        assert leftover_tasks() == set()

    loop.run_until_complete(within(60, scenario()))


def test_pausing_stops_the_watchers_and_resuming_starts_them_again(
        loop: asyncio.AbstractEventLoop, office: Office, shared: AccountConfig, dovecot_imap: DovecotServer,
        pop3_user: Pop3User, controllers: list[ConnectorController]) -> None:
    async def scenario() -> None:
        runner = make_controller(office, controllers)
        runner.hold_runner_lock()
        await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the INBOX watcher")
        first = runner._push
        assert first is not None
        await sessions(dovecot_imap, pop3_user.name, 1)

        runner.set_paused(True)
        assert runner._push is None
        await until(lambda: not first.listening, what="the paused watcher to end")
        await sessions(dovecot_imap, pop3_user.name, 0)
        await until(lambda: not runner._stopping_push, what="the stop of the paused watchers")

        # Paused, new mail waits for the schedule: nothing is fetched.
        office.imap.deliver(pop3_user.name, make_message(to="x@isp.example", subject="while paused"))
        await asyncio.sleep(2.5)
        assert not runner.running and runner.last_result is None
        assert office.local.delivered() == []

        runner.set_paused(False)
        second = runner._push
        assert second is not None and second is not first
        await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the watcher after resuming")
        await sessions(dovecot_imap, pop3_user.name, 1)
        await runner.stop()
        assert runner._push is None and leftover_tasks() == set()
        await sessions(dovecot_imap, pop3_user.name, 0)

    loop.run_until_complete(within(60, scenario()))
    assert office.local.delivered() == []
    assert len(office.imap.messages(pop3_user.name)) == 1  # left for the next run


def test_saving_settings_restarts_the_watchers_and_without_imap_accounts_stops_them(
        loop: asyncio.AbstractEventLoop, office: Office, shared: AccountConfig, dovecot_imap: DovecotServer,
        pop3_user: Pop3User, controllers: list[ConnectorController]) -> None:
    office.imap.create_folder(pop3_user.name, "Sales")

    async def scenario() -> None:
        runner = make_controller(office, controllers)
        runner.hold_runner_lock()
        await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the INBOX watcher")
        first = runner._push

        two_folders = replace(office.config, accounts=(replace(shared, folders=("INBOX", "Sales")),))
        runner.save(two_folders)
        assert runner._push is not None and runner._push is not first
        await until(lambda: listening(runner) == {("shared", "INBOX"), ("shared", "Sales")},
                    what="a watcher per folder")
        await sessions(dovecot_imap, pop3_user.name, 2)

        pop3_only = replace(office.config, accounts=(office.account_for(pop3_user, "alice"),))
        runner.save(pop3_only)
        assert not watching(runner)
        await sessions(dovecot_imap, pop3_user.name, 0)

        runner.save(two_folders)  # back again
        await until(lambda: len(listening(runner)) == 2, what="the watchers after the IMAP account came back")
        runner.save(replace(office.config, accounts=(replace(shared, idle=False),)))  # IDLE turned off
        assert not watching(runner)
        await sessions(dovecot_imap, pop3_user.name, 0)

        runner.save(replace(office.config, accounts=()))  # nothing at all
        assert not watching(runner)
        await runner.stop()
        assert runner._push is None
        assert leftover_tasks() == set()

    loop.run_until_complete(within(60, scenario()))


class Recorder:
    """The controller's runs as its signals tell them, with the time of each."""

    def __init__(self, controller: ConnectorController) -> None:
        self.started: list[float] = []
        self.finished: list[tuple[float, CycleResult | None]] = []
        self.statuses: list[AccountStatus] = []
        self.events: list[Event] = []
        controller.run_started.connect(lambda: self.started.append(time.monotonic()))
        controller.run_finished.connect(lambda result: self.finished.append((time.monotonic(), result)))
        controller.bridge.account_status.connect(self.statuses.append)
        controller.bridge.new_event.connect(self.events.append)

    def done(self, account: str) -> bool:
        return any(s.account == account and s.phase in (Phase.DONE, Phase.FAILED) for s in self.statuses)

    def pushed(self) -> bool:
        return any(e.id == EventId.IMAP_NEW_MAIL for e in self.events)


def stalled_pop3(office: Office, server: ScriptedPop3Server) -> AccountConfig:
    """A POP3 account on *server*, which stops answering after the login: its run lasts STALL_S."""
    return replace(office.account_for(Pop3User("user", "pass", office.home), "alice"), host="127.0.0.1",
                   port=server.port, security="none", ca_file="", timeout_s=STALL_S)


def test_a_push_during_a_run_is_run_right_after_it_for_that_account_only(
        loop: asyncio.AbstractEventLoop, office: Office, shared: AccountConfig, dovecot_imap: DovecotServer,
        pop3_user: Pop3User, controllers: list[ConnectorController]) -> None:
    async def scenario() -> Recorder:
        server = ScriptedPop3Server([make_message(to="x@isp.example", subject="stays")], stall=STALLED)
        await server.start()
        try:
            config = office.use(shared, stalled_pop3(office, server),
                                schedule=replace(office.config.schedule, enabled=True, interval_min=15))
            runner = make_controller(office, controllers, config)
            seen = Recorder(runner)
            runner.hold_runner_lock()
            await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the INBOX watcher")

            runner.retrieve_now()  # a whole run: "shared" is done at once, "alice" stays in flight
            await until(lambda: seen.done("shared") and any(c.startswith(STALLED) for c in server.commands),
                        what="shared done, alice in flight")
            assert runner.running
            office.imap.deliver(pop3_user.name, make_message(to="x@isp.example", subject="pushed mid-run"))
            await until(seen.pushed, timeout=10, what="the push")
            assert runner.running and len(seen.started) == 1  # no second run beside the first
            assert office.local.delivered() == []

            await until(lambda: len(seen.finished) == 2, timeout=STALL_S + 30, what="the push's run")
            await until(lambda: not runner.running)
            await runner.stop()
            assert leftover_tasks() == set()
            return seen
        finally:
            await server.stop()

    seen = loop.run_until_complete(within(90, scenario()))
    (first_end, first), (_, second) = seen.finished
    assert account_names(first) == ["alice", "shared"]
    assert first is not None and {a.account: a.failed for a in first.accounts} == {"alice": True, "shared": False}
    assert account_names(second) == ["shared"]  # the push runs its own account only
    assert second is not None and second.accounts[0].delivered == 1 and not second.accounts[0].failed
    assert len(seen.started) == 2 and seen.started[1] - first_end < 1.0  # right after the first run
    delivered = office.local.wait_for_delivered(1)
    assert [m["Subject"] for m in delivered] == ["pushed mid-run"]
    assert office.imap.messages(pop3_user.name) == []


def test_stop_while_listening_leaves_no_task_and_no_imap_session(
        loop: asyncio.AbstractEventLoop, office: Office, shared: AccountConfig, dovecot_imap: DovecotServer,
        pop3_user: Pop3User, controllers: list[ConnectorController]) -> None:
    async def scenario() -> None:
        runner = make_controller(office, controllers)
        runner.hold_runner_lock()
        await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the INBOX watcher")
        runner.set_paused(True)  # its watchers are still stopping when stop() comes
        runner.set_paused(False)
        assert runner._stopping_push
        await runner.stop()
        assert runner._push is None and not runner._stopping_push
        assert leftover_tasks() == set()
        await asyncio.sleep(0.3)
        assert leftover_tasks() == set() and not runner.running
        await sessions(dovecot_imap, pop3_user.name, 0)

    loop.run_until_complete(within(60, scenario()))


def test_stop_during_a_run_with_a_push_waiting_leaves_no_task_behind(
        loop: asyncio.AbstractEventLoop, office: Office, shared: AccountConfig, dovecot_imap: DovecotServer,
        pop3_user: Pop3User, controllers: list[ConnectorController]) -> None:
    """Quit while a run is in flight and a push waits for it: the push's run must not start after stop()."""
    async def scenario() -> Recorder:
        server = ScriptedPop3Server([make_message(to="x@isp.example", subject="stays")], stall=STALLED)
        await server.start()
        try:
            config = office.use(shared, stalled_pop3(office, server),
                                schedule=replace(office.config.schedule, enabled=True, interval_min=15))
            runner = make_controller(office, controllers, config)
            seen = Recorder(runner)
            runner.hold_runner_lock()
            await until(lambda: listening(runner) == {("shared", "INBOX")}, what="the INBOX watcher")
            runner.retrieve_now()
            await until(lambda: seen.done("shared") and any(c.startswith(STALLED) for c in server.commands),
                        what="shared done, alice in flight")
            office.imap.deliver(pop3_user.name, make_message(to="x@isp.example", subject="pushed before quit"))
            await until(seen.pushed, timeout=10, what="the push")
            assert runner.running

            await runner.stop()
            after_stop = {"running": runner.running, "runs started": len(seen.started),
                          "tasks": sorted(map(qualname, leftover_tasks()))}
            assert after_stop == {"running": False, "runs started": 1, "tasks": []}, \
                "stop() returned with a run (the waiting push's) started after the one it waited for"
            await asyncio.sleep(0.5)
            assert leftover_tasks() == set() and len(seen.started) == 1
            await sessions(dovecot_imap, pop3_user.name, 0)
            return seen
        finally:
            await server.stop()

    loop.run_until_complete(within(90, scenario()))
    assert len(office.imap.messages(pop3_user.name)) == 1  # fetched by the next start's run
