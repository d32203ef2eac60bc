"""The demo's IMAP server, driven through the connector's real ImapClient (and raw lines where the client is silent)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import re
import shutil
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from pop3gui.core.errors import (
    FolderMissingError,
    MailboxAuthError,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxInsecureError,
    MailboxTokenRefused,
)
from pop3gui.core.imap.client import ImapClient
from pop3gui.demo.imap_server import DemoImapServer, parse_date, uid_set

ONE = b"Subject: one\r\nTo: u@example.com\r\n\r\nfirst\r\n.\r\n..dots stay as they are over IMAP\r\n"
TWO = b"Subject: two\n\nsecond, with bare LF line ends\n"
THREE = b"Subject: three\r\n\r\nthird\r\n"
DANA = "dana@contoso.com"


def client(srv: DemoImapServer) -> ImapClient:
    return ImapClient("127.0.0.1", srv.port, security="none", timeout=5)


@contextlib.asynccontextmanager
async def serving(srv: DemoImapServer) -> AsyncIterator[DemoImapServer]:
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def sample() -> DemoImapServer:
    return DemoImapServer({"u": ("pw", {"INBOX": [ONE, TWO], "Invoices": [THREE]})},
                          token_check={"good-token": DANA, "other-token": "eve@contoso.com"}.get)


class Sinks:
    """open_sink for ImapClient.fetch_many: each body into memory."""

    def __init__(self) -> None:
        self.bodies: dict[int, bytes] = {}

    @contextlib.contextmanager
    def __call__(self, uid: int) -> Iterator[io.BytesIO]:
        buffer = io.BytesIO()
        yield buffer
        self.bodies[uid] = buffer.getvalue()


class Raw:
    """A conversation in raw lines, for what the client never sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.tags = 0
        self.greeting = b""

    @classmethod
    async def open(cls, srv: DemoImapServer) -> Raw:
        raw = cls(*await asyncio.open_connection("127.0.0.1", srv.port))
        raw.greeting = await raw.reader.readline()
        return raw

    async def response(self) -> bytes:
        """One response line, with the literals it announces read into it."""
        line = await asyncio.wait_for(self.reader.readline(), 5)
        while (match := re.search(rb"\{(\d+)\}\r\n$", line)) is not None:
            line += await self.reader.readexactly(int(match.group(1)))
            line += await self.reader.readline()
        return line

    async def command(self, text: str | bytes) -> list[bytes]:
        """Send a tagged command; every response up to and including the tagged one."""
        self.tags += 1
        tag = f"R{self.tags}".encode()
        self.writer.write(tag + b" " + (text.encode() if isinstance(text, str) else text) + b"\r\n")
        out = []
        while True:
            line = await self.response()
            out.append(line)
            if line.startswith(tag + b" ") or not line:
                return out

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def tagged(lines: list[bytes]) -> bytes:
    """The tagged response's status and text."""
    return lines[-1].split(b" ", 1)[1]


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


# --- logging in ------------------------------------------------------------------------


async def test_password_login_with_authenticate_plain_and_the_capabilities() -> None:
    async with serving(sample()) as srv:
        async with client(srv) as imap:
            assert {"IMAP4REV1", "UIDPLUS", "MOVE", "IDLE", "SASL-IR", "AUTH=PLAIN", "AUTH=XOAUTH2"} <= \
                imap.capabilities
            assert "STARTTLS" not in imap.capabilities and "LOGINDISABLED" not in imap.capabilities
            await imap.login("u", "pw")
            assert any("AUTHENTICATE PLAIN ****" in line for line in imap.transcript)  # SASL-IR, one line
        async with client(srv) as imap:
            with pytest.raises(MailboxAuthError) as refused:
                await imap.login("u", "wrong")
            assert refused.value.resp_code == "AUTHENTICATIONFAILED"
        assert [(login.user, login.method) for login in srv.logins] == [("u", "AUTHENTICATE PLAIN")]
        assert srv.sessions("u") == 1


async def test_login_with_quoted_strings_and_literals_and_plain_after_the_continuation() -> None:
    async with serving(sample()) as srv:
        raw = await Raw.open(srv)
        try:
            assert raw.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
            assert tagged(await raw.command('LOGIN "u" "wrong"')).startswith(b"NO [AUTHENTICATIONFAILED]")
            assert tagged(await raw.command("SELECT INBOX")).startswith(b"BAD")  # not logged in
            raw.tags += 1  # a synchronising literal: the server asks for it with "+"
            raw.writer.write(b"R3 LOGIN {1}\r\n")
            assert (await raw.response()).startswith(b"+ ")
            raw.writer.write(b"u {2+}\r\npw\r\n")  # LITERAL+: no "+" is waited for
            assert (await raw.response()).startswith(b"R3 OK [CAPABILITY ")
            assert tagged(await raw.command("LOGIN u pw")).startswith(b"BAD")  # once is enough
        finally:
            await raw.close()
        raw = await Raw.open(srv)
        try:
            raw.writer.write(b"A1 AUTHENTICATE PLAIN\r\n")
            assert await raw.response() == b"+ \r\n"
            raw.writer.write(base64.b64encode(b"\0u\0pw") + b"\r\n")
            assert (await raw.response()).startswith(b"A1 OK")
            assert tagged(await raw.command("NOOP")) == b"OK done\r\n"
        finally:
            await raw.close()
        assert [login.method for login in srv.logins] == ["LOGIN", "AUTHENTICATE PLAIN"]


async def test_an_oauth_mailbox_logs_in_only_with_a_token_of_its_user() -> None:
    srv = sample()
    srv.add_mailbox(DANA, "", {"INBOX": [ONE]}, oauth=True)
    async with serving(srv):
        for mechanism in ("xoauth2", "oauthbearer"):
            async with client(srv) as imap:
                await imap.login_oauth(DANA, "good-token", mechanism=mechanism)
                assert (await imap.select("INBOX")).exists == 1
        async with client(srv) as imap:
            with pytest.raises(MailboxTokenRefused) as refused:
                await imap.login_oauth(DANA, "other-token")  # another user's token
            assert (refused.value.status, refused.value.scope) == ("401", "imap")
            assert refused.value.reply == "NO [AUTHENTICATIONFAILED] Authentication failed."
            await imap.login_oauth(DANA, "good-token")  # the session may try again
        async with client(srv) as imap:
            with pytest.raises(MailboxTokenRefused) as refused:
                await imap.login_oauth(DANA, "made-up", mechanism="oauthbearer")
            assert refused.value.status == "invalid_token"
        async with client(srv) as imap:
            with pytest.raises(MailboxAuthError):
                await imap.login(DANA, "")  # no password, not even an empty one, opens an OAuth2 mailbox
    assert [(login.user, login.method) for login in srv.logins] == \
        [(DANA, "XOAUTH2"), (DANA, "OAUTHBEARER"), (DANA, "XOAUTH2")]


# --- folders ---------------------------------------------------------------------------


async def test_list_select_examine_create_and_a_missing_folder() -> None:
    srv = sample()
    srv.add_folder("u", "Archive/2024")
    async with serving(srv):
        async with client(srv) as imap:
            await imap.login("u", "pw")
            await imap.create("Entwürfe")  # modified UTF-7 on the wire
            await imap.create("Archive")  # exists already: fine for the client
            folders = {f.name: f for f in await imap.list_folders()}
            assert list(folders) == ["INBOX", "Archive", "Archive/2024", "Entwürfe", "Invoices"]
            assert folders["Archive"].flags == ("\\HasChildren",) and folders["INBOX"].delimiter == "/"
            assert any('CREATE "Entw&APw-rfe"' in line for line in imap.transcript)
            inbox = await imap.select("inbox")  # INBOX in any case
            assert (inbox.name, inbox.exists, inbox.uidnext) == ("inbox", 2, 3)
            assert inbox.uidvalidity == srv.uidvalidity("u")
            invoices = await imap.select("Invoices", readonly=True)
            assert invoices.exists == 1 and invoices.uidvalidity != inbox.uidvalidity
            with pytest.raises(FolderMissingError) as missing:
                await imap.select("Nowhere")
            assert missing.value.resp_code == "NONEXISTENT"
            assert imap.selected is None
        assert srv.folders("u") == ["INBOX", "Archive", "Archive/2024", "Entwürfe", "Invoices"]


async def test_status_lsub_subscribe_delete_and_append_with_appenduid() -> None:
    async with serving(sample()) as srv:
        raw = await Raw.open(srv)
        try:
            await raw.command("LOGIN u pw")
            status = await raw.command("STATUS INBOX (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)")
            assert status[0] == (f'* STATUS "INBOX" (MESSAGES 2 UNSEEN 2 UIDNEXT 3 UIDVALIDITY '
                                 f'{srv.uidvalidity("u")})\r\n').encode()
            assert tagged(await raw.command('UNSUBSCRIBE "Invoices"')).startswith(b"OK")
            assert await raw.command('LSUB "" "*"') == [b'* LSUB (\\HasNoChildren) "/" "INBOX"\r\n',
                                                       b"R4 OK LSUB completed\r\n"]
            assert (await raw.command('LIST "" ""'))[0] == b'* LIST (\\Noselect) "/" ""\r\n'
            assert tagged(await raw.command('LIST "" "%"')) == b"OK LIST completed\r\n"
            message = b"Subject: appended\r\n\r\nbody\r\n"
            append = f'APPEND Invoices (\\Seen $Paid) " 7-Mar-2024 09:15:00 +0100" {{{len(message)}+}}\r\n'
            appended = await raw.command(append.encode() + message)
            assert tagged(appended) == f"OK [APPENDUID {srv.uidvalidity('u', 'Invoices')} 2] APPEND completed\r\n" \
                .encode()
            assert srv.messages("u", "Invoices")[1] == message and srv.flags("u", "Invoices")[1] == {"\\Seen", "$Paid"}
            await raw.command("SELECT Invoices")
            fetched = await raw.command("UID FETCH 2 (INTERNALDATE FLAGS)")
            assert fetched[0] == (b'* 2 FETCH (UID 2 INTERNALDATE " 7-Mar-2024 09:15:00 +0100" '
                                  b'FLAGS ($Paid \\Seen \\Recent))\r\n')
            assert tagged(await raw.command(b"APPEND Nowhere {1+}\r\nx")).startswith(b"NO [TRYCREATE]")
            assert tagged(await raw.command("DELETE INBOX")).startswith(b"NO [CANNOT]")
            assert tagged(await raw.command("CREATE Old")).startswith(b"OK")
            assert tagged(await raw.command("DELETE Old")).startswith(b"OK")
            assert tagged(await raw.command("DELETE Old")).startswith(b"NO [NONEXISTENT]")
        finally:
            await raw.close()


# --- downloading, deleting and moving --------------------------------------------------------


async def test_sizes_and_bodies_by_uid_leave_the_seen_flag_alone() -> None:
    async with serving(sample()) as srv:
        async with client(srv) as imap:
            await imap.login("u", "pw")
            await imap.select("INBOX")
            sizes = await imap.sizes()
            stored = srv.messages("u")
            assert stored[1] == b"Subject: two\r\n\r\nsecond, with bare LF line ends\r\n"  # CRLF, as IMAP counts
            assert sizes == {1: len(stored[0]), 2: len(stored[1])}
            sinks = Sinks()
            got = [uid async for uid in imap.fetch_many([1, 2, 99], sinks, max_body=1 << 20)]
            assert got == [1, 2] and sinks.bodies == {1: stored[0], 2: stored[1]}  # byte for byte
            assert srv.flags("u") == [set(), set()]  # BODY.PEEK[]


async def test_flag_deleted_and_uid_expunge_remove_exactly_ours() -> None:
    async with serving(sample()) as srv:
        async with client(srv) as imap:
            await imap.login("u", "pw")
            await imap.select("INBOX")
            await imap.sizes()
            srv.add_message("u", THREE)  # uid 3, announced with the next command
            await imap.flag_deleted([1])
            assert srv.flags("u")[0] == {"\\Deleted"}
            assert await imap.expunge([1])
            assert [m.split(b"\r\n")[0] for m in srv.messages("u")] == [b"Subject: two", b"Subject: three"]
            assert srv.commands["UID EXPUNGE"] == 1 and srv.commands["EXPUNGE"] == 0


async def test_without_uidplus_expunge_waits_while_others_messages_are_marked_deleted() -> None:
    async with serving(sample()) as srv:
        other = await Raw.open(srv)
        try:
            await other.command("LOGIN u pw")
            await other.command("SELECT INBOX")
            await other.command("UID STORE 2 +FLAGS.SILENT (\\Deleted)")  # another mail program's
            async with client(srv) as imap:
                await imap.login("u", "pw")
                imap.capabilities.discard("UIDPLUS")  # as against a server without it
                await imap.select("INBOX")
                await imap.flag_deleted([1])
                assert not await imap.expunge([1])  # UID SEARCH DELETED finds 1 and 2: no EXPUNGE
                assert len(srv.messages("u")) == 2
                await other.command("UID STORE 2 -FLAGS.SILENT (\\Deleted)")
                assert await imap.expunge([1])  # now only ours are marked: EXPUNGE
                assert [m.split(b"\r\n")[0] for m in srv.messages("u")] == [b"Subject: two"]
            # The other session hears of the EXPUNGE with its next command, never during a FETCH.
            fetched = await other.command("FETCH 1:* (FLAGS)")
            assert fetched == [b"* 2 FETCH (FLAGS (\\Recent))\r\n", b"R5 OK FETCH completed\r\n"]  # 1 is gone
            assert await other.command("NOOP") == [b"* 1 EXPUNGE\r\n", b"R6 OK done\r\n"]
            assert (await other.command("FETCH 1 (UID)"))[0] == b"* 1 FETCH (UID 2)\r\n"
        finally:
            await other.close()
        assert srv.commands["UID SEARCH"] == 2 and srv.commands["EXPUNGE"] == 1


async def test_move_creates_the_missing_folder_on_trycreate_and_copy_keeps_the_originals() -> None:
    async with serving(sample()) as srv:
        async with client(srv) as imap:
            await imap.login("u", "pw")
            await imap.select("INBOX")
            await imap.sizes()
            await imap.transfer([2], "Delivered", move=True)
            assert "NO [TRYCREATE]" in "\n".join(imap.transcript)  # the first MOVE, before the CREATE
            assert [m.split(b"\r\n")[0] for m in srv.messages("u", "Delivered")] == [b"Subject: two"]
            assert [m.split(b"\r\n")[0] for m in srv.messages("u")] == [b"Subject: one"]
            copyuid = next(line for line in imap.transcript if "COPYUID" in line)
            assert copyuid == f"S: * OK [COPYUID {srv.uidvalidity('u', 'Delivered')} 2 1] moved"
            await imap.transfer([1], "Delivered", move=False)  # COPY: the original stays
            assert len(srv.messages("u")) == 1 and len(srv.messages("u", "Delivered")) == 2
            assert srv.commands["UID MOVE"] == 2 and srv.commands["CREATE"] == 1 and srv.commands["UID COPY"] == 1
            await imap.select("Delivered", readonly=True)
            with pytest.raises(MailboxCommandError) as refused:
                await imap.transfer([1], "INBOX", move=True)  # EXAMINE: read-only
            assert refused.value.resp_code == "READ-ONLY"


async def test_fetch_store_and_search_in_raw_form() -> None:
    async with serving(sample()) as srv:
        raw = await Raw.open(srv)
        try:
            await raw.command("LOGIN u pw")
            select = await raw.command("SELECT INBOX")
            assert b"* 2 EXISTS\r\n" in select and b"* 2 RECENT\r\n" in select
            assert b"* OK [UNSEEN 1] first unseen message\r\n" in select
            assert select[-1] == b"R2 OK [READ-WRITE] SELECT completed\r\n"
            header = await raw.command("FETCH 1 (BODY.PEEK[HEADER] BODY[TEXT]<0.5>)")
            assert header[0] == (b"* 1 FETCH (BODY[HEADER] {35}\r\nSubject: one\r\nTo: u@example.com\r\n\r\n "
                                 b"BODY[TEXT]<0> {5}\r\nfirst FLAGS (\\Seen \\Recent))\r\n")  # BODY[] sets \Seen
            assert await raw.command("STORE 2 +FLAGS (\\Flagged $Later)") == \
                [b"* 2 FETCH (FLAGS ($Later \\Flagged \\Recent))\r\n", b"R4 OK STORE completed\r\n"]
            assert (await raw.command("SEARCH UNSEEN"))[0] == b"* SEARCH 2\r\n"
            assert (await raw.command("UID SEARCH OR SEEN KEYWORD $Later"))[0] == b"* SEARCH 1 2\r\n"
            assert (await raw.command("SEARCH NOT (FLAGGED) LARGER 10"))[0] == b"* SEARCH 1\r\n"
            assert (await raw.command("UID SEARCH UID 2:* SMALLER 1000 RECENT"))[0] == b"* SEARCH 2\r\n"
            assert (await raw.command("SEARCH CHARSET UTF-8 ALL"))[0] == b"* SEARCH 1 2\r\n"
            assert tagged(await raw.command("SEARCH SUBJECT x")).startswith(b"BAD")
            assert tagged(await raw.command("FETCH 3 (UID)")).startswith(b"BAD")  # no message 3
            assert tagged(await raw.command("FETCH 1 ENVELOPE")).startswith(b"BAD")
            assert (await raw.command("UID FETCH 5:* FAST"))[0].startswith(b"* 2 FETCH (UID 2 FLAGS")  # * is 2
            assert tagged(await raw.command("BOGUS")).startswith(b"BAD")
            assert await raw.command("CLOSE") == [b"R15 OK CLOSE completed\r\n"]
            assert tagged(await raw.command("FETCH 1 (UID)")).startswith(b"BAD")  # nothing selected
            assert (await raw.command("LOGOUT"))[0].startswith(b"* BYE")
        finally:
            await raw.close()


# --- IDLE and other sessions ------------------------------------------------------------------------


async def test_idle_hears_of_new_mail_at_once_and_of_other_sessions_expunges() -> None:
    async with serving(sample()) as srv:
        async with client(srv) as watcher, client(srv) as worker:
            await watcher.login("u", "pw")
            await watcher.select("INBOX", readonly=True)
            stop = asyncio.Event()
            idling = asyncio.create_task(watcher.idle(stop=stop, wait=10))
            await wait_until(lambda: srv.idling("u") == ["INBOX"])
            await worker.login("u", "pw")
            await worker.select("INBOX")
            await worker.sizes()
            await worker.transfer([1], "Delivered", move=True)  # heard as an EXPUNGE: not new mail
            await wait_until(lambda: "S: * 1 EXPUNGE" in watcher.transcript)
            assert not idling.done()
            uid = srv.add_message("u", THREE)
            assert await asyncio.wait_for(idling, 2) is True  # EXISTS: new mail, at once
            assert uid == 3 and "S: * 2 EXISTS" in watcher.transcript
            assert srv.idling() == []
            # Stopped from our side: DONE, and the connection is ready for the next command.
            idling = asyncio.create_task(watcher.idle(stop=stop, wait=10))
            await wait_until(lambda: srv.idling("u") == ["INBOX"])
            stop.set()
            assert await asyncio.wait_for(idling, 2) is False
            assert (await watcher.sizes()) == {2: len(srv.messages("u")[0]), 3: len(srv.messages("u")[1])}


async def test_renumbering_a_folder_gives_a_new_uidvalidity_and_ends_sessions_on_it() -> None:
    async with serving(sample()) as srv:
        async with client(srv) as imap:
            await imap.login("u", "pw")
            before = (await imap.select("INBOX")).uidvalidity
            after = srv.renumber("u")
            assert after != before
            with pytest.raises(MailboxConnectionError) as ended:
                await imap.noop()
            assert "renumbered" in ended.value.cause
        async with client(srv) as imap:
            await imap.login("u", "pw")
            state = await imap.select("INBOX")
            assert state.uidvalidity == after and await imap.sizes() == {1: len(srv.messages("u")[0]),
                                                                          2: len(srv.messages("u")[1])}


async def test_lines_without_a_tag_and_overlong_lines() -> None:
    async with serving(sample()) as srv:
        raw = await Raw.open(srv)
        try:
            raw.writer.write(b"\r\n(NOOP)\r\n")
            assert [await raw.response(), await raw.response()] == [b"* BAD a command starts with a tag\r\n"] * 2
            raw.writer.write(b"A1 NOOP " + b"x" * 20_000 + b"\r\n")
            assert await raw.response() == b"* BYE command line too long\r\n"
            assert await raw.reader.read() == b""
        finally:
            await raw.close()


async def test_a_client_idle_for_too_long_is_logged_out() -> None:
    async with serving(DemoImapServer({"u": ("pw", {})}, idle_timeout=0.2)) as srv:
        raw = await Raw.open(srv)
        try:
            assert (await raw.response()).startswith(b"* BYE autologout")
            assert await raw.reader.read() == b""
        finally:
            await raw.close()


# --- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only its CA), from a throw-away CA made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    from tests.servers.certs import make_certificates

    certs = make_certificates(Path(tmp_path_factory.mktemp("tls")))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(certs.cert_path, certs.key_path)
    return server, certs.client_context()


async def test_starttls_first_then_the_login(certificates: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_tls, client_tls = certificates
    async with serving(DemoImapServer({"u": ("pw", {"INBOX": [ONE]})}, tls=server_tls)) as srv:
        async with ImapClient("127.0.0.1", srv.port, security="starttls", ssl_context=client_tls, timeout=5) as imap:
            assert imap.encrypted and "STARTTLS" not in imap.capabilities and "AUTH=PLAIN" in imap.capabilities
            await imap.login("u", "pw")
            assert (await imap.select("INBOX")).exists == 1
        async with client(srv) as plain:
            assert {"STARTTLS", "LOGINDISABLED"} <= plain.capabilities
            with pytest.raises(MailboxInsecureError):
                await plain.login("u", "pw")  # the client will not send it
        raw = await Raw.open(srv)
        try:
            assert tagged(await raw.command("LOGIN u pw")).startswith(b"NO [PRIVACYREQUIRED]")
        finally:
            await raw.close()
        assert [login.method for login in srv.logins] == ["AUTHENTICATE PLAIN"]


async def test_tls_from_the_first_byte(certificates: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_tls, client_tls = certificates
    async with serving(DemoImapServer({"u": ("pw", {})}, tls=server_tls, implicit_tls=True)) as srv:
        async with ImapClient("127.0.0.1", srv.port, security="tls", ssl_context=client_tls, timeout=5) as imap:
            assert imap.encrypted and "LOGINDISABLED" not in imap.capabilities
            await imap.login("u", "pw")


# --- the helpers -------------------------------------------------------------------------------------


def test_dates_and_uid_sets() -> None:
    when = parse_date(" 7-Mar-2024 09:15:00 +0100")
    assert when is not None and when.isoformat() == "2024-03-07T09:15:00+01:00"
    assert parse_date("07-mar-2024 09:15:00 -0230") is not None
    assert parse_date("7-Foo-2024 09:15:00 +0100") is None and parse_date("31-Feb-2024 09:15:00 +0100") is None
    assert uid_set([4, 5, 6, 9, 11, 12]) == "4:6,9,11:12" and uid_set([]) == ""


def test_the_error_challenge_names_the_scope() -> None:
    from pop3gui.demo.pop3_server import error_challenge

    assert json.loads(base64.b64decode(error_challenge("XOAUTH2", scope="imap")))["scope"] == "imap"
