"""One pop3gui per state folder: a second launch asks the first to show its window.

The first process listens on a :class:`QLocalServer` whose name is derived
from the state folder (a hash of its resolved path, plus the user id), so two
``POP3GUI_HOME`` folders are independent instances.  A later ``pop3gui`` or
``pop3gui tray`` connects, sends one line (``show`` or ``events``), waits for
``ok`` and exits 0 instead of starting a second engine.
"""

from __future__ import annotations

import hashlib
import logging
import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from pop3gui.core.state.paths import Paths

log = logging.getLogger(__name__)

COMMANDS = ("show", "events")
_MAX_LINE = 64


def server_name(paths: Paths) -> str:
    """A short, per-user, per-state-folder name (Unix socket paths are limited to ~100 bytes)."""
    try:
        folder = str(paths.state_dir.expanduser().resolve())
    except OSError:
        folder = str(paths.state_dir.expanduser().absolute())
    digest = hashlib.sha256(folder.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "")
    return f"pop3gui-{user}-{digest}"


def ask_running_instance(paths: Paths, command: str = "show", *, timeout_ms: int = 3000) -> bool:
    """Tell a running instance to ``command``; True when it answered (so this process should exit)."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    socket = QLocalSocket()
    socket.connectToServer(server_name(paths))
    if not socket.waitForConnected(timeout_ms):
        return False
    try:
        socket.write(f"{command}\n".encode("ascii"))
        if not socket.waitForBytesWritten(timeout_ms):
            return False
        reply = b""
        while b"\n" not in reply and len(reply) < _MAX_LINE:
            if not socket.waitForReadyRead(timeout_ms):
                return False
            reply += bytes(socket.readAll().data())
        return reply.strip() == b"ok"
    finally:
        socket.disconnectFromServer()


class InstanceServer(QObject):
    """Listens for later launches; :attr:`requested` carries their command."""

    requested = Signal(str)

    def __init__(self, paths: Paths, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name(paths)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> bool:
        """Start listening; a socket file left by a crashed instance is removed first.

        Call only after :func:`ask_running_instance` found nobody answering.
        """
        if self._server.listen(self.name):
            return True
        QLocalServer.removeServer(self.name)  # stale socket file of a dead instance
        if self._server.listen(self.name):
            return True
        log.warning("single instance: cannot listen on %s: %s", self.name, self._server.errorString())
        return False

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))

    def _read(self, socket: QLocalSocket) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if b"\n" not in data:
            if len(data) > _MAX_LINE:
                socket.abort()
            else:
                self._buffers[socket] = data
            return
        command = data.split(b"\n", 1)[0].decode("ascii", "replace").strip()
        self._buffers[socket] = b""
        if command in COMMANDS:
            socket.write(b"ok\n")
            socket.flush()
            self.requested.emit(command)
        else:
            socket.write(b"unknown\n")
            socket.flush()
        socket.disconnectFromServer()

    def _forget(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()
