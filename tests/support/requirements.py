"""Skip a test that needs a missing real server, or fail it under CI (``CI=true``)."""

from __future__ import annotations

import os
import shutil

import pytest

INSTALL_HINT = "run `bash scripts/test.sh` as root, or: apt-get install -y {packages}"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require(what: str, binaries: list[str], packages: str) -> None:
    """Skip (or, under CI, fail) unless every binary is on PATH and we are root."""
    missing = [b for b in binaries if shutil.which(b) is None]
    problem = ""
    if missing:
        problem = f"{what} is not available: {', '.join(missing)} not found on PATH; "
        problem += INSTALL_HINT.format(packages=packages)
    elif os.geteuid() != 0:
        problem = f"{what} needs root (it runs the mail as the `mail` user)"
    if problem:
        if in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)
