"""Everything that is not drawing: config, POP3, recipients, SMTP, journal, worker.

This package must never import Qt; the headless runner and the tests use it on
its own, and ``tests/core/test_no_qt.py`` guards that.
"""
