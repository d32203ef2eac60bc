"""README's first command on a system Python that refuses ``pip install`` (PEP 668).

``scripts/quickstart.py`` runs under the system's /usr/bin/python3 in a copy
of the project: it makes ``.venv``, installs the project into it and runs the
demo headless. It needs the package index pip is configured with (PySide6
and the rest are downloaded, or taken from pip's cache and its find-links):
outside CI a test is skipped when the index cannot be reached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.requirements import in_ci

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")
UNREACHABLE = ("No matching distribution", "Could not find a version", "NewConnectionError", "Temporary failure")

pytestmark = pytest.mark.slow


def _system_python() -> Path:
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no system /usr/bin/python3")
    version = subprocess.run([str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info >= (3, 11))"],
                             capture_output=True, text=True, check=False).stdout.strip()
    if version != "True":
        pytest.skip("the system python3 is older than 3.11")
    return SYSTEM_PYTHON


def _copy_project(dest: Path) -> Path:
    """The tracked files of the project (and the quickstart script), without its .venv or caches."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    names = {n for n in listed.decode().split("\0") if n} | {"scripts/quickstart.py"}
    for name in names:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "QT_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_STATE_HOME=str(home / ".local/state"), PATH="/usr/bin:/bin", **extra)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def _quickstart(project: Path, env: dict[str, str], *,
                no_ensurepip: bool = False) -> subprocess.CompletedProcess[str]:
    if no_ensurepip:  # as venv does on Debian without python3-venv: its ensurepip step fails
        command = ["-c", _NO_ENSUREPIP]
    else:
        command = ["scripts/quickstart.py"]
    proc = subprocess.run([str(_system_python()), *command, "--headless", "--once"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0 and not in_ci() and any(s in proc.stdout + proc.stderr for s in UNREACHABLE):
        pytest.skip("the package index pip is configured with cannot be reached")
    return proc


_NO_ENSUREPIP = """
import runpy, subprocess, sys, venv
def no_ensurepip(self, context):
    raise subprocess.CalledProcessError(1, [context.env_exec_cmd, "-m", "ensurepip"])
venv.EnvBuilder._setup_pip = no_ensurepip
sys.argv[0] = "scripts/quickstart.py"
runpy.run_path("scripts/quickstart.py", run_name="__main__")
"""


def _demo_ran(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "The demo ran as designed" in proc.stdout


def test_the_system_python_refuses_a_plain_pip_install(tmp_path: Path) -> None:
    """Why the quick start does not say ``pip install .``: the premise, checked on this system."""
    python = _system_python()
    marker = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    if not (Path(marker) / "EXTERNALLY-MANAGED").exists():
        pytest.skip("this system's python3 is not externally managed")
    proc = subprocess.run([str(python), "-m", "pip", "install", "--dry-run", str(ROOT)], env=_env(tmp_path),
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode != 0 and "externally-managed-environment" in proc.stderr


def test_quickstart_installs_into_a_venv_and_runs_the_demo(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "pop3gui")
    env = _env(tmp_path / "home")

    first = _quickstart(project, env)
    _demo_ran(first)
    assert "installing pop3gui" in first.stdout
    venv_python = project / ".venv" / "bin" / "python"
    assert venv_python.exists()
    location = subprocess.run([str(venv_python), "-c", "import pop3gui; print(pop3gui.__file__)"], cwd=tmp_path,
                              capture_output=True, text=True, check=True).stdout
    assert str(project / ".venv") in location  # installed into the venv, not run from the sources

    again = _quickstart(project, env)  # nothing changed: no second install
    _demo_ran(again)
    assert "installing" not in again.stdout and "creating" not in again.stdout


def test_without_ensurepip_the_system_pip_fills_a_venv_made_without_pip(tmp_path: Path) -> None:
    """As on Debian without python3-venv: ``venv`` cannot run ensurepip."""
    project = _copy_project(tmp_path / "pop3gui")
    proc = _quickstart(project, _env(tmp_path / "home"), no_ensurepip=True)
    _demo_ran(proc)
    assert "the system's pip installs into the virtual environment" in proc.stdout
    assert not (project / ".venv" / "bin" / "pip").exists()


def test_an_old_python_is_told_what_to_use(tmp_path: Path) -> None:
    old = ("import sys, runpy; sys.version_info = (3, 9, 18, 'final', 0); "
           "runpy.run_path('scripts/quickstart.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", old], cwd=ROOT, capture_output=True, text=True, check=False,
                          env=_env(tmp_path))
    assert proc.returncode == 2 and "needs Python 3.11 or newer" in proc.stderr
    assert not (tmp_path / ".venv").exists()
