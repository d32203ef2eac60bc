"""Only one runner may work on a state folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pop3gui.core.errors import StateError
from pop3gui.core.state.lock import RunnerLock


def test_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    lock_path = tmp_path / "runner.lock"
    with RunnerLock(lock_path):
        code = (
            "import sys; from pathlib import Path; from pop3gui.core.state.lock import RunnerLock\n"
            "from pop3gui.core.errors import StateError\n"
            f"try:\n    RunnerLock(Path({str(lock_path)!r})).acquire()\nexcept StateError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 3
        assert f"pid {os.getpid()}" in out.stdout
    with RunnerLock(lock_path):  # released: free again
        pass


def test_lock_in_same_process_is_refused(tmp_path: Path) -> None:
    with RunnerLock(tmp_path / "runner.lock"):
        with pytest.raises(StateError):
            RunnerLock(tmp_path / "runner.lock").acquire()
