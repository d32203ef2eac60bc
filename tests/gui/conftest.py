"""GUI tests run offscreen under pytest-qt; every test here is marked ``gui``."""

from __future__ import annotations

import os

import pytest

from tests.support.qt_loop import collect_garbage_on_the_gui_thread, loop  # noqa: F401 (fixtures)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/gui/" in str(item.fspath):
            item.add_marker(pytest.mark.gui)
