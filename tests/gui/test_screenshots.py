"""``python -m pop3gui.gui.screenshots OUTDIR`` renders every page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from pop3gui.gui.screenshots import DIALOGS, PAGES, render


def test_every_page_and_the_account_editors_are_rendered(qapp: Any, tmp_path: Path) -> None:
    written = render(tmp_path)
    assert [p.stem for p in written] == [*PAGES, *DIALOGS]
    for path in written:
        image = QImage(str(path))
        assert image.width() > 400 and image.height() > 300, path
        assert len({image.pixel(x, y) for x in range(0, image.width(), 37) for y in range(0, image.height(), 37)}) > 5



def test_the_scheduling_page_shows_the_working_hours_grid(qapp: Any, tmp_path: Path) -> None:
    """Rendered by the command (one render per process: a second application in one process crashes)."""
    import subprocess
    import sys

    from PySide6.QtWidgets import QApplication

    subprocess.run([sys.executable, "-m", "pop3gui.gui.screenshots", str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    image = QImage(str(tmp_path / "scheduling.png"))
    highlight = QApplication.palette().highlight().color().rgb()
    chosen = sum(1 for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)
                 if image.pixel(x, y) == highlight)
    # Mon-Fri 7-19 and Sat 9-12: 63 of the 168 cells are painted, a good part of the page.
    assert chosen > 1500, chosen
