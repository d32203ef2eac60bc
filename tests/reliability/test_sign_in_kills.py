"""A sign-in survives SIGKILL at any moment of a refresh: the real command line, gnome-keyring, a rotating provider.

Microsoft replaces the refresh token at every use and keeps the replaced one
working until it expires; the store writes the new one as a new generation
and switches to it last (core/oauth/store.py).  Killing ``pop3gui auth
status`` (which refreshes) at random moments, again and again, must leave a
sign-in that still works.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pop3gui.core.config.model import AccountConfig, OAuthProviderConfig
from pop3gui.core.oauth.store import SignInStore, sign_in_key
from pop3gui.core.state.credentials import Credentials
from tests.support.crash import cli_env
from tests.support.oauth_server import FakeAuthServer
from tests.support.office import Office

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]


def test_a_refresh_killed_at_any_moment_leaves_a_usable_sign_in(office: Office, oauth_server: FakeAuthServer,
                                                                record_property: object) -> None:
    idp = oauth_server
    idp.replaced_refresh_tokens_live = True  # as Microsoft's: a rotated-out refresh token still works
    provider = OAuthProviderConfig(name="lab", client_id=idp.client_id, kind="generic",
                                   authorize_url=idp.authorize_url, token_url=idp.token_url,
                                   scopes=("mail", "offline_access"))
    office.use(AccountConfig(name="m365", host="127.0.0.1", port=995, username=idp.user, kind="user",
                             deliver_to="alice@contoso.com", auth="oauth2", oauth_provider="lab"),
               oauth_providers=(provider,))
    env = dict(cli_env(office.home), BROWSER=f"{sys.executable} -m tests.support.browser %s",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    login = subprocess.run([sys.executable, "-m", "pop3gui", "auth", "login", "m365"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert login.returncode == 0, login.stdout + login.stderr

    started = time.monotonic()  # how long one status takes here: the kills land within it
    subprocess.run([sys.executable, "-m", "pop3gui", "auth", "status"], env=env, cwd=ROOT, capture_output=True,
                   timeout=120, check=True)
    whole = time.monotonic() - started
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    killed = finished = 0
    for _ in range(14):
        status = subprocess.Popen([sys.executable, "-m", "pop3gui", "auth", "status"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 0.95) * whole)  # after start-up, before the end: the refresh and its writes
        if status.poll() is None:
            status.kill()
            killed += 1
        else:
            finished += 1
        status.wait(30)

    final = subprocess.run([sys.executable, "-m", "pop3gui", "auth", "status", "--json"], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    record_property("sign_in_kills", f"seed {seed}: {killed} killed, {finished} finished")
    assert final.returncode == 0 and json.loads(final.stdout)["needs_sign_in"] is False, (seed, final.stdout)
    stored = SignInStore(Credentials()).load(sign_in_key("m365"))
    assert stored is not None and stored.refresh_token in idp.live_refresh_tokens()
    refreshes = sum(r["grant_type"] == "refresh_token" for r in idp.token_requests)
    assert killed >= 7 and refreshes >= 3, (seed, killed, refreshes, whole)
