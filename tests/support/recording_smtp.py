"""An SMTP server in a background thread that records every RCPT TO, with optional AUTH.

Unlike :mod:`tests.support.smtp_sink` (which lives in the test's event loop),
this one serves a ``pop3gui`` *child process*, so it runs its own loop
(aiosmtpd's :class:`~aiosmtpd.controller.Controller`).  It is an open relay on
purpose: it accepts every recipient (except those in ``refuse``), so the only
thing between a foreign address and ``RCPT TO`` is the connector.

``auth=(user, password)`` turns on SMTP AUTH (PLAIN and LOGIN) without TLS
(``auth_require_tls=False``); ``logins`` records every attempt.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.dovecot import free_port


@dataclass(frozen=True)
class Accepted:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes


class _Handler:
    def __init__(self, server: RecordingSmtp) -> None:
        self.server = server

    async def handle_RCPT(self, smtp: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        with self.server.lock:
            self.server.rcpts.append(address)
            reply = self.server.refuse.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            self.server.accepted.append(Accepted(str(envelope.mail_from or ""), tuple(envelope.rcpt_tos),
                                                 bytes(envelope.original_content or b"")))
        return "250 OK queued"


class RecordingSmtp:
    """``with RecordingSmtp(...) as smtp:`` listens on 127.0.0.1:``smtp.port``."""

    def __init__(self, *, auth: tuple[str, str] | None = None, refuse: dict[str, str] | None = None) -> None:
        self.auth = auth
        self.refuse = {k.lower(): v for k, v in (refuse or {}).items()}
        self.rcpts: list[str] = []
        self.accepted: list[Accepted] = []
        self.logins: list[tuple[str, bool]] = []  # (mechanism, success)
        self.lock = threading.Lock()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if auth is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      server_hostname="smtp.recording.test", **kwargs)

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = False
        if self.auth is not None and isinstance(auth_data, LoginPassword):
            ok = (auth_data.login.decode("utf-8", "replace"), auth_data.password.decode("utf-8", "replace")) \
                == self.auth
        with self.lock:
            self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)

    def start(self) -> RecordingSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
