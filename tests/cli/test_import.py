"""`pop3gui import`: the configuration written, the report, the passwords in the keyring and only there."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest

from pop3gui.cli import main
from pop3gui.core.config.load import load_config
from pop3gui.core.state.credentials import Credentials
from pop3gui.demo.keyring_backend import MemoryKeyring
from tests.conftest import Pop3User
from tests.support.office import Office, make_message

CORPUS = Path(__file__).parents[1] / "core" / "migrate" / "corpus"
RC = """poll pop.isp.example proto pop3 user "alice" password "s3cret pw" is alice@contoso.com here ssl keep
poll imap.isp.example proto imap user bob password 'b0b' is bob@contoso.com here folder INBOX Lists
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POP3GUI_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def write_rc(tmp_path: Path, text: str = RC) -> Path:
    rc = tmp_path / "fetchmailrc"
    rc.write_text(text)
    return rc


def test_yes_stores_passwords_in_the_keyring_and_never_in_the_file(
        home: Path, tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["import", "fetchmailrc", str(write_rc(tmp_path)), "--yes"])
    out = capsys.readouterr().out
    assert code == 0, out
    config = load_config(home / "config.toml")
    assert [(a.name, a.host, a.protocol, a.leave_on_server) for a in config.accounts] == [
        ("alice", "pop.isp.example", "pop3", True), ("bob", "imap.isp.example", "imap", False)]
    assert config.account("bob").folders == ("INBOX", "Lists")
    assert Credentials().pop3_password("alice") == "s3cret pw" and Credentials().pop3_password("bob") == "b0b"
    text = (home / "config.toml").read_text()
    assert "s3cret" not in text and "b0b" not in text
    assert "Stored in the keyring" in out and "still holds these passwords" in out


def test_without_a_terminal_and_without_yes_no_password_is_stored(
        home: Path, tmp_path: Path, memory_keyring: MemoryKeyring, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(["import", "fetchmailrc", str(write_rc(tmp_path))])
    out = capsys.readouterr().out
    assert code == 1
    assert "NOT stored" in out and "pop3gui secret set alice" in out and "--yes" in out
    assert memory_keyring.get_password("pop3gui", "alice") is None
    assert (home / "config.toml").exists()


def test_a_terminal_asks_first(home: Path, tmp_path: Path, memory_keyring: MemoryKeyring,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty(""))
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "y")
    assert main(["import", "fetchmailrc", str(write_rc(tmp_path))]) == 0
    assert asked and "2 password(s)" in asked[0]
    assert Credentials().pop3_password("alice") == "s3cret pw"


def test_dry_run_writes_nothing(home: Path, tmp_path: Path, memory_keyring: MemoryKeyring,
                                capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["import", "fetchmailrc", str(CORPUS / "everything.fetchmailrc"), "--dry-run", "--yes"])
    out = capsys.readouterr().out
    assert code == 1  # the file has options that do not map
    document = tomllib.loads(out.split("Accounts:")[0])
    assert document["account"][0]["host"] == "imap.real.example" and "password" not in document["account"][0]
    assert "Not mapped" in out and "everything.fetchmailrc:22:" in out and "Dry run: nothing was written." in out
    assert not home.exists() and memory_keyring.get_password("pop3gui", "office") is None


def test_merging_twice_adds_nothing_and_keeps_the_file(home: Path, tmp_path: Path, memory_keyring: MemoryKeyring,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    rc = write_rc(tmp_path)
    assert main(["import", "fetchmailrc", str(rc), "--yes"]) == 0
    before = (home / "config.toml").read_bytes()
    assert main(["import", "fetchmailrc", str(rc), "--yes"]) == 0
    assert "Nothing to add" in capsys.readouterr().out
    assert (home / "config.toml").read_bytes() == before


def test_syntax_error_exits_2_with_file_line_and_fix(home: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rc = write_rc(tmp_path, "poll a.example user u password p\n  via b.example\n")
    assert main(["import", "fetchmailrc", str(rc)]) == 2
    err = capsys.readouterr().err
    assert f"{rc}:2: server option after user options at 'via'" in err and "Fix:" in err
    assert not home.exists()


def test_getmail_needs_a_file_and_imports_several(home: Path, memory_keyring: MemoryKeyring,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "getmailrc"]) == 2
    code = main(["import", "getmailrc", str(CORPUS / "pop3-ssl.getmailrc"), str(CORPUS / "multidrop.getmailrc"),
                 "--yes"])
    assert code == 1  # the [destination] never maps
    config = load_config(home / "config.toml")
    assert [a.name for a in config.accounts] == ["alice@isp.example", "catchall"]
    assert Credentials().pop3_password("alice@isp.example") == "gm%pass word"


@pytest.mark.servers
async def test_imported_fetchmailrc_delivers_a_cycle(office: Office, pop3_user: Pop3User, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    office.isp.deliver(pop3_user.name, make_message(to="alice@contoso.com", subject="after fetchmail"))
    rc = write_rc(tmp_path, f"""# the office's old fetchmail setup
set daemon 300
poll 127.0.0.1 proto pop3 port {office.isp.pop3s_port}
     user "{pop3_user.name}" there with password "{pop3_user.password}" is alice@contoso.com here
     ssl sslcertfile "{office.isp.ca_path}"
     smtphost {office.local.host}/{office.local.port}
""")
    assert main(["import", "fetchmailrc", str(rc), "--yes"]) == 0, capsys.readouterr().out
    office.config = load_config(office.paths.config_file)
    [account] = office.config.accounts
    assert account.security == "tls" and account.deliver_to == "alice@contoso.com"
    result = await office.run_cycle()
    [message] = office.local.wait_for_delivered(1)
    assert message["Subject"] == "after fetchmail"
    assert office.isp.messages(pop3_user.name) == []  # no `keep`: deleted once delivered
    assert result is not None
