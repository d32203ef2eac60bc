"""A sign-in in the keyring: split to fit Windows' limit, and never lost to a crash during a rotation."""

from __future__ import annotations

from collections.abc import Iterator

import keyring.core
import pytest

from pop3gui.core.errors import CredentialError, SignInNeeded
from pop3gui.core.oauth.store import PART_CHARS, SignIn, SignInStore, sign_in_key, smtp_sign_in_key
from pop3gui.core.state.credentials import OAUTH_SERVICE, Credentials
from pop3gui.demo.keyring_backend import install
from tests.support.keyrings import WINDOWS_SECRET_CHARS, DyingKeyring, Killed, LimitedKeyring

KEY = sign_in_key("m365")
OLD = SignIn("r1-" + "a" * 2500, identity="alice@contoso.com", scope="POP.AccessAsUser.All", signed_in_at=1.0,
             refreshed_at=1.0)
NEW = SignIn("r2-" + "b" * 3100, identity="alice@contoso.com", scope="POP.AccessAsUser.All", signed_in_at=1.0,
             refreshed_at=2.0)


@pytest.fixture
def backend() -> Iterator[LimitedKeyring]:
    ring = LimitedKeyring()
    restore = install(ring)
    try:
        yield ring
    finally:
        restore()


def test_a_sign_in_longer_than_windows_takes_is_stored_in_parts_and_read_back(backend: LimitedKeyring) -> None:
    store = SignInStore(Credentials())
    store.save(KEY, OLD)
    assert store.load(KEY) == OLD
    entries = {name: value for (service, name), value in backend._store.items() if service == OAUTH_SERVICE}
    assert len(entries) >= 4 and all(len(v) <= PART_CHARS < WINDOWS_SECRET_CHARS for v in entries.values())


def test_the_limit_is_real_for_one_secret(backend: LimitedKeyring) -> None:
    with pytest.raises(CredentialError):
        Credentials().set_oauth_entry("too-long", "x" * (WINDOWS_SECRET_CHARS + 1))


def test_a_new_generation_replaces_the_old_and_leaves_no_parts_behind(backend: LimitedKeyring) -> None:
    store = SignInStore(Credentials())
    store.save(KEY, OLD)
    store.save(KEY, NEW)
    assert store.load(KEY) == NEW
    names = [name for (service, name) in backend._store if service == OAUTH_SERVICE]
    assert all(name == KEY or name.startswith("part:2.") for name in names), names


def test_sign_ins_of_accounts_and_of_the_smtp_login_are_apart(backend: LimitedKeyring) -> None:
    store = SignInStore(Credentials())
    store.save(KEY, OLD)
    store.save(smtp_sign_in_key("relay@contoso.com"), NEW)
    assert store.load(KEY) == OLD and store.load(smtp_sign_in_key("relay@contoso.com")) == NEW
    assert store.delete(KEY) and store.load(KEY) is None and not store.delete(KEY)
    assert store.load(smtp_sign_in_key("relay@contoso.com")) == NEW


def test_a_crash_at_any_moment_of_a_rotation_leaves_a_usable_sign_in() -> None:
    """Kill the process at every keyring write or delete of a save: the old or the new record survives whole."""
    counting = DyingKeyring()
    restore = install(counting)
    try:
        SignInStore(Credentials()).save(KEY, OLD)
        first = counting.changes
        SignInStore(Credentials()).save(KEY, NEW)
        changes_of_a_rotation = counting.changes - first
    finally:
        restore()
    assert changes_of_a_rotation >= 8  # new parts, the header switch, old parts gone
    for die_at in range(changes_of_a_rotation + 1):
        ring = DyingKeyring()
        restore = install(ring)
        try:
            SignInStore(Credentials()).save(KEY, OLD)
            ring.die_at = ring.changes + die_at
            try:
                SignInStore(Credentials()).save(KEY, NEW)
            except Killed:
                pass
            ring.die_at = None
            survivor = SignInStore(Credentials()).load(KEY)
        finally:
            restore()
        assert survivor in (OLD, NEW), f"killed at change {die_at}: {survivor!r}"
        if die_at < changes_of_a_rotation // 2:
            assert survivor == OLD  # the switch comes after every new part is written


def test_a_damaged_sign_in_asks_for_a_new_one_naming_the_command(backend: LimitedKeyring) -> None:
    store = SignInStore(Credentials())
    store.save(KEY, OLD)
    del backend._store[(OAUTH_SERVICE, f"part:1.1:{KEY}")]
    with pytest.raises(SignInNeeded) as caught:
        store.load(KEY)
    assert "`pop3gui auth login m365`" in caught.value.fix and OLD.refresh_token not in str(caught.value)


def test_no_sign_in_is_none(backend: LimitedKeyring) -> None:
    assert SignInStore(Credentials()).load(KEY) is None
    assert keyring.core.get_keyring() is backend


def test_an_account_named_like_a_part_does_not_collide(backend: LimitedKeyring) -> None:
    store = SignInStore(Credentials())
    store.save(sign_in_key("a"), OLD)
    store.save(sign_in_key("a#1.0"), NEW)
    store.save(sign_in_key("part:1.0:account:a"), NEW)
    assert store.load(sign_in_key("a")) == OLD and store.load(sign_in_key("a#1.0")) == NEW


def test_a_sign_in_never_shows_its_refresh_token() -> None:
    assert OLD.refresh_token not in repr(OLD) and OLD.refresh_token not in str(OLD)
