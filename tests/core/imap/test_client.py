"""ImapClient against the scripted server: folders, UIDs, downloads, removal, moving, IDLE, and every fault."""

from __future__ import annotations

import asyncio
import contextlib
import io
import ssl
from collections.abc import Iterator

import pytest

from pop3gui.core.errors import (
    ConfigError,
    FolderMissingError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxInUseError,
    MailboxProtocolError,
    MailboxTimeoutError,
)
from pop3gui.core.imap.client import Folder, FolderState, ImapClient
from tests.core.imap import _clients, close_clients, BIG, MSG1, MSG2, Sinks, client, explained, ready
from tests.servers.dovecot import DovecotServer
from tests.servers.pop3_fixtures import ImapUser
from tests.support.scripted_imap import ImapMessage, ScriptedImapServer

__all__ = ["close_clients"]  # the fixture closes every client a test made


async def fetch_all(imap: ImapClient, uids: list[int], sinks: Sinks, *, max_body: int = 10_000_000,
                    batch: int = 50) -> list[int]:
    got: list[int] = []
    async with contextlib.aclosing(imap.fetch_many(uids, sinks, max_body=max_body, batch=batch)) as stream:
        async for uid in stream:
            assert uid in sinks.complete, "yielded before its sink was closed"
            got.append(uid)
    return got


async def still_fetching(imap: ImapClient, uids: list[int], sinks: Sinks, got: list[int], **kw: int) -> None:
    """fetch_all that keeps what was yielded before it raised."""
    async with contextlib.aclosing(imap.fetch_many(uids, sinks, max_body=kw.get("max_body", 10_000_000))) as s:
        async for uid in s:
            got.append(uid)


def verbs(srv: ScriptedImapServer) -> list[str]:
    """The commands the server got, without tags and arguments (``UID FETCH`` stays two words)."""
    out = []
    for line in srv.commands:
        words = line.split()
        out.append(" ".join(words[1:3]) if len(words) > 2 and words[1] == "UID" else words[1])
    return out


# ------------------------------------------------------------------ session


async def test_a_whole_session() -> None:
    async with ScriptedImapServer([MSG1, MSG2], folders={"Archive": [MSG1]}) as srv:
        async with client(srv) as imap:
            assert imap.greeting == "scripted IMAP ready"
            assert imap.has_uidplus and imap.has_move and imap.has_idle
            await imap.login("user", "pass")
            assert [f.name for f in await imap.list_folders()] == ["INBOX", "Archive"]
            state = await imap.select("INBOX")
            assert state == FolderState("INBOX", 1000, 2, 3) and imap.selected == state
            assert await imap.sizes() == {1: len(MSG1), 2: len(MSG2)}
            sinks = Sinks()
            assert await fetch_all(imap, [2, 1], sinks) == [1, 2]
            assert sinks.data == {1: MSG1, 2: MSG2}
            await imap.flag_deleted([1])
            assert await imap.expunge([1]) is True
            await imap.noop()
        assert not imap.connected
        assert srv.folder("INBOX").bodies == [MSG2]
        assert "\\Seen" not in srv.folder("INBOX").messages[0].flags  # BODY.PEEK[]
        assert verbs(srv) == ["AUTHENTICATE", "LIST", "SELECT", "UID FETCH", "UID FETCH", "UID STORE",
                              "UID EXPUNGE", "NOOP", "LOGOUT"]
        assert srv.commands[4] == "P0005 UID FETCH 1:2 (UID BODY.PEEK[])"


def test_unknown_security_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="security"):
        ImapClient("h", 143, security="ssl")


async def test_an_error_in_the_block_closes_without_logout() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        with pytest.raises(RuntimeError):
            async with client(srv) as imap:
                raise RuntimeError("boom")
        assert not imap.connected and srv.commands == []


async def test_logout_to_a_server_already_gone_is_quiet() -> None:
    async with ScriptedImapServer([MSG1], replies={"NOOP": "OK\r\n* BYE going"}) as srv:
        imap = await ready(srv)
        await imap.noop()
        await srv.stop()
        await imap.logout()
        await imap.logout()
        assert not imap.connected


async def test_the_greeting_bye_is_a_connection_error() -> None:
    async with ScriptedImapServer([MSG1], greeting_line="* BYE Too many connections from your IP") as srv:
        imap = client(srv)
        with pytest.raises(MailboxConnectionError, match="refused the connection: Too many connections") as info:
            await imap.connect()
        explained(info.value)
        assert not imap.connected


@pytest.mark.parametrize("line", ["P1 OK hello", "* NO go away", "+ hi", "* 1 EXISTS", "HTTP/1.1 400 Bad Request",
                                  "+OK POP3 ready"])
async def test_a_greeting_that_is_not_ok_is_a_protocol_error(line: str) -> None:
    async with ScriptedImapServer([MSG1], greeting_line=line) as srv:
        imap = client(srv)
        with pytest.raises(MailboxProtocolError) as info:
            await imap.connect()
        explained(info.value)
        assert not imap.connected


async def test_a_response_with_a_tag_no_command_had_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1], replies={"NOOP": "OK\r\nZ999 OK stray"}) as srv:
        imap = await ready(srv)
        await imap.noop()
        with pytest.raises(MailboxProtocolError, match="unexpected response to CAPABILITY") as info:
            await imap.capability()
        explained(info.value)
        assert not imap.connected


@pytest.mark.parametrize("reply", ["NO [CANNOT] not now", "BAD Error in IMAP command"])
async def test_no_or_bad_to_a_command_is_a_command_error_and_the_session_stays_in_step(reply: str) -> None:
    async with ScriptedImapServer([MSG1], replies={"UID STORE": [reply]}) as srv:
        imap = await ready(srv)
        with pytest.raises(MailboxCommandError) as info:
            await imap.flag_deleted([1])
        err = info.value
        explained(err)
        assert err.reply == reply and err.resp_code == ("CANNOT" if "CANNOT" in reply else "")
        assert imap.connected
        await imap.flag_deleted([1])
        assert srv.folder("INBOX").messages[0].flags == {"\\Deleted"}
        await imap.logout()


async def test_a_stalled_command_times_out_and_closes() -> None:
    async with ScriptedImapServer([MSG1], stall={"UID FETCH"}) as srv:
        imap = await _logged_in(srv, timeout=0.3)
        await imap.select("INBOX")
        with pytest.raises(MailboxTimeoutError) as info:
            await imap.sizes()
        explained(info.value)
        assert not imap.connected


async def test_a_response_line_over_max_line_is_a_protocol_error_and_closes() -> None:
    async with ScriptedImapServer([MSG1], long_line=("SELECT", 5000)) as srv:
        imap = await _logged_in(srv, max_line=4096)
        with pytest.raises(MailboxProtocolError, match="longer than 4096 bytes") as info:
            await imap.select("INBOX")
        explained(info.value)
        assert not imap.connected


# ------------------------------------------------------------------ folders


ODD_FOLDERS = {"Entw&APw-rfe": [MSG1], "&ZeVnLIqe-": [MSG2], "Tom &- Jerry": [], "~peter/mail/&U,BTFw-": [],
               'say "hi"\\': []}


async def test_folder_names_are_decoded_from_and_encoded_to_modified_utf7() -> None:
    async with ScriptedImapServer([MSG1], folders=ODD_FOLDERS) as srv:
        imap = await _logged_in(srv)
        folders = await imap.list_folders()
        names = ["INBOX", "Entw\u00fcrfe", "\u65e5\u672c\u8a9e", "Tom & Jerry", "~peter/mail/\u53f0\u5317",
                 'say "hi"\\']
        assert [f.name for f in folders] == names
        assert folders[0] == Folder("INBOX", "/", ("\\HasNoChildren",)) and folders[0].selectable
        assert (await imap.select("Entw\u00fcrfe")).exists == 1
        assert (await imap.select("\u65e5\u672c\u8a9e")).exists == 1
        assert (await imap.select('say "hi"\\')).exists == 0
        await imap.logout()
        assert srv.commands[2:5] == ['P0003 SELECT "Entw&APw-rfe"', 'P0004 SELECT "&ZeVnLIqe-"',
                                     'P0005 SELECT "say \\"hi\\"\\\\"']


def test_folders_flagged_noselect_or_nonexistent_are_not_selectable() -> None:
    assert not Folder("a", "/", ("\\Noselect",)).selectable
    assert not Folder("a", "/", ("\\NonExistent",)).selectable
    assert Folder("a", "/", ("\\HasChildren", "\\Sent")).selectable


@pytest.mark.parametrize("reply", [None, "NO [NONEXISTENT] Unknown Mailbox: Archiv", "NO Mailbox does not exist"])
async def test_a_folder_the_server_does_not_have_is_folder_missing(reply: str | None) -> None:
    async with ScriptedImapServer([MSG1], replies={"SELECT": [reply]} if reply else None) as srv:
        imap = await _logged_in(srv)
        with pytest.raises(FolderMissingError, match="no folder 'Archiv'") as info:
            await imap.select("Archiv")
        err = info.value
        explained(err)
        assert not err.temporary and "pick the folder" in err.fix
        assert err.resp_code == ("" if reply == "NO Mailbox does not exist" else "NONEXISTENT")
        assert imap.selected is None and imap.connected
        assert (await imap.select("INBOX")).exists == 1  # still in step


async def test_select_refused_in_use_is_mailbox_in_use() -> None:
    async with ScriptedImapServer([MSG1], replies={"SELECT": ["NO [INUSE] Mailbox is locked"]}) as srv:
        imap = await _logged_in(srv)
        with pytest.raises(MailboxInUseError) as info:
            await imap.select("INBOX")
        explained(info.value)
        assert info.value.temporary
        await imap.select("INBOX")


async def test_select_bad_is_a_command_error_not_a_missing_folder() -> None:
    async with ScriptedImapServer([MSG1], replies={"SELECT": ["BAD syntax"]}) as srv:
        imap = await _logged_in(srv)
        with pytest.raises(MailboxCommandError) as info:
            await imap.select("INBOX")
        assert not isinstance(info.value, FolderMissingError)


async def test_a_folder_without_uidvalidity_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1], replies={"SELECT": ["OK [READ-WRITE] but no UIDVALIDITY"]}) as srv:
        imap = await _logged_in(srv)
        with pytest.raises(MailboxProtocolError, match="UIDVALIDITY") as info:
            await imap.select("INBOX")
        explained(info.value)


async def test_examine_opens_the_folder_read_only() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        imap = await _logged_in(srv)
        assert (await imap.select("INBOX", readonly=True)).exists == 1
        assert srv.commands[-1] == 'P0002 EXAMINE "INBOX"'
        srv.replies["EXAMINE"] = ["NO [NONEXISTENT] no"]
        with pytest.raises(FolderMissingError):
            await imap.select("INBOX", readonly=True)


async def test_uidvalidity_is_the_folders_and_may_change_between_sessions() -> None:
    async with ScriptedImapServer([MSG1], folders={"Archive": []}) as srv:
        imap = await _logged_in(srv)
        first = await imap.select("INBOX")
        assert (await imap.select("Archive")).uidvalidity != first.uidvalidity
        await imap.logout()
        srv.folder("INBOX").uidvalidity = 4_294_967_295
        imap = await _logged_in(srv)
        assert (await imap.select("INBOX")).uidvalidity == 4_294_967_295
        await imap.logout()


async def test_create_is_fine_when_the_folder_exists_and_refused_otherwise() -> None:
    async with ScriptedImapServer([MSG1], folders={"Archive": []}) as srv:
        imap = await _logged_in(srv)
        await imap.create("Archive")
        await imap.create("Entw\u00fcrfe")
        assert "Entw&APw-rfe" in srv.folders
        srv.replies["CREATE"] = ["NO [NOPERM] not allowed"]
        with pytest.raises(MailboxCommandError, match="NOPERM"):
            await imap.create("Other")


# ------------------------------------------------------------------ downloads


async def test_bodies_are_byte_exact_whatever_their_lines_and_bytes() -> None:
    nasty = [BIG, b"", b"\0" * 1000, b")\r\n* 1 FETCH (UID 99 BODY[] {3}\r\nabc)\r\nP0001 OK\r\n", b"x" * 65537]
    async with ScriptedImapServer(nasty) as srv:
        imap = await ready(srv, max_line=4096)
        assert await imap.sizes() == {i + 1: len(m) for i, m in enumerate(nasty)}
        sinks = Sinks()
        assert await fetch_all(imap, [1, 2, 3, 4, 5], sinks) == [1, 2, 3, 4, 5]
        assert [sinks.data[uid] for uid in range(1, 6)] == nasty
        await imap.noop()
        assert "S: [70000 bytes]" not in imap.transcript and all(len(line) < 600 for line in imap.transcript)


async def test_no_sizes_and_no_command_for_an_empty_folder() -> None:
    async with ScriptedImapServer([]) as srv:
        imap = await ready(srv)
        assert await imap.sizes() == {}
        assert verbs(srv) == ["AUTHENTICATE", "SELECT"]


async def test_batches_go_out_as_sequence_sets_two_at_a_time() -> None:
    async with ScriptedImapServer([MSG1] * 12) as srv:
        for uid in (4, 6, 7, 11):  # gaps, as deleted messages leave them
            srv.folder("INBOX").messages = [m for m in srv.folder("INBOX").messages if m.uid != uid]
        imap = await ready(srv)
        sinks = Sinks()
        wanted = [12, 1, 2, 3, 5, 8, 9, 10]
        assert await fetch_all(imap, wanted, sinks, batch=3) == sorted(wanted)
        fetches = [c.split(" ", 1)[1] for c in srv.commands if "BODY.PEEK" in c]
        assert fetches == ["UID FETCH 1:3 (UID BODY.PEEK[])", "UID FETCH 5,8:9 (UID BODY.PEEK[])",
                           "UID FETCH 10,12 (UID BODY.PEEK[])"]
        sent = [line for line in imap.transcript if line.startswith("C:") or " OK Fetch" in line]
        assert [line.split()[1] for line in sent[-6:]] == ["P0004", "P0005", "P0004", "P0006", "P0005", "P0006"]


async def test_a_uid_the_server_no_longer_has_is_not_yielded() -> None:
    async with ScriptedImapServer([MSG1, MSG2]) as srv:
        imap = await ready(srv)
        sinks = Sinks()
        assert await fetch_all(imap, [1, 2, 7], sinks) == [1, 2]
        assert 7 not in sinks.data


@pytest.mark.parametrize("cut", [0, 1, 100, len(BIG) - 1, len(BIG)])
async def test_a_connection_dropped_mid_fetch_yields_nothing_for_that_message(cut: int) -> None:
    async with ScriptedImapServer([MSG1, BIG, MSG2], drop_fetch=(2, cut)) as srv:
        imap = await ready(srv)
        sinks, got = Sinks(), []
        with pytest.raises(MailboxConnectionError) as info:
            await still_fetching(imap, [1, 2, 3], sinks, got)
        explained(info.value)
        assert got == [1] and sinks.complete == [1] and sinks.failed == [2]
        assert sinks.data[2] == BIG[:cut]  # what came went to the sink, which was told it failed
        assert not imap.connected


async def test_a_literal_longer_than_announced_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1, MSG2, MSG1], literal_overrun=(2, b"\r\nextra line\r\n")) as srv:
        imap = await ready(srv)
        sinks, got = Sinks(), []
        with pytest.raises(MailboxProtocolError) as info:
            await still_fetching(imap, [1, 2, 3], sinks, got)
        explained(info.value)
        assert got == [1] and sinks.failed == [2] and 3 not in sinks.data
        assert not imap.connected


async def test_a_literal_longer_than_announced_on_the_same_line_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1, MSG2], literal_overrun=(1, b"tail")) as srv:
        imap = await ready(srv)
        sinks, got = Sinks(), []
        with pytest.raises(MailboxProtocolError):
            await still_fetching(imap, [1, 2], sinks, got)
        assert got == [] and sinks.failed == [1] and not imap.connected


async def test_a_body_over_max_body_is_read_past_and_the_rest_still_come() -> None:
    """A server's RFC822.SIZE may be an estimate: the message whose data is too large is left, not the folder."""
    async with ScriptedImapServer([MSG1, BIG, MSG2]) as srv:
        imap = await ready(srv)
        sinks, got = Sinks(), []
        await still_fetching(imap, [1, 2, 3], sinks, got, max_body=len(BIG) - 1)
        assert got == [1, 3] and 2 not in sinks.data
        assert imap.oversized == {2: len(BIG)} and imap.connected
        await imap.noop()


async def test_a_long_line_during_fetch_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1], long_line=("UID FETCH", 70_000)) as srv:
        imap = await _logged_in(srv)
        await imap.select("INBOX")
        with pytest.raises(MailboxProtocolError, match="longer than"):
            await imap.sizes()
        assert not imap.connected


async def test_uid_after_the_body_is_read_by_sequence_number() -> None:
    async with ScriptedImapServer([MSG1, BIG, MSG2], uid_after_body=True) as srv:
        imap = await ready(srv)
        sinks = Sinks()
        assert await fetch_all(imap, [1, 2, 3], sinks) == [1, 2, 3]
        assert sinks.data == {1: MSG1, 2: BIG, 3: MSG2}


@pytest.mark.parametrize("uid_after_body", [False, True])
async def test_messages_expunged_during_a_fetch_are_skipped_and_the_rest_come_right(uid_after_body: bool) -> None:
    messages = [b"message %d\r\n" % n for n in range(1, 7)]
    async with ScriptedImapServer(messages, expunge_during_fetch={2, 3, 5},
                                  uid_after_body=uid_after_body) as srv:
        imap = await ready(srv)
        sinks = Sinks()
        assert await fetch_all(imap, [1, 2, 3, 4, 5, 6], sinks, batch=2) == [1, 4, 6]
        assert sinks.data == {1: messages[0], 4: messages[3], 6: messages[5]}
        assert await imap.sizes() == {1: 11, 4: 11, 6: 11}  # in step, and the count is right


async def test_a_uid_after_the_body_that_contradicts_the_listing_is_a_protocol_error() -> None:
    async with ScriptedImapServer([MSG1, MSG2, MSG1], uid_after_body=True) as srv:
        imap = await ready(srv)
        folder = srv.folder("INBOX")
        folder.messages = folder.messages[1:]  # gone without an EXPUNGE: the numbers shift under the client
        sinks, got = Sinks(), []
        with pytest.raises(MailboxProtocolError, match="UID changed") as info:
            await still_fetching(imap, [2, 3], sinks, got)
        explained(info.value)
        assert got == [] and sinks.complete == [] and not imap.connected


async def test_no_to_a_fetch_is_a_command_error_after_what_came() -> None:
    async with ScriptedImapServer([MSG1, MSG2], replies={"UID FETCH": ["OK", "NO [SERVERBUG] oops"]}) as srv:
        imap = await ready(srv)
        sinks, got = Sinks(), []
        with pytest.raises(MailboxCommandError, match="SERVERBUG"):
            await still_fetching(imap, [1, 2], sinks, got)
        assert got == [] and imap.connected
        await imap.noop()


async def test_leaving_a_fetch_early_drops_the_connection_instead_of_reading_the_rest() -> None:
    async with ScriptedImapServer([MSG1, BIG, MSG2, BIG, MSG1]) as srv:
        imap = await ready(srv)
        sinks = Sinks()
        async with contextlib.aclosing(imap.fetch_many([1, 2, 3, 4, 5], sinks, max_body=10**7, batch=2)) as s:
            async for uid in s:
                assert uid == 1
                break
        assert sinks.complete == [1] and not imap.connected
        with pytest.raises(MailboxConnectionError, match="Not connected"):
            await imap.noop()


# ------------------------------------------------------------------ removal


async def test_with_uidplus_only_our_messages_are_expunged() -> None:
    foreign = ImapMessage(b"someone else's", {"\\Deleted"})
    async with ScriptedImapServer([MSG1, foreign, MSG2]) as srv:
        imap = await ready(srv)
        await imap.flag_deleted([1, 3])
        await imap.flag_deleted([])
        assert await imap.expunge([3, 1]) is True
        assert await imap.expunge([]) is True
        assert srv.folder("INBOX").uids == [2]
        assert [c.split(" ", 1)[1] for c in srv.commands[-2:]] == ["UID STORE 1,3 +FLAGS.SILENT (\\Deleted)",
                                                                   "UID EXPUNGE 1,3"]


async def test_without_uidplus_expunge_refuses_when_a_foreign_message_is_deleted() -> None:
    foreign = ImapMessage(b"someone else's", {"\\Deleted"})
    async with ScriptedImapServer([MSG1, foreign, MSG2], uidplus=False) as srv:
        imap = await ready(srv)
        assert not imap.has_uidplus
        await imap.flag_deleted([1, 3])
        assert await imap.expunge([1, 3]) is False
        assert srv.folder("INBOX").uids == [1, 2, 3]
        assert "EXPUNGE" not in verbs(srv)
        srv.folder("INBOX").messages[1].flags.clear()  # the other client changed its mind
        assert await imap.expunge([1, 3]) is True
        assert srv.folder("INBOX").uids == [2]
        assert verbs(srv)[-3:] == ["UID SEARCH", "UID SEARCH", "EXPUNGE"]


async def test_without_uidplus_expunge_when_all_deleted_are_ours_even_if_some_already_went() -> None:
    async with ScriptedImapServer([MSG1, MSG2, MSG1], uidplus=False) as srv:
        imap = await ready(srv)
        await imap.flag_deleted([1, 2])
        assert await imap.expunge([1, 2, 3]) is True
        assert srv.folder("INBOX").uids == [3]


async def test_without_uidplus_expunge_waits_when_the_search_gives_no_answer() -> None:
    """A UID SEARCH answered without a SEARCH line does not mean "nothing is marked": no EXPUNGE."""
    foreign = ImapMessage(b"someone else's", {"\\Deleted"})
    async with ScriptedImapServer([MSG1, foreign], uidplus=False, replies={"UID SEARCH": "OK done"}) as srv:
        imap = await ready(srv)
        await imap.flag_deleted([1])
        assert await imap.expunge([1]) is False
        assert "EXPUNGE" not in verbs(srv)
        assert srv.folder("INBOX").uids == [1, 2]


async def test_an_imap4rev2_server_has_uid_expunge_and_move_without_listing_them() -> None:
    caps = ["IMAP4rev2", "AUTH=PLAIN", "IDLE"]
    async with ScriptedImapServer([MSG1, MSG2], capabilities=caps) as srv:
        imap = await ready(srv)
        assert imap.has_uidplus and imap.has_move
        await imap.flag_deleted([1])
        assert await imap.expunge([1]) is True
        await imap.transfer([2], "Done", move=True)
        sent = [line.split(" ", 1)[1] for line in srv.commands if " " in line]
        assert "UID EXPUNGE 1" in sent and 'UID MOVE 2 "Done"' in sent
        assert not any(line.startswith(("UID SEARCH", "UID COPY", "EXPUNGE")) for line in sent)
        assert srv.folder("INBOX").uids == []


# ------------------------------------------------------------------ moving


async def test_move_to_a_missing_folder_creates_it_then_moves() -> None:
    async with ScriptedImapServer([MSG1, MSG2, MSG1]) as srv:
        imap = await ready(srv)
        await imap.transfer([3, 1], "Erledigt/Gel\u00f6scht", move=True)
        await imap.transfer([], "Nowhere", move=True)
        wire = "Erledigt/Gel&APY-scht"
        assert srv.folder(wire).bodies == [MSG1, MSG1]
        assert srv.folder("INBOX").uids == [2]
        assert [c.split(" ", 1)[1] for c in srv.commands[-3:]] == [
            f'UID MOVE 1,3 "{wire}"', f'CREATE "{wire}"', f'UID MOVE 1,3 "{wire}"']
        assert "Nowhere" not in srv.folders


async def test_copy_leaves_the_originals_for_flag_and_expunge() -> None:
    async with ScriptedImapServer([MSG1, MSG2], folders={"Archive": []}, move=False) as srv:
        imap = await ready(srv)
        assert not imap.has_move
        await imap.transfer([1, 2], "Archive", move=False)
        assert srv.folder("Archive").bodies == [MSG1, MSG2]
        assert srv.folder("INBOX").uids == [1, 2]
        await imap.flag_deleted([1, 2])
        assert await imap.expunge([1, 2])
        assert srv.folder("INBOX").uids == []


async def test_a_refused_move_is_a_command_error() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        imap = await ready(srv)
        srv.replies["CREATE"] = ["NO [NOPERM] no"]
        with pytest.raises(MailboxCommandError, match="CREATE"):
            await imap.transfer([1], "Archive", move=True)
        srv.replies["UID MOVE"] = ["NO [OVERQUOTA] full"]
        with pytest.raises(MailboxCommandError, match="UID MOVE to INBOX: NO \\[OVERQUOTA\\] full") as info:
            await imap.transfer([1], "INBOX", move=True)
        explained(info.value)
        assert info.value.resp_code == "OVERQUOTA" and imap.connected


# ------------------------------------------------------------------ IDLE


async def test_idle_returns_true_when_mail_arrives_and_the_session_goes_on() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        imap = await ready(srv)
        asyncio.get_running_loop().call_later(0.1, srv.deliver, MSG2)
        started = asyncio.get_running_loop().time()
        assert await imap.idle(stop=asyncio.Event(), wait=10) is True
        assert asyncio.get_running_loop().time() - started < 5
        assert await imap.sizes() == {1: len(MSG1), 2: len(MSG2)}
        sinks = Sinks()
        assert await fetch_all(imap, [2], sinks) == [2] and sinks.data[2] == MSG2
        assert "DONE" in srv.commands
        await imap.logout()


async def test_idle_returns_false_when_the_wait_is_over() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        imap = await ready(srv)
        assert await imap.idle(stop=asyncio.Event(), wait=0.2) is False
        await imap.noop()
        assert await imap.idle(stop=asyncio.Event(), wait=0) is False
        await imap.noop()


async def test_idle_returns_promptly_when_stopped() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        imap = await ready(srv)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, stop.set)
        started = loop.time()
        assert await imap.idle(stop=stop, wait=600) is False
        assert loop.time() - started < 2
        assert await imap.idle(stop=stop, wait=600) is False  # already stopped: straight back
        await imap.noop()
        await imap.logout()


async def test_idle_that_the_server_ends_itself_leaves_the_session_usable() -> None:
    async with ScriptedImapServer([MSG1], idle_mode="end") as srv:
        imap = await ready(srv)
        assert await imap.idle(stop=asyncio.Event(), wait=10) is False
        await imap.noop()
        assert "DONE" not in srv.commands


async def test_idle_ended_by_bye_is_a_connection_error_naming_it() -> None:
    async with ScriptedImapServer([MSG1], idle_mode="bye") as srv:
        imap = await ready(srv)
        with pytest.raises(MailboxConnectionError) as info:
            await imap.idle(stop=asyncio.Event(), wait=10)
        explained(info.value)
        assert "Disconnected for inactivity" in info.value.cause
        assert not imap.connected


async def test_idle_never_started_times_out_and_closes() -> None:
    async with ScriptedImapServer([MSG1], idle_mode="no-continue") as srv:
        imap = await ready(srv, timeout=0.3)
        with pytest.raises(MailboxTimeoutError) as info:
            await imap.idle(stop=asyncio.Event(), wait=10)
        explained(info.value)
        assert not imap.connected


@pytest.mark.parametrize("how", ["wait", "stop"])
async def test_idle_whose_done_is_never_answered_times_out_and_closes(how: str) -> None:
    async with ScriptedImapServer([MSG1], idle_mode="no-done") as srv:
        imap = await ready(srv, timeout=0.3)
        stop = asyncio.Event()
        if how == "stop":
            asyncio.get_running_loop().call_later(0.1, stop.set)
        with pytest.raises(MailboxTimeoutError) as info:
            await asyncio.wait_for(imap.idle(stop=stop, wait=0.2 if how == "wait" else 600), 5)
        explained(info.value)
        assert not imap.connected


async def test_idle_refused_or_not_offered() -> None:
    async with ScriptedImapServer([MSG1], replies={"IDLE": ["NO not here"]}) as srv:
        imap = await ready(srv)
        with pytest.raises(MailboxCommandError, match="IDLE: NO not here"):
            await imap.idle(stop=asyncio.Event(), wait=1)
        await imap.noop()
    async with ScriptedImapServer([MSG1], idle=False) as srv:
        imap = await ready(srv)
        with pytest.raises(MailboxCommandError, match="does not offer IDLE") as info:
            await imap.idle(stop=asyncio.Event(), wait=1)
        explained(info.value)
        assert "IDLE" not in verbs(srv)


async def test_idle_cancelled_closes_the_connection() -> None:
    async with ScriptedImapServer([MSG1]) as srv:
        imap = await ready(srv)
        task = asyncio.create_task(imap.idle(stop=asyncio.Event(), wait=600))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not imap.connected


# ------------------------------------------------------------------ helpers


async def _logged_in(srv: ScriptedImapServer, **kw: object) -> ImapClient:
    imap = client(srv, **kw)
    await imap.connect()
    await imap.login("user", "pass")
    return imap


# ------------------------------------------------------------------ the real Dovecot

#: What a real server keeps as it is: CRLF lines (one of 70,000 octets), 8-bit bytes; no NUL (Dovecot sends 0x80).
DOVECOT_BIG = b"Subject: big\r\n\r\n" + b"x" * 70_000 + b"\r\n\xc3\xa9\xff 8-bit\r\n" + b"y" * 100_000 + b"\r\nend\r\n"
DOVECOT_MSG3 = b"Subject: three\r\n\r\n.\r\n..\r\n) UID 9)\r\n"


def dovecot(user: ImapUser, *, security: str = "starttls") -> ImapClient:
    port = user.imap_port if security == "starttls" else user.imaps_port
    ctx = ssl.create_default_context(cafile=str(user.ca_path))
    imap = ImapClient("127.0.0.1", port, security=security, ssl_context=ctx, timeout=10)
    _clients.append(imap)
    return imap


async def test_dovecot_download_move_and_expunge(dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    for data in (MSG1, DOVECOT_BIG, DOVECOT_MSG3):
        dovecot_imap.deliver(imap_user.name, data)
    dovecot_imap.create_folder(imap_user.name, "Entw\u00fcrfe")
    async with dovecot(imap_user) as imap:
        assert imap.encrypted
        await imap.login(imap_user.name, imap_user.password)
        assert imap.has_uidplus and imap.has_move and imap.has_idle
        assert {f.name for f in await imap.list_folders()} >= {"INBOX", "Entw\u00fcrfe"}
        state = await imap.select("INBOX")
        sizes = await imap.sizes()
        uids = sorted(sizes)
        assert state.exists == 3 and [sizes[u] for u in uids] == [len(MSG1), len(DOVECOT_BIG), len(DOVECOT_MSG3)]
        sinks = Sinks()
        assert await fetch_all(imap, uids, sinks, batch=2) == uids
        assert [sinks.data[u] for u in uids] == [MSG1, DOVECOT_BIG, DOVECOT_MSG3]
        await imap.transfer([uids[0]], "Erledigt", move=True)  # Dovecot says NO [TRYCREATE] first
        await imap.transfer([uids[2]], "Entw\u00fcrfe", move=False)
        await imap.flag_deleted([uids[1]])
        assert await imap.expunge([uids[1]]) is True
        assert await imap.sizes() == {uids[2]: len(DOVECOT_MSG3)}
        assert imap_user.password not in "\n".join(imap.transcript)
    assert dovecot_imap.messages(imap_user.name) == [DOVECOT_MSG3]
    maildir = dovecot_imap.folder_path(imap_user.name)
    assert not [p.name for p in maildir.glob("*/*:2,*S*")]  # BODY.PEEK[]: nothing was marked \Seen
    assert dovecot_imap.messages(imap_user.name, "Erledigt") == [MSG1]
    assert dovecot_imap.messages(imap_user.name, "Entw\u00fcrfe") == [DOVECOT_MSG3]


async def test_dovecot_expunge_without_uidplus_spares_a_foreign_deleted_message(
        dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    for data in (MSG1, DOVECOT_MSG3, MSG1):
        dovecot_imap.deliver(imap_user.name, data)
    async with dovecot(imap_user, security="tls") as imap:
        await imap.login(imap_user.name, imap_user.password)
        await imap.select("INBOX")
        uids = sorted(await imap.sizes())
        imap.capabilities.discard("UIDPLUS")  # as on a server without it: EXPUNGE removes every \Deleted message
        await imap.flag_deleted([uids[1]])  # another client's
        await imap.flag_deleted([uids[0]])
        assert await imap.expunge([uids[0]]) is False
        assert sorted(await imap.sizes()) == uids
        assert await imap.expunge([uids[0], uids[1]]) is True
        assert sorted(await imap.sizes()) == [uids[2]]


async def test_dovecot_missing_folder_and_wrong_password(dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    async with dovecot(imap_user) as imap:
        with pytest.raises(MailboxAuthError) as info:
            await imap.login(imap_user.name, "wrong")
        assert info.value.resp_code == "AUTHENTICATIONFAILED"
        await imap.login(imap_user.name, imap_user.password)
        with pytest.raises(FolderMissingError) as missing:
            await imap.select("Archiv")
        assert "Archiv" in missing.value.reply and missing.value.resp_code in ("", "NONEXISTENT")
        assert (await imap.select("INBOX")).exists == 0


async def test_dovecot_idle(dovecot_imap: DovecotServer, imap_user: ImapUser) -> None:
    async with dovecot(imap_user, security="tls") as imap:
        await imap.login(imap_user.name, imap_user.password)
        await imap.select("INBOX")
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, dovecot_imap.deliver, imap_user.name, MSG1)
        assert await imap.idle(stop=asyncio.Event(), wait=15) is True
        assert list((await imap.sizes()).values()) == [len(MSG1)]
        assert await imap.idle(stop=asyncio.Event(), wait=0.5) is False
        stop = asyncio.Event()
        loop.call_later(0.2, stop.set)
        started = loop.time()
        assert await imap.idle(stop=stop, wait=600) is False
        assert loop.time() - started < 3
        await imap.noop()


async def test_a_sink_that_cannot_be_opened_or_written_closes_the_connection() -> None:
    """A full disk mid-body: the error is the caller's, and the rest of the body is never read as responses."""
    async with ScriptedImapServer([MSG1, b"P0006 OK forged\r\n" * 10, MSG1]) as srv:
        imap = await ready(srv)

        @contextlib.contextmanager
        def full(uid: int) -> Iterator[io.BytesIO]:
            if uid == 2:
                raise OSError(28, "No space left on device")
            yield io.BytesIO()

        got: list[int] = []
        with pytest.raises(OSError, match="No space"):
            async with contextlib.aclosing(imap.fetch_many([1, 2, 3], full, max_body=10**6)) as s:
                async for uid in s:
                    got.append(uid)
        assert got == [1] and not imap.connected


async def test_an_explicit_capability_list_is_what_the_client_goes_by() -> None:
    async with ScriptedImapServer([MSG1], capabilities=["IMAP4rev1", "AUTH=PLAIN"]) as srv:
        imap = await ready(srv)
        assert imap.capabilities == {"IMAP4REV1", "AUTH=PLAIN"}  # kept upper-case
        assert not (imap.has_uidplus or imap.has_move or imap.has_idle)
        await imap.logout()


async def test_pipelined_fetches_may_complete_in_any_order() -> None:
    """RFC 3501 lets a server finish pipelined commands in any order; a later fetch is not held up either."""
    bodies = {uid: f"Subject: {uid}\r\n\r\nbody {uid}\r\n".encode() for uid in range(1, 5)}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n")
        fetches: list[tuple[str, list[int]]] = []
        while line := await reader.readline():
            tag, command = line.decode().split(" ", 1)
            if command.startswith("UID FETCH"):
                uids = [int(u) for u in command.split()[2].replace(":", ",").split(",")]
                fetches.append((tag, list(range(uids[0], uids[-1] + 1))))
                if len(fetches) < 2:
                    continue
                for _tag, batch in fetches:
                    for uid in batch:
                        body = bodies[uid]
                        writer.write(b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (uid, uid, len(body), body))
                for done_tag, _batch in reversed(fetches):  # the later command answers first
                    writer.write(f"{done_tag} OK done\r\n".encode())
                fetches.clear()
            elif command.startswith("SELECT"):
                writer.write(f"* 4 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] done\r\n".encode())
            elif command.startswith("LOGOUT"):
                writer.write(f"* BYE bye\r\n{tag} OK done\r\n".encode())
                break
            else:
                writer.write(f"{tag} OK done\r\n".encode())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        imap = ImapClient("127.0.0.1", port, security="none", timeout=5)
        await imap.connect()
        await imap.login("user", "pass")
        await imap.select("INBOX")
        sinks = Sinks()
        got = [uid async for uid in imap.fetch_many([1, 2, 3, 4], sinks, max_body=1000, batch=2)]
        assert got == [1, 2, 3, 4]
        assert sinks.data == bodies
        await imap.noop()  # nothing left on the wire out of step
        await imap.logout()
    finally:
        server.close()
        await server.wait_closed()
