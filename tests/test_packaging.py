"""Every sub-package ships: pyproject lists packages by hand (resources are mapped in)."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import pop3gui

ROOT = Path(__file__).parents[1]


def test_every_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"pop3gui"} | {m.name for m in pkgutil.walk_packages(pop3gui.__path__, "pop3gui.") if m.ispkg}
    assert found - listed == set(), "add these to [tool.setuptools] packages"
