"""The core must run headless: importing every core module pulls in no Qt."""

import pkgutil
import subprocess
import sys

import pop3gui.core


def test_core_modules_import_without_qt() -> None:
    names = [m.name for m in pkgutil.walk_packages(pop3gui.core.__path__, "pop3gui.core.")]
    assert names, "no core modules found"
    code = (
        "import sys, importlib\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'PySide6', 'shiboken6', 'qasync'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
