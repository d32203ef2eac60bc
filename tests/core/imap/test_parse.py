"""Reading IMAP responses: statuses, untagged data, literals, FETCH items, numbers, sets, folder names."""

from __future__ import annotations

import pytest

from pop3gui.core.errors import MailboxProtocolError
from pop3gui.core.imap.parse import (
    LiteralBody,
    Response,
    decode_folder,
    encode_folder,
    fetch_items,
    number_of,
    parse_response,
    quoted,
    sequence_set,
    values,
)

WHERE = "imap.test:993"


def parse(*pieces: bytes, literals: tuple[bytes | LiteralBody, ...] = ()) -> Response:
    return parse_response(list(pieces), list(literals), WHERE)


def refused(*pieces: bytes, literals: tuple[bytes, ...] = ()) -> MailboxProtocolError:
    with pytest.raises(MailboxProtocolError) as info:
        parse(*pieces, literals=literals)
    err = info.value
    assert WHERE in err.message and err.cause and err.fix
    return err


# ------------------------------------------------------------------ statuses


def test_untagged_ok_with_a_response_code() -> None:
    r = parse(b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n")
    assert (r.tag, r.kind, r.code, r.code_args, r.text) == ("*", "OK", "UIDVALIDITY", "3857529045", "UIDs valid")
    assert r.is_status and r.number is None and r.data == []


@pytest.mark.parametrize(
    ("line", "tag", "kind", "code", "args", "text"),
    [
        (b"A142 OK [READ-WRITE] SELECT completed\r\n", "A142", "OK", "READ-WRITE", "", "SELECT completed"),
        (b"a1 no [nonexistent] gone\r\n", "a1", "NO", "NONEXISTENT", "", "gone"),
        (b"P0001 BAD\r\n", "P0001", "BAD", "", "", ""),
        (b"* OK [CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN] ready\r\n", "*", "OK", "CAPABILITY",
         "IMAP4rev1 IDLE AUTH=PLAIN", "ready"),
        (b"* PREAUTH IMAP4rev1 server logged in as Smith\n", "*", "PREAUTH", "", "",
         "IMAP4rev1 server logged in as Smith"),
        (b"* BYE Autologout; idle for too long\r\n", "*", "BYE", "", "", "Autologout; idle for too long"),
        (b"P1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", "P1", "NO", "AUTHENTICATIONFAILED", "",
         "Authentication failed."),
        (b"* NO [ALERT] caf\xc3\xa9 \x1b[31m\r\n", "*", "NO", "ALERT", "", "caf\u00e9 ?[31m"),  # made printable
    ],
)
def test_status_responses(line: bytes, tag: str, kind: str, code: str, args: str, text: str) -> None:
    r = parse(line)
    assert (r.tag, r.kind, r.code, r.code_args, r.text) == (tag, kind, code, args, text)


def test_status_text_is_bounded() -> None:
    r = parse(b"* OK " + b"x" * 5000 + b"\r\n")
    assert len(r.text) == 503 and r.text.endswith("...")


@pytest.mark.parametrize("line", [b"+\r\n", b"+ \r\n", b"+ idling\r\n", b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"])
def test_continuations(line: bytes) -> None:
    r = parse(line)
    assert (r.tag, r.kind) == ("+", "CONTINUE")
    assert r.text == line[2:].strip().decode()


# ------------------------------------------------------------- untagged data


def test_numbered_data() -> None:
    assert (parse(b"* 23 EXISTS\r\n").kind, parse(b"* 23 EXISTS\r\n").number) == ("EXISTS", 23)
    assert parse(b"* 3 expunge\r\n").kind == "EXPUNGE"
    assert parse(b"* 0 RECENT\r\n").number == 0


def test_fetch_with_nested_lists() -> None:
    r = parse(b"* 12 FETCH (UID 7 RFC822.SIZE 44827 FLAGS (\\Seen \\Deleted))\r\n")
    assert (r.kind, r.number) == ("FETCH", 12)
    assert r.data == [["UID", "7", "RFC822.SIZE", "44827", "FLAGS", ["\\Seen", "\\Deleted"]]]
    assert fetch_items(r, WHERE) == {"UID": "7", "RFC822.SIZE": "44827", "FLAGS": ["\\Seen", "\\Deleted"]}


def test_fetch_with_a_literal_body_keeps_every_byte() -> None:
    body = b"a\0b\r\n\xff.\r\n)"
    r = parse(b"* 1 FETCH (UID 7 BODY[] {10}\r\n", b")\r\n", literals=(body,))
    assert fetch_items(r, WHERE) == {"UID": "7", "BODY[]": body}


def test_a_body_that_went_to_its_sink_reads_as_empty() -> None:
    r = parse(b"* 1 FETCH (BODY[] {5}\r\n", b" UID 9)\r\n", literals=(LiteralBody(5),))
    assert fetch_items(r, WHERE) == {"BODY[]": b"", "UID": "9"}


def test_literal8_and_non_synchronising_literal_markers() -> None:
    r = parse(b"* 2 FETCH (BINARY[] ~{3}\r\n", b" UID 1)\r\n", literals=(b"\0\1\2",))
    assert r.data == [["BINARY[]", b"\0\1\2", "UID", "1"]]
    r = parse(b"* LIST () \"/\" {4+}\r\n", b"\r\n", literals=(b"a b)",))
    assert r.data == [[], "/", b"a b)"]


def test_sections_keep_their_spaces_and_parentheses() -> None:
    r = parse(b'* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)] "x" UID 3)\r\n')
    assert fetch_items(r, WHERE) == {"BODY[HEADER.FIELDS (FROM TO)]": "x", "UID": "3"}


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"* SEARCH\r\n", []),
        (b"* SEARCH 2 84 882\r\n", ["2", "84", "882"]),
        (b"* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI LOGINDISABLED\r\n",
         ["IMAP4rev1", "STARTTLS", "AUTH=GSSAPI", "LOGINDISABLED"]),
        (b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
         [["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]]),
        (b'* LIST (\\Noselect) "/" ""\r\n', [["\\Noselect"], "/", ""]),
        (b'* LIST (\\HasNoChildren) "." INBOX.Sent\r\n', [["\\HasNoChildren"], ".", "INBOX.Sent"]),
        (b'* LIST (\\HasNoChildren) NIL "a \\"b\\" \\\\c"\r\n', [["\\HasNoChildren"], None, 'a "b" \\c']),
        (b'* LIST () "/" "[Gmail]/Sent Mail"\r\n', [[], "/", "[Gmail]/Sent Mail"]),
        (b"* LIST () \"/\" Entw&APw-rfe\r\n", [[], "/", "Entw&APw-rfe"]),
        # RFC 3501, 6.3.8: a mailbox name is an astring, and "~" is an atom character.
        (b"* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n", [["\\Noselect"], "/", "~/Mail/foo"]),
        (b"* ENABLED\r\n", []),
        (b"* ID NIL\r\n", [None]),
    ],
)
def test_untagged_values(line: bytes, data: list[object]) -> None:
    assert parse(line).data == data


def test_values_of_pieces_and_literals_in_order() -> None:
    got = values([b"(a {2}\r\n", b" {0}\r\n", b" NIL) x\r\n"], [b"bc", b""], WHERE)
    assert got == [["a", b"bc", b"", None], "x"]


# --------------------------------------------------------------- not IMAP


@pytest.mark.parametrize(
    ("pieces", "literals", "what"),
    [
        ((b"\r\n",), (), "empty response"),
        ((b"*\r\n",), (), "without data"),
        ((b"P(1 OK done\r\n",), (), "invalid tag"),
        ((b"P1 FETCH (UID 1)\r\n",), (), "tagged response that is not OK"),
        ((b"* 12\r\n",), (), "without a name"),
        ((b"* 1 2\r\n",), (), "without a name"),
        ((b"* 99999999999 EXISTS\r\n",), (), "number out of range"),
        ((b"* OK [ALERT never closed\r\n",), (), "closing bracket"),
        ((b"* OK {3}\r\n", b"\r\n"), (b"abc",), "literal inside a status"),
        ((b"* 1 FETCH (UID 1\r\n",), (), "closing parenthesis"),
        ((b"* SEARCH 1)\r\n",), (), "unexpected character"),
        ((b'* LIST () "/" "open\r\n',), (), "closing quote"),
        ((b'* LIST () "/" "bad \\n escape"\r\n',), (), "bad escape"),
        ((b"* LIST () \"/\" a\x01b\r\n",), (), "control character"),
        ((b"* 1 FETCH (BODY[HEADER\r\n",), (), "unclosed ["),
        ((b"* SEARCH {3} 1\r\n",), (), "literal in the middle"),
        ((b"* X " + b"(" * 60 + b")" * 60 + b"\r\n",), (), "nested too deeply"),
        ((b"* 1 FETCH (UID {1}\r\n",), (), "closing parenthesis"),
        ((b"* 1 FETCH (UID 1)\r\n", b")\r\n"), (), "out of step"),
        ((b"* <> x\r\n",), (), "without a name"),
        ((b"* 3 OK [ALERT] x\r\n",), (), "status after a message number"),
        ((b"* 1 bye\r\n",), (), "status after a message number"),
    ],
)
def test_what_is_not_imap_is_a_protocol_error(pieces: tuple[bytes, ...], literals: tuple[bytes, ...],
                                               what: str) -> None:
    err = refused(*pieces, literals=literals)
    assert what in err.message
    assert len(err.message) < 400


@pytest.mark.parametrize(
    "data",
    [
        [],  # no list
        ["UID", "1"],  # not a list
        [["UID"]],  # an item without its value
        [[None, "1"]],  # a name that is not an atom
        [[["UID"], "1"]],
    ],
)
def test_fetch_items_refuse_what_is_not_an_item_list(data: list[object]) -> None:
    with pytest.raises(MailboxProtocolError, match="FETCH"):
        fetch_items(Response("*", "FETCH", number=1, data=data), WHERE)  # type: ignore[arg-type]


# ----------------------------------------------------------------- numbers


@pytest.mark.parametrize(("value", "number"), [("0", 0), ("7", 7), ("4294967295", 4294967295), ("007", 7)])
def test_numbers(value: str, number: int) -> None:
    assert number_of(value, WHERE, "UID") == number


@pytest.mark.parametrize(
    "value",
    ["", "-1", "+1", "1.0", " 1", "4294967296", "99999999999", "0x10", None, b"1", ["1"],
     "\u00b2", "\u0661\u0662", "\uff11", "\u2460"],  # superscript two, Arabic-Indic, fullwidth, circled digits
)
def test_what_is_not_a_number_is_a_protocol_error(value: object) -> None:
    with pytest.raises(MailboxProtocolError, match="UID is not a number") as info:
        number_of(value, WHERE, "UID")  # type: ignore[arg-type]
    assert info.value.cause and info.value.fix


# ------------------------------------------------------------ sequence sets


@pytest.mark.parametrize(
    ("uids", "text"),
    [
        ([1], "1"),
        ([1, 2, 3, 7], "1:3,7"),
        ([7, 3, 2, 1, 3], "1:3,7"),
        ([5, 9, 10, 11, 20, 21], "5,9:11,20:21"),
        ([4294967294, 4294967295], "4294967294:4294967295"),
        ([], ""),
        (list(range(1, 10_001)), "1:10000"),
        (list(range(1, 100, 2)), ",".join(str(n) for n in range(1, 100, 2))),
    ],
)
def test_sequence_sets(uids: list[int], text: str) -> None:
    assert sequence_set(uids) == text


# ----------------------------------------------------- strings and folders


def test_quoted_escapes_quotes_and_backslashes() -> None:
    assert quoted('a "b" \\c') == '"a \\"b\\" \\\\c"'
    assert quoted("") == '""'


# RFC 3501, 5.1.3 and known vectors (RFC 2152's "Hi Mom -<smiley>-" in its modified form).
MUTF7 = [
    ("INBOX", "INBOX"),
    ("Entw\u00fcrfe", "Entw&APw-rfe"),
    ("&", "&-"),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("\u65e5\u672c\u8a9e", "&ZeVnLIqe-"),
    ("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Hi Mom -\u263a-!", "Hi Mom -&Jjo--!"),
    ("Gesendete Objekte", "Gesendete Objekte"),
    ("\u00e4\u00f6\u00fc", "&AOQA9gD8-"),
    ("\U0001f600", "&2D3eAA-"),  # outside the BMP: a UTF-16 surrogate pair
    ("a\tb", "a&AAk-b"),  # a control character is not printable ASCII
    ("\u0444\u0430\u0439\u043b&", "&BEQEMAQ5BDs-&-"),
]


@pytest.mark.parametrize(("text", "wire"), MUTF7)
def test_modified_utf7_known_vectors(text: str, wire: str) -> None:
    assert encode_folder(text) == wire
    assert decode_folder(wire) == text


@pytest.mark.parametrize("wire", ["&", "&Jjo", "a&-", "&U,BTFw", "&?-", "&AAA-", "&A-", "x&Zm9v-"])
def test_modified_utf7_decoding_keeps_what_it_cannot_read(wire: str) -> None:
    got = decode_folder(wire)
    assert isinstance(got, str) and got
    if "-" not in wire:
        assert got == wire
    assert decode_folder("&?-") == "&?-"  # not base64: kept as it came
    assert decode_folder("&A-") == "&A-"  # too short for one UTF-16 unit
