"""From the corpus files to a pop3gui configuration: what maps to what, and what is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from pop3gui.core.config.load import parse_config
from pop3gui.core.config.model import AccountConfig, Config, RecipientPolicy
from pop3gui.core.config.save import config_to_dict
from pop3gui.core.errors import ConfigError
from pop3gui.core.migrate import ImportResult, build_config, read_plans
from pop3gui.core.migrate.fetchmail_lexer import tokenize, unescape
from pop3gui.core.migrate.fetchmailrc import parse_fetchmailrc
from pop3gui.core.migrate.mapping import PLACEHOLDER_CLIENT_ID

CORPUS = Path(__file__).parent / "corpus"


def imported(kind: str, *names: str, existing: Config | None = None) -> ImportResult:
    result = build_config(read_plans(kind, [CORPUS / n for n in names], login="office"), existing)
    assert parse_config(config_to_dict(result.config)) == result.config  # what is saved reads back the same
    return result


def notes(result: ImportResult) -> str:
    return "\n".join(str(n) for n in result.notes)


def test_lexer_cuts_like_flex() -> None:
    kinds = [(t.kind, t.value) for t in tokenize('poll a user keep there pass "x y" nokeep is b=c here\n')]
    assert kinds == [("POLL", "poll"), ("STRING", "a"), ("USERNAME", "user"), ("STRING", "keep"),
                     ("THERE", "there"), ("PASSWORD", "pass"), ("STRING", "x y"), ("NO", ""), ("KEEP", "keep"),
                     ("IS", "is"), ("STRING", "b"), ("MAP", ""), ("STRING", "c"), ("HERE", "here")]
    assert unescape(r"\x41\101\0101\n\q") == "Ae\b1\nq"
    assert [t.line for t in tokenize('poll a\n# c\nuser "x\ny"\npass p')] == [1, 1, 3, 3, 5, 5]


def test_basic_file_defaults_and_local_names() -> None:
    result = imported("fetchmailrc", "basic.fetchmailrc")
    accounts = {a.name: a for a in result.added}
    assert set(accounts) == {"jsmith", "jones", "jsmith (mail.provider.net)", "jsmith (other.provider.net)"}
    smith = accounts["jsmith"]
    assert (smith.host, smith.port, smith.security, smith.verify_tls) == ("pop.provider.net", 3111, "starttls", True)
    assert smith.deliver_to == "smith@contoso.com" and not smith.leave_on_server
    assert accounts["jones"].leave_on_server
    # "is jws here" with no smtphost: fetchmail sends RCPT TO:<jws@localhost>
    assert accounts["jsmith (mail.provider.net)"].deliver_to == "jws@localhost"
    # no user at all: the defaults entry's remote user, delivered to the login running fetchmail
    other = accounts["jsmith (other.provider.net)"]
    assert other.username == "jsmith" and other.deliver_to == "office@localhost"
    assert result.config.schedule.interval_min == 10
    assert result.config.delivery.undeliverable_to == "postmaster@contoso.com"
    assert {(s.account, s.password) for s in result.secrets} == {
        ("jsmith", "secret1"), ("jones", "secret2"), ("jsmith (mail.provider.net)", "4u but u cannot krak this"),
        ("jsmith (other.provider.net)", "secret3")}
    text = notes(result)
    assert "basic.fetchmailrc:14: jsmith at mail.provider.net: mda '/bin/mail' is not mapped" in text
    assert result.added_policy is not None and result.added_policy.domains == ("contoso.com", "localhost")


def test_multidrop_becomes_global_mailboxes_with_policies() -> None:
    result = imported("fetchmailrc", "multidrop.fetchmailrc")
    first, second, third = result.added
    assert first.kind == "global" and first.envelope_headers == ("X-Original-To",)
    assert result.config.smtp.host == "mail.contoso.lan" and result.config.smtp.port == 2525
    assert second.envelope_headers == ("Delivered-To",) and third.envelope_headers == ()
    domains = set(result.config.local_domains())
    assert {"contoso.com", "contoso.local", "fabrikam.example", "northwind.example"} <= domains
    text = notes(result)
    assert "envelope 1 Delivered-To" in text and "hurkle=happy is not mapped" in text
    assert "contains = \"hurkle@\"" in text


def test_quoting_reaches_the_keyring_exactly() -> None:
    result = imported("fetchmailrc", "quoting.fetchmailrc")
    passwords = {s.account: s.password for s in result.secrets}
    assert passwords["u1"] == "plain space" and passwords["u2"] == '"a"b"' and passwords["u3"] == "'it''s'"
    assert passwords["u4"] == "tab\thereAe\b1" and passwords["u5"] == "longline" and passwords["u6"] == 'sq"dq'
    assert passwords["u7"] == "'a'b'" and passwords["123"] == "pw#notcomment" and passwords["u9"] == "with # hash"
    assert passwords["keep"] == "poll" and passwords["u12"] == "multi\nline"
    assert not any("password" in str(v) for v in config_to_dict(result.config)["account"][0])


def test_security_as_fetchmail_64() -> None:
    result = imported("fetchmailrc", "security.fetchmailrc")
    acc = {a.name: a for a in result.added}
    assert (acc["alice"].security, acc["alice"].port) == ("tls", 995)
    assert (acc["bob"].security, acc["bob"].port, acc["bob"].verify_tls) == ("starttls", 110, True)
    assert acc["carol"].security == "none"
    assert (acc["dave"].port, acc["dave"].verify_tls) == (1995, False)
    erin = acc["erin"]
    assert (erin.protocol, erin.port, erin.ca_file) == ("imap", 993, "/etc/ssl/private-ca.pem")
    assert acc["frank"].auth == "apop"
    text = notes(result)
    assert "sslfingerprint 'AB:CD:EF' is not mapped" in text and "sslcertpath" in text


def test_everything_lists_what_does_not_map() -> None:
    result = imported("fetchmailrc", "everything.fetchmailrc")
    office, sam, gina, carl = result.added
    assert office.host == "imap.real.example" and office.folders == ("INBOX", "Archive", "Sent Items")
    assert office.leave_on_server and office.timeout_s == 120 and office.deliver_to == "office@contoso.com"
    assert result.config.delivery.max_message_kb == 1024
    assert result.config.smtp.host == "smtp.contoso.lan" and result.config.smtp.port == 587
    assert result.config.smtp.username == "relayuser"
    assert any(s.smtp_username == "relayuser" and s.password == "relaypass" for s in result.secrets)
    assert not sam.enabled and not gina.enabled and carl.enabled
    text = notes(result)
    for keyword in ("plugin", "plugout", "preconnect", "postconnect", "mda", "bsmtp", "lmtp", "dropdelivered",
                    "kerberos", "gssapi", "principal", "interface", "monitor", "sslkey", "set logfile",
                    "set syslog", "no rewrite", "antispam", "is an LMTP socket", "2 hosts"):
        assert keyword in text, keyword
    assert all(n.line > 0 and n.file.endswith("everything.fetchmailrc") for n in result.notes)
    assert "everything.fetchmailrc:22: office at imap.real.example: mda" in text


def test_oauth_accounts_need_a_sign_in() -> None:
    result = imported("fetchmailrc", "oauth.fetchmailrc")
    office, me = result.added
    assert (office.auth, office.sasl, office.oauth_provider) == ("oauth2", "oauthbearer", "imported-microsoft")
    assert (me.auth, me.sasl, me.oauth_provider) == ("oauth2", "xoauth2", "imported-google")
    assert {p.client_id for p in result.config.oauth_providers} == {PLACEHOLDER_CLIENT_ID}
    assert result.secrets == ()  # access tokens are not passwords
    assert "pop3gui auth login office@contoso.com" in notes(result)


def test_getmail_variants() -> None:
    result = imported("getmailrc", "pop3-ssl.getmailrc", "imap-folders.getmailrc", "multidrop.getmailrc",
                      "xoauth2.getmailrc")
    alice, bob, catchall, me = result.added
    assert (alice.security, alice.port, alice.ca_file, alice.leave_on_server) == ("tls", 995, "/etc/ssl/isp-ca.pem",
                                                                                   False)
    assert alice.deliver_to == "office@localhost"
    assert (bob.protocol, bob.folders, bob.leave_on_server, bob.delete_after_days) == (
        "imap", ("INBOX", "Newsletters"), True, 14)
    assert catchall.kind == "global" and catchall.envelope_headers == ("delivered-to",)
    assert catchall.security == "none"
    assert me.auth == "oauth2" and me.folders == ("INBOX",)
    assert result.config.delivery.max_message_kb == 2048
    assert {(s.account, s.password) for s in result.secrets} == {("alice@isp.example", "gm%pass word"),
                                                                 ("catchall", "mdpass")}
    text = notes(result)
    assert "imap-folders.getmailrc:5: bob at imap.isp.example: password_command is not mapped" in text
    assert "pop3gui secret set" in text and "MDA_external" in text and "mailboxes = ALL" in text
    assert "move_on_delete" in text


def test_merge_renames_and_never_overwrites() -> None:
    existing = Config(accounts=(AccountConfig(name="jones", host="pop.other.example", username="x",
                                              deliver_to="x@contoso.com"),
                                AccountConfig(name="mine", host="pop.provider.net", username="jsmith",
                                              port=3111, deliver_to="me@contoso.com")),
                      policies=(RecipientPolicy("Default", ("contoso.com",)),))
    result = imported("fetchmailrc", "basic.fetchmailrc", existing=existing)
    names = [a.name for a in result.config.accounts]
    assert names[:2] == ["jones", "mine"] and result.config.accounts[:2] == existing.accounts
    assert "jones (pop.provider.net)" in names
    assert "is already account 'mine'" in notes(result)
    assert result.config.policies[0] == existing.policies[0]
    assert result.added_policy is not None and result.added_policy.domains == ("localhost",)
    assert result.config.smtp == existing.smtp


def test_syntax_errors_name_the_line_and_a_fix() -> None:
    with pytest.raises(ConfigError) as err:
        parse_fetchmailrc("poll a.example\n  user u\n  password\n", "rc")
    assert str(err.value).startswith("rc:3: syntax error at end of input: expected a value after `password`")
    assert "fetchmail --configdump" in err.value.fix
    with pytest.raises(ConfigError, match=r"rc:2: server option after user options at 'proto'"):
        parse_fetchmailrc("poll a.example user u pass p\n proto imap\n", "rc")


def test_getmail_without_retriever_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "rc"
    bad.write_text("[options]\ndelete = true\n")
    with pytest.raises(ConfigError, match="no \\[retriever\\] section"):
        read_plans("getmailrc", [bad])
    bad.write_text("[retriever\nx")
    with pytest.raises(ConfigError, match=f"{bad}:1: is not a valid getmail rc file"):
        read_plans("getmailrc", [bad])

