"""A keyring backend for benchmarks: passwords from a JSON file, no desktop needed.

Select it in the process that runs pop3gui with::

    PYTHONPATH=benchmarks PYTHON_KEYRING_BACKEND=bench_keyring.BenchKeyring

Passwords come from the JSON file named by ``BENCH_KEYRING_FILE``
(``{"service": {"username": "password"}}``), or, without that variable, from
the same JSON document in ``BENCH_KEYRING_JSON``. ``set_password`` and
``delete_password`` rewrite the file (mode 0600). For benchmarks and other
throw-away setups only: the passwords are stored in plain text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

FILE_ENV = "BENCH_KEYRING_FILE"
JSON_ENV = "BENCH_KEYRING_JSON"


class BenchKeyring(KeyringBackend):
    priority = 1  # only ever chosen explicitly, by PYTHON_KEYRING_BACKEND

    def _file(self) -> Path | None:
        name = os.environ.get(FILE_ENV)
        return Path(name) if name else None

    def _load(self) -> dict[str, dict[str, str]]:
        path = self._file()
        if path is not None:
            try:
                data: Any = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                data = {}
        else:
            data = json.loads(os.environ.get(JSON_ENV, "{}") or "{}")
        return {str(s): {str(u): str(p) for u, p in users.items()} for s, users in data.items()}

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        path = self._file()
        if path is None:
            os.environ[JSON_ENV] = json.dumps(data)
            return
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data.setdefault(service, {})[username] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if username not in data.get(service, {}):
            raise PasswordDeleteError(f"no password for {username!r} in {service!r}")
        del data[service][username]
        self._save(data)
