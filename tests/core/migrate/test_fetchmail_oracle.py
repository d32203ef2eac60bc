"""fetchmail itself is the judge: our parse of each corpus file agrees with `fetchmail --configdump`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pop3gui.core.errors import ConfigError
from pop3gui.core.migrate.fetchmailrc import RcServer, RcUser, read_fetchmailrc
from tests.support.requirements import in_ci

CORPUS = Path(__file__).parent / "corpus"
# fetchmail 6.4 has no OAuth2; that file is fetchmail 6.5 syntax and has its own tests.
ORACLE_FILES = sorted(p for p in CORPUS.glob("*.fetchmailrc") if p.name != "oauth.fetchmailrc")
BAD_FILES = sorted((CORPUS / "bad").glob("*.fetchmailrc"))


def _fetchmail() -> str:
    path = shutil.which("fetchmail")
    if path is None:
        if in_ci():
            pytest.fail("CI=true: fetchmail is not installed (scripts/test.sh installs it)", pytrace=False)
        pytest.skip("fetchmail is not installed: apt-get install -y fetchmail")
    return path


def _dump(rc: Path, tmp_path: Path) -> tuple[int, dict[str, Any] | None, str]:
    """fetchmail's own reading of *rc* (a private copy: fetchmail refuses group-readable files)."""
    copy = tmp_path / rc.name
    copy.write_bytes(rc.read_bytes())
    copy.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    out = subprocess.run([_fetchmail(), "--configdump", "--nosyslog", "-f", str(copy)], capture_output=True,
                         text=True, env=env, timeout=60)
    if out.returncode != 0:
        return out.returncode, None, out.stderr
    namespace: dict[str, Any] = {}
    exec(out.stdout, namespace)  # fetchmail prints a Python initializer
    return 0, namespace["fetchmailrc"], out.stderr


def _login() -> str:
    import getpass

    return getpass.getuser()


def _ours(server: RcServer, user: RcUser) -> dict[str, Any]:
    """Our values, with fetchmail 6.4's defaults where the file says nothing, in configdump's terms."""
    names: list[Any] = [n if m is None else (n, m) for n, m in user.get("localnames", [])]
    if not names:
        names = [_login()]
    if user.get("wildcard"):
        names.append("*")
    protocol = server.get("protocol", "AUTO")
    return {
        "pollname": server.name, "active": not server.skip, "via": server.get("via"), "protocol": protocol if protocol != "AUTO" else "auto",
        "service": server.get("service"), "auth": server.get("auth", "any"),
        "localdomains": server.get("localdomains", []),
        "envelope": server.get("envelope", "Received") if "envelope" in server.options else "Received",
        "envskip": server.get("envskip", 0), "timeout": server.get("timeout", 300),
        "remote": user.get("remote", _login()), "password": user.get("password"), "localnames": names,
        "keep": user.get("keep", False), "fetchall": user.get("fetchall", False), "ssl": user.get("ssl", False),
        "sslproto": user.get("sslproto"), "sslcertck": user.get("sslcertck", True),
        "sslcertfile": user.get("sslcertfile"), "sslfingerprint": user.get("sslfingerprint"),
        "limit": user.get("limit", 0), "smtphunt": user.get("smtphunt", ["localhost"]),
        "smtpaddress": user.get("smtpaddress"), "mailboxes": user.get("mailboxes", []), "mda": user.get("mda"),
        "preconnect": user.get("preconnect"), "postconnect": user.get("postconnect"),
        "plugin": server.get("plugin"), "dropdelivered": user.get("dropdelivered", False),
    }


def _theirs(server: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
    keys = ("pollname", "active", "via", "protocol", "service", "auth", "localdomains", "envelope", "envskip",
            "timeout", "plugin")
    out = {k: server[k] for k in keys}
    out["active"] = bool(out["active"])
    for k in ("remote", "password", "localnames", "keep", "fetchall", "ssl", "sslproto", "sslcertck",
              "sslcertfile", "sslfingerprint", "limit", "smtphunt", "smtpaddress", "mailboxes", "mda",
              "preconnect", "postconnect", "dropdelivered"):
        value = user[k]
        out[k] = bool(value) if k in ("keep", "fetchall", "ssl", "sslcertck", "dropdelivered") else value
    out["localnames"] = [tuple(n) if isinstance(n, tuple) else n for n in out["localnames"]]
    return out


@pytest.mark.parametrize("rc", ORACLE_FILES, ids=lambda p: p.name)
def test_our_parse_agrees_with_fetchmail(rc: Path, tmp_path: Path) -> None:
    code, dump, stderr = _dump(rc, tmp_path)
    assert code == 0 and dump is not None, f"fetchmail refused a corpus file: {stderr}"
    ours = read_fetchmailrc(rc)
    theirs = [(s, u) for s in dump["servers"] for u in s["users"]]
    mine = [(s, u) for s in ours.servers for u in s.users]
    assert len(mine) == len(theirs), [s["pollname"] for s, _ in theirs]
    for (server, user), (their_server, their_user) in zip(mine, theirs):
        expected = _theirs(their_server, their_user)
        got = _ours(server, user)
        if expected["envelope"] is None or got["envelope"] is None:  # "no envelope": STRING_DISABLED
            assert got["envelope"] is None and expected["envelope"] in (None, "")
            got.pop("envelope"), expected.pop("envelope")
        if got["password"] is None and got["auth"] in ("gssapi", "kerberos_v5", "kerberos_v4", "kerberos", "ssh",
                                                       "external"):
            expected["password"] = None  # fetchmail puts the user name there as a dummy; no password was given
        assert got == expected, f"{rc.name}: {server.name} / {got['remote']}"
    if "daemon" in ours.settings:
        assert dump["poll_interval"] == ours.settings["daemon"].value


@pytest.mark.parametrize("rc", BAD_FILES, ids=lambda p: p.name)
def test_what_fetchmail_refuses_is_a_config_error_naming_the_line(rc: Path, tmp_path: Path) -> None:
    code, _, stderr = _dump(rc, tmp_path)
    assert code != 0, "fetchmail accepted a file of the bad corpus"
    with pytest.raises(ConfigError) as err:
        read_fetchmailrc(rc)
    text = str(err.value)
    assert text.startswith(f"{rc}:"), text
    assert err.value.fix and "expected" in text or "defaults" in text
    if f"{rc.name}:" in stderr or ":" in stderr:
        their_line = next((part for part in stderr.split(":") if part.strip().isdigit()), None)
        if their_line is not None:
            assert f"{rc}:{their_line.strip()}:" in text, (text, stderr)
