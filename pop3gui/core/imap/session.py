"""The IMAP conversation: connecting, STARTTLS, tagged commands and their answers, logging in and out.

:class:`ImapSession` knows the protocol but no mail: what a mail source asks
of a server (folders, sizes, bodies, removal, IDLE) is
:class:`~pop3gui.core.imap.client.ImapClient`, built on it.  Held to the POP3
client's standards: every read has a timeout, every line and every literal a
bound (:mod:`.stream`), a broken stream closes the connection, secrets never
travel in plaintext unless the account says so and never reach the transcript
(:mod:`.login`).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable
from typing import Self

from pop3gui.core.connect import IMAP, open_connection, tls_context, tls_error
from pop3gui.core.errors import (
    ConfigError,
    MailboxCommandError,
    MailboxConnectionError,
    MailboxError,
    MailboxInUseError,
    MailboxTlsError,
)
from pop3gui.core.imap.login import oauth_login, password_login
from pop3gui.core.imap.parse import Response, protocol_error
from pop3gui.core.imap.stream import ImapStream

__all__ = ["SECURITY_MODES", "ImapSession"]

SECURITY_MODES = ("tls", "starttls", "none")


class ImapSession:
    """One IMAP connection: ``async with`` connects, and logs out when the block ends normally."""

    def __init__(self, host: str, port: int, *, security: str, verify_tls: bool = True, timeout: float = 60.0,
                 ssl_context: ssl.SSLContext | None = None, max_line: int = 64 * 1024) -> None:
        if security not in SECURITY_MODES:
            raise ConfigError(f"unknown IMAP security {security!r}", key="security",
                              cause="security must be one of: tls, starttls, none.",
                              fix='Use "tls" for port 993, "starttls" for port 143, or "none" only on a network '
                              "you trust.")
        self.host = host
        self.port = port
        self.security = security
        self.verify_tls = verify_tls
        self._ssl_context = ssl_context
        self.greeting = ""
        self.capabilities: set[str] = set()
        self._stream = ImapStream(f"{host}:{port}", timeout=timeout, max_line=max_line)
        self.transcript: collections.deque[str] = self._stream.transcript
        self._tags = 0
        self._exists = 0
        self._uid_of_seq: list[int] = []  # the selected folder's UIDs by sequence number - 1, as last listed
        self._logged_in = False

    # ------------------------------------------------------------------ basics

    @property
    def where(self) -> str:
        return self._stream.where

    @property
    def timeout(self) -> float:
        return self._stream.timeout

    @property
    def encrypted(self) -> bool:
        return self._stream.encrypted

    @property
    def connected(self) -> bool:
        return self._stream.connected

    @property
    def has_uidplus(self) -> bool:
        """UID EXPUNGE: UIDPLUS (RFC 4315), part of IMAP4rev2 (RFC 9051) itself."""
        return "UIDPLUS" in self.capabilities or "IMAP4REV2" in self.capabilities

    @property
    def has_move(self) -> bool:
        """UID MOVE: MOVE (RFC 6851), part of IMAP4rev2 itself."""
        return "MOVE" in self.capabilities or "IMAP4REV2" in self.capabilities

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: object) -> None:
        if exc_type is None:
            await self.logout()
        else:
            await self.close()

    async def close(self) -> None:
        """Drop the connection without a word (nothing is committed that was not already)."""
        await self._stream.close()

    # ------------------------------------------------------------------ connecting

    async def connect(self) -> None:
        """TCP (and TLS), the greeting, CAPABILITY, STARTTLS if asked to."""
        tls = self._tls_context() if self.security == "tls" else None
        reader, writer = await open_connection(self.host, self.port, tls=tls, timeout=self.timeout,
                                               max_line=self._stream.max_line, service=IMAP)
        stream = self._stream
        stream.attach(reader, writer)
        self._logged_in = False
        try:
            greeting = await stream.read_response("waiting for the greeting")
            if greeting.tag != "*" or greeting.kind not in ("OK", "PREAUTH", "BYE"):
                await stream.close()
                raise protocol_error(self.where, "a greeting that is not * OK", greeting.text.encode())
            if greeting.kind == "BYE":
                await stream.close()
                raise MailboxConnectionError(
                    f"The IMAP server {self.where} refused the connection: {greeting.text}",
                    cause="The server is busy, shutting down, or does not accept connections from here.",
                    fix="Nothing to do if it happens once: the next cycle retries. If it lasts, ask the provider.")
            self.greeting = greeting.text
            self._logged_in = greeting.kind == "PREAUTH"
            self._take_capabilities(greeting)
            if not self.capabilities:
                await self.capability()
            if self.security == "starttls":
                await self._starttls()
        except BaseException:
            await stream.close()
            raise

    async def _starttls(self) -> None:
        stream = self._stream
        if "STARTTLS" not in self.capabilities:
            raise MailboxTlsError(
                f"The IMAP server {self.where} does not offer STARTTLS",
                cause="The account is set to security = starttls, but the server did not announce STARTTLS, so "
                "the password would travel unencrypted.",
                fix='Use security = "tls" (usually port 993) if the provider offers it; never fall back to '
                "plaintext on an untrusted network.")
        response = await self._simple("STARTTLS")
        if response.kind != "OK":
            raise MailboxTlsError(f"The IMAP server {self.where} refused STARTTLS: {response.text}",
                                  cause="The server would not start TLS, so the password would travel "
                                  "unencrypted.", fix='Use security = "tls" (usually port 993).')
        if stream.unread_bytes():  # sent before TLS, would be read as if protected by it
            raise MailboxTlsError(f"The IMAP server {self.where} sent unexpected data right after STARTTLS",
                                  cause="Data arrived before TLS started; someone on the network may be "
                                  "tampering with the connection.", fix='Use security = "tls" (port 993), or '
                                  "check the network.")
        writer = stream.live_writer()
        try:
            await asyncio.wait_for(writer.start_tls(self._tls_context(), server_hostname=self.host,
                                                    ssl_handshake_timeout=self.timeout), self.timeout)
        except ssl.SSLError as exc:
            raise tls_error(exc, self.host, self.port, IMAP) from exc
        except TimeoutError as exc:
            raise MailboxTlsError(f"The TLS handshake with {self.where} timed out",
                                  cause="The server accepted STARTTLS but did not complete TLS.",
                                  fix="Retry later; if it persists, contact the provider.") from exc
        except OSError as exc:
            raise stream.dropped(exc) from exc
        stream.transcript.append("-- TLS started")
        self.capabilities = set()
        await self.capability()  # RFC 3501: capabilities learnt before TLS are forgotten

    def _tls_context(self) -> ssl.SSLContext:
        return tls_context(self._ssl_context, verify=self.verify_tls)

    # ------------------------------------------------------------------ commands

    async def _send(self, line: str, redacted: str | None = None) -> str:
        """Send a tagged command line; its tag."""
        self._tags += 1
        tag = f"P{self._tags:04d}"
        await self._stream.send(f"{tag} {line}", redacted=None if redacted is None else f"{tag} {redacted}")
        return tag

    async def _finish(self, tag: str, what: str, on_data: Callable[[Response], None] | None = None) -> Response:
        """Read until the tagged response of *tag*, handing untagged data to *on_data*."""
        while True:
            response = await self._stream.read_response(f"waiting for the reply to {what}")
            if response.tag == tag:
                return response
            if response.tag == "*":
                self._note(response)
                if on_data is not None:
                    on_data(response)
                continue
            await self._stream.close()
            raise protocol_error(self.where, f"an unexpected response to {what}", response.text.encode())

    async def _simple(self, line: str, what: str = "", on_data: Callable[[Response], None] | None = None) -> Response:
        tag = await self._send(line)
        return await self._finish(tag, what or line.split(" ", 1)[0], on_data)

    async def _ok(self, line: str, what: str = "", on_data: Callable[[Response], None] | None = None) -> Response:
        """A command that must succeed; NO or BAD becomes MailboxCommandError with the server's words."""
        name = what or line.split(" ", 1)[0]
        response = await self._simple(line, name, on_data)
        if response.kind != "OK":
            raise self.refused(name, response)
        return response

    def refused(self, command: str, response: Response) -> MailboxCommandError:
        said = f"{response.kind} " + (f"[{response.code}] " if response.code else "") + response.text
        if response.code == "INUSE":  # RFC 5530: another session holds the folder
            return MailboxInUseError(
                f"The IMAP server {self.where} says the folder is in use: {command}: {said}",
                cause="Another program or session holds the folder, or an earlier session has not ended yet.",
                fix="Nothing to do if it happens once; the next cycle retries. Otherwise close the other program.",
                reply=said, resp_code=response.code)
        return MailboxCommandError(
            f"The IMAP server {self.where} refused {command}: {said}",
            cause="The server answered NO (it cannot do it now) or BAD (it did not understand the command).",
            fix="Nothing is lost: the messages stay on the server. If it keeps happening, check the folder "
            "settings and the server with another mail client.",
            reply=said, resp_code=response.code)

    def _note(self, response: Response) -> None:
        """Keep track of what the server says on the side: capabilities, message counts, BYE."""
        if response.kind == "CAPABILITY":
            self.capabilities = {str(v).upper() for v in response.data if isinstance(v, str)}
        elif response.kind == "EXISTS" and response.number is not None:
            self._exists = response.number
        elif response.kind == "EXPUNGE" and response.number is not None:
            self._exists = max(0, self._exists - 1)
            if 0 < response.number <= len(self._uid_of_seq):
                del self._uid_of_seq[response.number - 1]
        elif response.is_status:
            self._take_capabilities(response)

    def _take_capabilities(self, response: Response) -> None:
        if response.code == "CAPABILITY":
            self.capabilities = {c.upper() for c in response.code_args.split()}

    async def capability(self) -> set[str]:
        await self._ok("CAPABILITY")
        return self.capabilities

    # ------------------------------------------------------------------ logging in

    async def login(self, user: str, password: str) -> None:
        if self._logged_in:
            return
        response = await password_login(self._stream, self._send, self._finish, capabilities=self.capabilities,
                                        security=self.security, user=user, password=password)
        await self._after_login(response)

    async def login_oauth(self, user: str, token: str, *, mechanism: str = "xoauth2") -> None:
        if self._logged_in:
            return
        response = await oauth_login(self._stream, self._send, self._finish, capabilities=self.capabilities,
                                     security=self.security, host=self.host, port=self.port, user=user, token=token,
                                     mechanism=mechanism)
        await self._after_login(response)

    async def _after_login(self, response: Response) -> None:
        self._logged_in = True
        if response.code == "CAPABILITY":
            self._take_capabilities(response)
        else:
            await self.capability()  # a server may announce more once logged in


    async def noop(self) -> None:
        await self._ok("NOOP")

    async def logout(self) -> None:
        """LOGOUT politely; a server that is already gone is not an error."""
        if not self._stream.connected:
            return
        try:
            await self._simple("LOGOUT")
        except MailboxError:
            pass
        finally:
            await self.close()
