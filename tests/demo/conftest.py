"""The demo window's tests share the GUI tests' qasync loop fixtures."""

from tests.support.qt_loop import collect_garbage_on_the_gui_thread, loop  # noqa: F401 (fixtures)
