"""Shared fixtures: real Dovecot, Postfix and Secret Service on loopback.

Each server starts once per test session. When a server's programs are not
installed the tests that need it are skipped with the command that installs
them, except under CI (``CI=true``), where a missing server is a failure.
"""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from pop3gui.core.config.model import Config, DeliveryConfig, RecipientPolicy, SmtpConfig
from pop3gui.demo.keyring_backend import MemoryKeyring, install as install_keyring
from tests.servers.dovecot import DovecotServer
from tests.servers.postfix import PostfixServer
from tests.support.office import ACCEPTED_DOMAINS, ADMIN, MESSAGE_SIZE_LIMIT, UNKNOWN_USERS, Office
from tests.support.processes import stop as stop_process
from tests.support.requirements import in_ci, require

# More real servers (Courier, GNU Mailutils, Exim, OpenSMTPD) for the compatibility tests.
from tests.servers.pop3_fixtures import *  # noqa: F401,F403,E402
from tests.servers.smtp_fixtures import *  # noqa: F401,F403,E402

# CI explores the same examples every run, so a landing never hangs on a lucky draw;
# developers' runs explore new ones (and the database replays what failed before).
settings.register_profile("ci", derandomize=True, print_blob=True)
if in_ci():
    settings.load_profile("ci")




# -- Dovecot --------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A Dovecot POP3 server: ``pop3_port`` (plain + STLS), ``pop3s_port``, ``ca_path``."""
    require("Dovecot", ["dovecot", "openssl"], "dovecot-pop3d")
    server = DovecotServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Pop3User:
    name: str
    password: str
    maildir: Path


_user_numbers = itertools.count(1)


@pytest.fixture
def pop3_user(dovecot: DovecotServer) -> Pop3User:
    """A fresh mailbox with a unique name and password on the session's Dovecot."""
    name = f"user{next(_user_numbers)}-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    maildir = dovecot.add_user(name, password)
    return Pop3User(name=name, password=password, maildir=maildir)


# -- Postfix --------------------------------------------------------------


@pytest.fixture(scope="session")
def postfix() -> Iterator[PostfixServer]:
    """The office's mail server: accepts contoso.com and contoso.local on ``host:port``."""
    require("Postfix", ["postfix", "postconf", "postsuper", "script"], "postfix")
    server = PostfixServer(
        ACCEPTED_DOMAINS,
        unknown_users=UNKNOWN_USERS,
        message_size_limit=MESSAGE_SIZE_LIMIT,
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postfix_clean(postfix: PostfixServer) -> Iterator[PostfixServer]:
    """The session's Postfix with an empty queue and Maildir for this test."""
    postfix.clear()
    yield postfix
    postfix.clear()


# -- Secret Service (gnome-keyring on a private session bus) ---------------


@dataclass(frozen=True)
class SecretServiceSession:
    bus_address: str
    dbus_pid: int
    keyring_pid: int
    home: Path


def _bus_name_owned(env: dict[str, str], name: str) -> bool:
    proc = subprocess.run(
        [
            "dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus", "org.freedesktop.DBus.NameHasOwner", f"string:{name}",
        ],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=10,
    )  # fmt: skip
    return proc.returncode == 0 and "boolean true" in proc.stdout


def _reset_keyring_backend(*, secret_service: bool) -> None:
    """Make ``keyring`` detect its backend again (it caches its first choice)."""
    try:
        import keyring.core
    except ImportError:
        return
    if secret_service:
        keyring.core.init_backend()
    else:
        # keyring remembers SecretService as viable once it was: leave it out.
        keyring.core.init_backend(
            limit=lambda ring: type(ring).__module__ != "keyring.backends.SecretService"
        )


@pytest.fixture(scope="session")
def secret_service() -> Iterator[SecretServiceSession]:
    """A private D-Bus session bus with an unlocked gnome-keyring Secret Service.

    While it lives, ``DBUS_SESSION_BUS_ADDRESS`` points at the private bus and
    ``PYTHON_KEYRING_BACKEND`` is unset, so ``keyring`` picks SecretService.
    """
    require(
        "Secret Service",
        ["dbus-daemon", "dbus-send", "gnome-keyring-daemon"],
        "gnome-keyring dbus",
    )
    home = Path(tempfile.mkdtemp(prefix="pop3gui-keyring-"))
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    dbus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    keyring_daemon: subprocess.Popen[bytes] | None = None
    saved = {k: os.environ.get(k) for k in ("DBUS_SESSION_BUS_ADDRESS", "PYTHON_KEYRING_BACKEND")}
    try:
        assert dbus.stdout is not None
        address = dbus.stdout.readline().strip()
        dbus.stdout.close()
        if not address:
            pytest.fail(f"dbus-daemon printed no address (exit code {dbus.poll()})", pytrace=False)
        env = dict(os.environ)
        env.pop("PYTHON_KEYRING_BACKEND", None)
        env.update(
            DBUS_SESSION_BUS_ADDRESS=address,
            HOME=str(home),
            XDG_RUNTIME_DIR=str(runtime),
            XDG_DATA_HOME=str(home / "data"),
            XDG_CONFIG_HOME=str(home / "config"),
            XDG_CACHE_HOME=str(home / "cache"),
        )
        log_path = home / "gnome-keyring.log"
        with open(log_path, "wb") as log:
            keyring_daemon = subprocess.Popen(
                ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                env=env,
            )
        assert keyring_daemon.stdin is not None
        keyring_daemon.stdin.write(b"pop3gui-test-keyring")
        keyring_daemon.stdin.close()
        deadline = time.monotonic() + 15
        while not _bus_name_owned(env, "org.freedesktop.secrets"):
            if keyring_daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "gnome-keyring-daemon did not provide org.freedesktop.secrets:\n"
                    + log_path.read_text(errors="replace")[-2000:],
                    pytrace=False,
                )
            time.sleep(0.05)
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
        os.environ.pop("PYTHON_KEYRING_BACKEND", None)
        _reset_keyring_backend(secret_service=True)
        yield SecretServiceSession(
            bus_address=address, dbus_pid=dbus.pid, keyring_pid=keyring_daemon.pid, home=home
        )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if keyring_daemon is not None:
            stop_process(keyring_daemon)
        stop_process(dbus)
        _reset_keyring_backend(secret_service=False)
        shutil.rmtree(home, ignore_errors=True)
        # The keyring library leaves its D-Bus connections to the garbage collector: collect them now, with
        # their bus gone, rather than as a ResourceWarning in whichever later test the collector runs in.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


# -- An in-memory keyring, for tests of what is stored rather than of the keyring itself --


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """This process's keyring is a dict for the test (the real gnome-keyring is the ``secret_service``'s)."""
    backend = MemoryKeyring()
    restore = install_keyring(backend)
    try:
        yield backend
    finally:
        restore()


# -- An office: connector home + both servers + keyring ----------------------


@pytest.fixture
def office(tmp_path: Path, dovecot: DovecotServer, postfix_clean: PostfixServer,
           secret_service: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[Office]:
    home = tmp_path / f"home-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("POP3GUI_HOME", str(home))
    config = Config(
        smtp=SmtpConfig(host=postfix_clean.host, port=postfix_clean.port, timeout_s=20),
        delivery=DeliveryConfig(undeliverable_to=ADMIN),
        policies=(RecipientPolicy("Default Policy", ("contoso.com", "contoso.local"), "contoso.com"),),
    )
    yield Office(home=home, isp=dovecot, local=postfix_clean, config=config)
