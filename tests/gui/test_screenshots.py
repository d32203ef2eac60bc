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
