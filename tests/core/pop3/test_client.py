"""Pop3Client's session commands against the scripted server: listings, RETR, DELE, QUIT."""

from __future__ import annotations

import asyncio
import contextlib
import io

import pytest

from pop3gui.core.errors import (
    ConfigError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxProtocolError,
)
from pop3gui.core.pop3.client import Pop3Client
from tests.core.pop3.common import MSG1, MSG2, client
from tests.support.scripted_pop3 import ScriptedPop3Server

# ---------------------------------------------------------------- session


async def test_user_pass_login_stat_list_uidl() -> None:
    async with ScriptedPop3Server([MSG1, MSG2], sasl=[]) as srv:
        async with client(srv) as pop:
            assert pop.greeting.startswith("scripted POP3 ready")
            assert "UIDL" in pop.capabilities and "SASL" not in pop.capabilities
            await pop.login("user", "pass")
            assert await pop.stat() == (2, len(MSG1) + len(MSG2))
            assert await pop.list() == {1: len(MSG1), 2: len(MSG2)}
            assert await pop.uidl() == {1: "uid-1", 2: "uid-2"}
        assert srv.commands == [
            "CAPA",
            "USER user",
            "PASS pass",
            "CAPA",
            "STAT",
            "LIST",
            "UIDL",
            "QUIT",
        ]
        assert srv.sessions == 1


@pytest.mark.parametrize(
    ("code", "temporary"), [("SYS/TEMP", True), ("SYS/PERM", False)]
)
async def test_sys_codes_set_temporary(code: str, temporary: bool) -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"RETR": [f"-ERR [{code}] oops"]}
    ) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            with pytest.raises(MailboxCommandError) as info:
                await pop.retr_to(1, io.BytesIO())
            assert info.value.temporary is temporary
            assert info.value.resp_code == code
            assert not isinstance(info.value, MailboxAuthError)
            out = io.BytesIO()
            assert await pop.retr_to(1, out) == len(MSG1)  # still in step after -ERR


async def test_pipelining_capability() -> None:
    async with ScriptedPop3Server([MSG1], pipelining=True) as srv:
        async with client(srv) as pop:
            assert pop.supports_pipelining


async def test_without_pipelining_each_retr_waits_for_the_previous_reply() -> None:
    async with ScriptedPop3Server([MSG1, MSG2, MSG1], pipelining=False) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            got = [n async for n, _ in pop.retr_many([1, 2, 3], lambda _n: io.BytesIO(), window=32)]
            assert got == [1, 2, 3]
            transcript = list(pop.transcript)
            after_login = transcript[transcript.index("C: RETR 1"):]
            lines = [line for line in after_login if line.startswith(("C: ", "S: ."))]
        assert lines == ["C: RETR 1", "S: .", "C: RETR 2", "S: .", "C: RETR 3", "S: ."]


async def test_greeting_err_raises() -> None:
    async with ScriptedPop3Server(
        [MSG1], greeting_line="-ERR [SYS/TEMP] maintenance"
    ) as srv:
        pop = client(srv)
        with pytest.raises(MailboxCommandError) as info:
            await pop.connect()
        assert info.value.temporary


def test_unknown_security_is_config_error() -> None:
    with pytest.raises(ConfigError, match="security"):
        Pop3Client("h", 1, security="ssl")


# ---------------------------------------------------------------- UIDL etc.


async def test_uidl_none_when_not_in_capa() -> None:
    async with ScriptedPop3Server([MSG1], uidl=False) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.uidl() is None
        assert "UIDL" not in srv.commands


async def test_uidl_none_when_err_and_no_capa() -> None:
    async with ScriptedPop3Server([MSG1], uidl=False, capa=False) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.uidl() is None
        assert "UIDL" in srv.commands


async def test_uidl_err_with_response_code_raises() -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"UIDL": "-ERR [SYS/TEMP] busy"}
    ) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            with pytest.raises(MailboxCommandError):
                await pop.uidl()


async def test_duplicate_uids_and_lying_sizes_are_reported_as_sent() -> None:
    async with ScriptedPop3Server(
        [MSG1, MSG2], uids=["same", "same"], list_sizes=[1, 2]
    ) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.uidl() == {1: "same", 2: "same"}
            assert await pop.list() == {1: 1, 2: 2}
            assert await pop.retr_to(1, io.BytesIO()) == len(MSG1)


@pytest.mark.parametrize(
    ("verb", "reply", "shown"),
    [
        ("LIST", "+OK\r\n1 abc\r\n.", "'1 abc'"),
        ("LIST", "+OK\r\n1 5\r\n1 6\r\n.", "twice"),
        ("UIDL", "+OK\r\n1 a b\r\n.", "'1 a b'"),
        ("STAT", "+OK many", "'+OK many'"),
        ("NOOP", "OK fine", "b'OK fine"),
    ],
)
async def test_malformed_answers_are_protocol_errors(
    verb: str, reply: str, shown: str
) -> None:
    async with ScriptedPop3Server([MSG1], replies={verb: reply}) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        with pytest.raises(MailboxProtocolError) as info:
            await {
                "LIST": pop.list,
                "UIDL": pop.uidl,
                "STAT": pop.stat,
                "NOOP": pop.noop,
            }[verb]()
        assert shown in str(info.value) and f"127.0.0.1:{srv.port}" in str(info.value)
        with pytest.raises(MailboxConnectionError, match="Not connected"):
            await pop.noop()  # invalid POP3 closes the session


async def test_top() -> None:
    msg = b"Subject: t\r\n\r\nl1\r\n.l2\r\nl3\r\n"
    async with ScriptedPop3Server([msg]) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            assert await pop.top(1, 2) == b"Subject: t\r\n\r\nl1\r\n.l2\r\n"
            assert await pop.top(1, 0) == b"Subject: t\r\n\r\n"

# ------------------------------------------------------ DELE and QUIT


async def test_dele_commits_only_on_quit() -> None:
    async with ScriptedPop3Server([MSG1, MSG2]) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        await pop.close()  # no QUIT: the server must roll back
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1, MSG2]

        with pytest.raises(RuntimeError):
            async with client(srv) as pop:
                await pop.login("user", "pass")
                await pop.dele(1)
                raise RuntimeError("worker failed")
        await asyncio.sleep(0.05)
        assert srv.mailbox == [MSG1, MSG2]

        async with client(srv) as pop:
            await pop.login("user", "pass")
            await pop.dele(1)
            await pop.dele(2)
            await pop.rset()
            await pop.dele(2)
        assert srv.mailbox == [MSG1]
        assert srv.sessions == 3


async def test_quit_err_raises() -> None:
    async with ScriptedPop3Server(
        [MSG1], replies={"QUIT": "-ERR could not delete"}
    ) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        await pop.dele(1)
        with pytest.raises(MailboxCommandError, match="could not delete"):
            await pop.quit()
        await pop.quit()  # already finished: nothing left to do


# ------------------------------------------------------------- safety


async def test_argument_injection_refused() -> None:
    async with ScriptedPop3Server([MSG1], sasl=[]) as srv:
        async with client(srv) as pop:
            with pytest.raises(ValueError):
                await pop.login("user\r\nDELE 1", "pass")
            with pytest.raises(ValueError):
                await pop.login("user", "pa\nss")
            await pop.login("user", "pass")
            for bad in (0, -1, True):
                with pytest.raises(ValueError):
                    await pop.dele(bad)
        assert srv.commands == ["CAPA", "USER user", "PASS pass", "CAPA", "QUIT"]


async def test_a_download_stopped_early_leaves_the_session_in_step() -> None:
    """RETRs sent ahead and no longer wanted are read and dropped before the next command."""
    async with ScriptedPop3Server([MSG1, MSG2, MSG1], pipelining=True) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            got = []
            stream = pop.retr_many([1, 2, 3], lambda _n: io.BytesIO(), window=3)
            async with contextlib.aclosing(stream):
                async for number, size in stream:
                    got.append((number, size))
                    break
            assert got == [(1, len(MSG1))]
            assert await pop.stat() == (3, 2 * len(MSG1) + len(MSG2))
            assert await pop.top(2, 0) == b"Subject: two\r\n\r\n"
            assert f"S: [{len(MSG2)} bytes of message data]" in pop.transcript
        assert srv.commands[3:] == ["RETR 1", "RETR 2", "RETR 3", "STAT", "TOP 2 0", "QUIT"]


async def test_a_download_after_one_stopped_early_gets_its_own_messages() -> None:
    """A second retr_many right after an early stop must not take the first one's replies for its own."""
    async with ScriptedPop3Server([MSG1, MSG2, MSG1], pipelining=True) as srv:
        async with client(srv) as pop:
            await pop.login("user", "pass")
            first = pop.retr_many([1, 2, 3], lambda _n: io.BytesIO(), window=3)
            async with contextlib.aclosing(first):
                async for _ in first:
                    break
            kept: dict[int, bytes] = {}

            class Keep(io.BytesIO):
                def __init__(self, number: int) -> None:
                    super().__init__()
                    self.number = number

                def close(self) -> None:
                    kept[self.number] = self.getvalue()
                    super().close()

            second = pop.retr_many([3], Keep, window=3)  # the first call still owes RETR 2's reply (MSG2)
            async with contextlib.aclosing(second):
                got = [item async for item in second]
            assert got == [(3, len(MSG1))] and kept[3] == MSG1


async def test_dele_many_pipelined_reads_every_reply_and_commits_with_quit() -> None:
    async with ScriptedPop3Server(
        [MSG1, MSG2, MSG1], pipelining=True, replies={"DELE": ["-ERR [SYS/TEMP] busy"]}
    ) as srv:
        pop = client(srv)
        await pop.connect()
        await pop.login("user", "pass")
        with pytest.raises(MailboxCommandError, match="busy"):
            await pop.dele_many([1, 2, 3], then_quit=True)
        transcript = list(pop.transcript)
        assert transcript.index("C: QUIT") < transcript.index("S: -ERR [SYS/TEMP] busy")
        with pytest.raises(MailboxConnectionError, match="Not connected"):
            await pop.noop()
    assert srv.commands[-4:] == ["DELE 1", "DELE 2", "DELE 3", "QUIT"]
    assert srv.mailbox == [MSG1]  # DELE 1 was refused; 2 and 3 went with the QUIT
