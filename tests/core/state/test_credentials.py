"""Preparing the keyring ahead of the first lookup: it happens, and it is silent when it fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = (
    "import sys\n"
    "from pop3gui.core.state import credentials\n"
    "assert 'keyring' not in sys.modules, 'keyring is imported on first use only'\n"
    "credentials.prepare_in_background().join(60)\n"
    "print('keyring imported:', 'keyring' in sys.modules)\n"
    "try:\n"
    "    credentials.Credentials().pop3_password('alice')\n"
    "except credentials.CredentialError as exc:\n"
    "    print('lookup:', exc.cause)\n"
)


@pytest.mark.parametrize("backend", ["keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"])
def test_prepare_imports_keyring_and_leaves_errors_to_the_lookup(backend: str) -> None:
    env = dict(os.environ, PYTHON_KEYRING_BACKEND=backend, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", "a failing backend must not show up as a thread's traceback"
    lines = proc.stdout.splitlines()
    assert lines[0] == "keyring imported: True"
    assert lines[1].startswith("lookup: ")  # the real lookup explains the problem
