"""A stand-in for the user's web browser: ``python -m tests.support.browser URL``.

``pop3gui auth login`` opens the sign-in page with Python's webbrowser module,
which runs the command in $BROWSER; pointing it here lets a test sign in the
way a user does: the page is fetched and its redirect followed back to the
loopback port the command listens on.
"""

from __future__ import annotations

import sys
import urllib.request


def main(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as page:  # follows the provider's 302 to the loopback port
        page.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
