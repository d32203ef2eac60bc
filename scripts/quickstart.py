"""Install pop3gui into a virtual environment beside it and run the demo: one command, any Python >= 3.11.

    python3 scripts/quickstart.py [demo arguments]        (Linux, macOS)
    py scripts\\quickstart.py [demo arguments]             (Windows)

A system Python that is "externally managed" (PEP 668: Debian 12, Ubuntu
24.04, Homebrew) refuses ``pip install`` outside a virtual environment, so
this makes ``.venv`` in the project folder, installs the project into it and
runs ``pop3gui demo`` with the arguments given (``--headless --once`` for the
terminal). The next run reuses ``.venv`` and installs again only when the
sources changed. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".pop3gui-quickstart"
WINDOWS = os.name == "nt"


class Problem(Exception):
    """Something the user has to do before the demo can run; said in one paragraph, no traceback."""


def venv_python(env: Path = VENV) -> Path:
    return env / ("Scripts/python.exe" if WINDOWS else "bin/python")


def say(text: str) -> None:
    print(f"quickstart: {text}", flush=True)


def run(args: list[str | Path], what: str) -> None:
    proc = subprocess.run([str(a) for a in args], cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise Problem(f"{what} failed (exit {proc.returncode}); its messages are above.")


def works(python: Path) -> bool:
    return python.exists() and subprocess.run([str(python), "-c", "import sys"], check=False,
                                              capture_output=True).returncode == 0


def has_pip(python: Path) -> bool:
    return subprocess.run([str(python), "-m", "pip", "--version"], check=False,
                          capture_output=True).returncode == 0


def make_venv() -> None:
    """``.venv`` with pip; without ensurepip (Debian lacking python3-venv), an empty one pip fills from outside."""
    python = venv_python()
    if works(python):  # made earlier (with or without pip of its own)
        return
    say(f"creating the virtual environment {VENV}")
    try:
        venv.EnvBuilder(with_pip=True, clear=VENV.exists(), upgrade_deps=False).create(VENV)
        return
    except (subprocess.CalledProcessError, OSError) as exc:  # ensurepip failed or is missing
        reason = f"its ensurepip does not work: {exc}"
    shutil.rmtree(VENV, ignore_errors=True)
    try:  # ensurepip missing: a virtual environment without pip
        venv.EnvBuilder(with_pip=False).create(VENV)
    except (subprocess.CalledProcessError, OSError) as exc:
        raise Problem(_no_venv(f"{reason}; without pip: {exc}")) from exc
    if not works(python):
        raise Problem(_no_venv(reason))
    if not _outside_pip():
        shutil.rmtree(VENV, ignore_errors=True)
        raise Problem(_no_venv(reason))
    say("this Python has no ensurepip: the system's pip installs into the virtual environment")


def _no_venv(reason: str) -> str:
    return (f"cannot create a virtual environment with {sys.executable} ({reason}). "
            "On Debian or Ubuntu install the venv module: sudo apt install python3-venv "
            f"(or python{sys.version_info.major}.{sys.version_info.minor}-venv), then run this command again.")


def _outside_pip() -> bool:
    """Whether this interpreter's pip can install into another environment (pip >= 22.3: --python)."""
    proc = subprocess.run([sys.executable, "-m", "pip", "--version"], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        return False
    try:
        major, minor = (int(p) for p in proc.stdout.split()[1].split(".")[:2])
    except (IndexError, ValueError):
        return False
    return (major, minor) >= (22, 3)


def pip_command() -> list[str | Path]:
    python = venv_python()
    if has_pip(python):
        return [python, "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", python]


def sources_stamp() -> str:
    """Changes whenever pyproject.toml or a file of the package changes: when to install again."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    for path in sorted((ROOT / "pop3gui").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            stat = path.stat()
            digest.update(f"{path.relative_to(ROOT)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def developer_install(python: Path) -> bool:
    """Whether .venv already runs pop3gui from these very sources (``pip install -e``, as scripts/test.sh does)."""
    proc = subprocess.run([str(python), "-c", "import pop3gui; print(pop3gui.__file__)"], check=False,
                          capture_output=True, text=True, cwd=ROOT.parent)
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve().parent == (ROOT / "pop3gui").resolve()


def install() -> None:
    python = venv_python()
    if developer_install(python):
        return
    stamp = sources_stamp()
    if STAMP.exists() and STAMP.read_text().strip() == stamp:
        return
    say(f"installing pop3gui and what it needs into {VENV} (a minute the first time)")
    run([*pip_command(), "install", "--disable-pip-version-check", ROOT], "pip install")
    STAMP.write_text(stamp + "\n")


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print(f"quickstart: pop3gui needs Python 3.11 or newer; this is {sys.version.split()[0]} "
              f"({sys.executable}). Run the command with a newer python3 (or `py -3.12` on Windows).",
              file=sys.stderr)
        return 2
    try:
        make_venv()
        install()
    except Problem as exc:
        print(f"quickstart: {exc}", file=sys.stderr)
        return 1
    command = [str(venv_python()), "-m", "pop3gui", "demo", *argv]
    say("running: pop3gui demo " + " ".join(argv))
    if WINDOWS:  # no exec on Windows: wait and pass the exit code on
        return subprocess.run(command, check=False).returncode
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
