"""A small asyncio IMAP4rev1 server for the demo sandbox (RFC 3501, with UIDPLUS, MOVE and IDLE).

It serves in-memory mailboxes, each a set of folders, on 127.0.0.1 (port 0:
read :attr:`DemoImapServer.port` after :meth:`~DemoImapServer.start`), so that
``pop3gui demo`` shows an IMAP account with nothing installed - no Dovecot.
Like :mod:`pop3gui.demo.pop3_server` it is correct rather than clever:

- logging in: LOGIN and AUTHENTICATE PLAIN with a password; a mailbox added
  with ``oauth=True`` only with an OAuth2 access token over AUTHENTICATE
  XOAUTH2 or OAUTHBEARER (RFC 7628), the server's *token_check* saying whose
  a token is.  The initial response comes on the command line (SASL-IR, RFC
  4959) or after the ``+``; a refused token is answered as Dovecot does (a
  ``+`` carrying the error as base64 JSON, then ``NO [AUTHENTICATIONFAILED]``).
  Given a TLS context the server offers STARTTLS, with LOGINDISABLED until
  TLS is on (or TLS from the first byte with ``implicit_tls``); without one,
  plaintext on loopback, like the demo's POP3 server;
- folders: LIST and LSUB (``*`` and ``%``), CREATE (parents too), DELETE,
  SUBSCRIBE, UNSUBSCRIBE, STATUS, APPEND; ``/`` separates levels, INBOX is
  any case, names travel in modified UTF-7; every folder has its UIDVALIDITY
  (a renumbered or re-created folder gets a new one) and UIDNEXT;
- SELECT and EXAMINE; FETCH (UID, FLAGS, INTERNALDATE, RFC822.SIZE, BODY[] /
  BODY.PEEK[] whole or HEADER / TEXT, with a partial range, RFC822,
  RFC822.HEADER, RFC822.TEXT, FAST), STORE, SEARCH (flags, keywords, UID and
  sequence sets, sizes, NOT, OR, lists), COPY and MOVE (RFC 6851), each also
  as a UID command; EXPUNGE and UID EXPUNGE, COPYUID and APPENDUID (UIDPLUS,
  RFC 4315); CLOSE, UNSELECT, CHECK, NOOP, LOGOUT; literals, LITERAL+ too;
- IDLE (RFC 2177): a session idling on a folder hears ``* n EXISTS`` as soon
  as mail arrives there (:meth:`DemoImapServer.add_message`, an APPEND, a COPY
  or MOVE by another session) and ``* n EXPUNGE`` when another session
  removes messages.

Several sessions may use a mailbox at once, as with any IMAP server.  Each
keeps its own view of the selected folder (its sequence numbers) and hears of
other sessions' changes only where RFC 3501 (7.4.1) allows: never an EXPUNGE
while answering FETCH, STORE or SEARCH.  A folder that is deleted or
renumbered under a session ends that session with ``* BYE``, as Dovecot does.

Not served (answered BAD or NO): ENVELOPE, BODYSTRUCTURE and body parts,
RENAME, searching text or dates.

The server lives in a few modules, each for one concern:
:mod:`~pop3gui.demo.imap_store` (the mailboxes, and waking the sessions that
watch a folder), :mod:`~pop3gui.demo.imap_wire` (reading arguments, writing
data), :mod:`~pop3gui.demo.imap_connection` (reading commands, the states,
logging in), :mod:`~pop3gui.demo.imap_session` (the commands on folders and
messages) with :mod:`~pop3gui.demo.imap_search` (SEARCH keys); this one
accepts the connections, and hands on the names the demo and its tests use.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pop3gui.demo.imap_connection import CAPABILITIES, MAX_LINE
from pop3gui.demo.imap_session import Session
from pop3gui.demo.imap_store import Mailbox, MailStore, folder_name
from pop3gui.demo.imap_wire import Gone, imap_date, parse_date, parse_sequence_set, uid_set
from pop3gui.demo.pop3_server import Login


class DemoImapServer(MailStore):
    """In-memory IMAP mailboxes on loopback; see the module docstring."""

    def __init__(self, mailboxes: Mapping[str, tuple[str, Mapping[str, Sequence[bytes]]]] | None = None, *,
                 host: str = "127.0.0.1", idle_timeout: float = 30 * 60.0,
                 token_check: Callable[[str], str | None] | None = None, tls: ssl.SSLContext | None = None,
                 implicit_tls: bool = False) -> None:
        super().__init__()
        self.host = host
        self.port = 0
        self.idle_timeout = idle_timeout  # RFC 3501: an autologout timer of at least 30 minutes
        self.token_check = token_check  # access token -> the user it was issued to, or None
        self.tls = tls  # a server context: STARTTLS is offered (or TLS from the start with implicit_tls)
        self.implicit_tls = implicit_tls
        self.logins: list[Login] = []
        self.commands: collections.Counter[str] = collections.Counter()  # "UID MOVE" -> how often
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        for user, (password, folders) in (mailboxes or {}).items():
            self.add_mailbox(user, password, folders)

    # --- serving ------------------------------------------------------------------

    async def start(self) -> None:
        tls = self.tls if self.implicit_tls else None
        self._server = await asyncio.start_server(self._serve, self.host, 0, limit=MAX_LINE, ssl=tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        session = Session(self, reader, writer, encrypted=self.tls is not None and self.implicit_tls)
        self._sessions.add(session)
        try:
            await session.run()
        except (OSError, TimeoutError, Gone):
            pass  # the client went away, idled out, or its folder went away
        except asyncio.CancelledError:
            pass  # stop(): the session ends here (asyncio would log a cancelled connection task as an error)
        finally:
            self._sessions.discard(session)
            self._tasks.discard(task)
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


__all__ = ["CAPABILITIES", "DemoImapServer", "Mailbox", "folder_name", "imap_date", "parse_date",
           "parse_sequence_set", "uid_set"]
