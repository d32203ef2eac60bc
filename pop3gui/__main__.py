"""``python -m pop3gui`` is the same as the ``pop3gui`` command."""

from pop3gui.cli import main

raise SystemExit(main())
