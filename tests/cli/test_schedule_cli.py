"""`pop3gui run` with the schedule turned off: it says so, contacts no server, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pop3gui.core.config.model import AccountConfig, Config, DeliveryConfig, RecipientPolicy, ScheduleConfig, SmtpConfig
from pop3gui.core.config.save import save_config


class Listener:
    """A TCP port that counts who connects to it (and says nothing)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is a POSIX signal")
def test_run_with_the_schedule_off_warns_contacts_nobody_and_exits_on_sigterm(tmp_path: Path) -> None:
    isp, local = Listener(), Listener()
    try:
        config = Config(
            smtp=SmtpConfig(host="127.0.0.1", port=local.port, timeout_s=5),
            schedule=ScheduleConfig(enabled=False, interval_min=1),
            delivery=DeliveryConfig(undeliverable_to="admin@contoso.com"),
            policies=(RecipientPolicy("Default Policy", ("contoso.com",), "contoso.com"),),
            accounts=(AccountConfig(name="alice", host="127.0.0.1", port=isp.port,
                                    username="alice", deliver_to="alice@contoso.com"),),
        )
        save_config(config, tmp_path / "config.toml")
        env = dict(os.environ, POP3GUI_HOME=str(tmp_path), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
        runner = subprocess.Popen([sys.executable, "-m", "pop3gui", "run"], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, env=env)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(runner.stdout or ()), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 30
            while not any("Automatic retrieval is turned off" in line for line in list(lines)):
                assert time.monotonic() < deadline and runner.poll() is None, "".join(lines)
                time.sleep(0.05)
            time.sleep(1.0)  # time enough for a cycle, were one to start
            assert runner.poll() is None, "".join(lines)
            runner.send_signal(signal.SIGTERM)
            runner.wait(timeout=30)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait(timeout=10)
            reader.join(timeout=10)
            assert runner.stdout is not None
            runner.stdout.close()
        out = "".join(lines)
        assert runner.returncode == 0, out
        assert "[schedule] enabled = false" in out and "pop3gui run --once" in out
        assert "Traceback" not in out
        assert "Retrieving mail" not in out
        assert (isp.connections, local.connections) == (0, 0), out
    finally:
        isp.close()
        local.close()
