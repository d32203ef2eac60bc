"""Tokens of a fetchmail run control file, cut as fetchmail's own flex lexer cuts them.

fetchmail (rcfile_l.l) takes the longest match at each position and, between
matches of equal length, the rule written first.  That explains its odd
corners, which an old ~/.fetchmailrc may rely on: a quoted string cannot hold
its own quote ("a\\"b" is read as the unquoted word ``"a"b"``), digits are a
number unless the word goes on, keywords are lower case (protocol names also
all upper case), and after ``user``, ``is``, ``to``, ``=`` and ``pass`` the next
word is a name even when it spells a keyword.  The backslash escapes (\\n \\t
\\b \\r, \\nnn decimal, \\0ooo octal, \\xhh hex, a backslash-newline joins lines)
apply to quoted and unquoted strings alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["KEYWORDS", "Token", "tokenize", "unescape"]


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is "STRING", "NUMBER", "MAP" or a keyword's name; ``line`` counts from 1."""

    kind: str
    text: str
    line: int
    value: str | int = ""


# Keyword rules in fetchmail 6.4's order; each whole word must match (fullmatch).
_KEYWORD_RULES: tuple[tuple[str, str], ...] = (
    ("set", "SET"), ("logfile", "LOGFILE"), ("idfile", "IDFILE"), ("pidfile", "PIDFILE"), ("daemon", "DAEMON"),
    ("syslog", "SYSLOG"), ("invisible", "INVISIBLE"), ("showdots", "SHOWDOTS"), ("postmaster", "POSTMASTER"),
    ("bouncemail", "BOUNCEMAIL"), ("spambounce", "SPAMBOUNCE"), ("softbounce", "SOFTBOUNCE"),
    ("warnings", "WARNINGS"), ("tracepolls", "TRACEPOLLS"),
    ("defaults", "DEFAULTS"), ("server", "POLL"), ("poll", "POLL"), ("skip", "SKIP"), ("via", "VIA"), ("aka", "AKA"),
    ("local(domains)?", "LOCALDOMAINS"), ("proto(col)?", "PROTOCOL"), ("service", "SERVICE"), ("port", "PORT"),
    ("interval", "INTERVAL"), ("preauth(enticate)?", "AUTHENTICATE"), ("auth(enticate)?", "AUTHENTICATE"),
    ("any", "AUTHTYPE"), ("gssapi", "AUTHTYPE"), ("kerberos(_v)?4", "AUTHTYPE"), ("kerberos(_v)?5", "AUTHTYPE"),
    ("kerberos", "AUTHTYPE"), ("ssh", "AUTHTYPE"), ("external", "AUTHTYPE"), ("(otp|opie)", "AUTHTYPE"),
    ("cram(-md5)?", "AUTHTYPE"), ("msn", "AUTHTYPE"), ("ntlm", "AUTHTYPE"),
    # fetchmail 6.5 adds these two; 6.4 reads them as plain words (a syntax error there).
    ("oauthbearer", "AUTHTYPE"), ("xoauth2", "AUTHTYPE"),
    ("timeout", "TIMEOUT"), ("envelope", "ENVELOPE"), ("qvirtual", "QVIRTUAL"), ("principal", "PRINCIPAL"),
    ("esmtpname", "ESMTPNAME"), ("esmtppassword", "ESMTPPASSWORD"), ("bad-header", "BADHEADER"),
    ("accept", "ACCEPT"), ("reject", "REJECT"),
    ("user(name)?", "USERNAME"), ("pass(word)?", "PASSWORD"), ("folder(s)?", "FOLDER"), ("smtp(host)?", "SMTPHOST"),
    ("fetchdomains", "FETCHDOMAINS"), ("smtpaddress", "SMTPADDRESS"), ("smtpname", "SMTPNAME"),
    ("antispam", "SPAMRESPONSE"), ("mda", "MDA"), ("bsmtp", "BSMTP"), ("lmtp", "LMTP"),
    ("pre(connect)?", "PRECONNECT"), ("post(connect)?", "POSTCONNECT"), ("interface", "INTERFACE"),
    ("monitor", "MONITOR"), ("plugin", "PLUGIN"), ("plugout", "PLUGOUT"), ("batchlimit", "BATCHLIMIT"),
    ("fetchlimit", "FETCHLIMIT"), ("fetchsizelimit", "FETCHSIZELIMIT"), ("fastuidl", "FASTUIDL"),
    ("expunge", "EXPUNGE"), ("properties", "PROPERTIES"),
    ("is", "IS"), ("here", "HERE"), ("there", "THERE"), ("to", "TO"),
    ("no", "NO"),
    ("keep", "KEEP"), ("flush", "FLUSH"), ("limitflush", "LIMITFLUSH"), ("fetchall", "FETCHALL"),
    ("rewrite", "REWRITE"), ("forcecr", "FORCECR"), ("stripcr", "STRIPCR"), ("pass8(bits)?", "PASS8BITS"),
    ("dropstatus", "DROPSTATUS"), ("dropdelivered", "DROPDELIVERED"), ("mimedec(ode)?", "MIMEDECODE"),
    ("idle", "IDLE"), ("dns", "DNS"), ("uidl", "UIDL"), ("ssl", "SSL"), ("sslkey", "SSLKEY"),
    ("sslcert", "SSLCERT"), ("sslproto", "SSLPROTO"), ("sslcertck", "SSLCERTCK"), ("sslcertfile", "SSLCERTFILE"),
    ("sslcertpath", "SSLCERTPATH"), ("sslcommonname", "SSLCOMMONNAME"), ("sslfingerprint", "SSLFINGERPRINT"),
    ("checkalias", "CHECKALIAS"), ("limit", "LIMIT"),
    ("(auto)|(AUTO)", "PROTO"), ("(pop2)|(POP2)", "PROTO"), ("(sdps)|(SDPS)", "PROTO"), ("(pop3)|(POP3)", "PROTO"),
    ("(imap)|(IMAP)", "PROTO"), ("(apop)|(APOP)", "PROTO"), ("(rpop)|(RPOP)", "PROTO"), ("(etrn)|(ETRN)", "PROTO"),
    ("(odmr)|(ODMR)", "PROTO"), ("(kpop)|(KPOP)", "PROTO"),
)
_COMPILED = tuple((re.compile(pattern), kind) for pattern, kind in _KEYWORD_RULES)
KEYWORDS = frozenset(kind for _, kind in _KEYWORD_RULES)
_NOISE = frozenset({"with", "and", "has", "wants", "options"})
# "nokeep" is read as "no" then "keep" (yyless(2) in the lexer).
_NO_PREFIXED = re.compile(r"no(bouncemail|uidl|checkalias|dns|envelope|keep|flush|limitflush|fetchall|rewrite|"
                          r"forcecr|stripcr|pass8(bits)?|dropstatus|dropdelivered|mimedec(ode)?|spambounce|idle)")
_NAME_STATE_AFTER = frozenset({"USERNAME", "IS", "TO", "MAP", "PASSWORD"})
_WORD = re.compile(r"[^=;:, \t\r\n]+")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_NUMBER = re.compile(r"-?[0-9]+")
_NEWLINE = re.compile(r"(#[^\n]*)?\\?\n")
_BLANK = re.compile(r"[ \t\r]+")


def unescape(text: str) -> str:
    """fetchmail's escapes(): \\n \\t \\b \\r, \\nnn decimal, \\0ooo octal, \\xhh hex, backslash-newline, else the char.

    A NUL ends the string, as it ends a C string.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "0123456789xX":
            i += 1
            value, count = 0, 0
            if text[i] in "xX":
                i += 1
                while i < n and text[i] in "0123456789abcdefABCDEF" and count < 2:
                    value, count, i = value * 16 + int(text[i], 16), count + 1, i + 1
            elif text[i] == "0":
                while i < n and text[i] in "01234567" and count < 3:
                    value, count, i = value * 8 + int(text[i]), count + 1, i + 1
            else:
                while i < n and text[i].isdigit() and count < 3:
                    value, count, i = value * 10 + int(text[i]), count + 1, i + 1
            ch = chr(value % 256)
        elif ch == "\\":
            i += 1
            if i >= n:
                break  # a backslash at the very end is dropped
            nxt = text[i]
            i += 1
            if nxt == "\n":
                continue
            ch = {"\\": "\\", "n": "\n", "t": "\t", "b": "\b", "r": "\r"}.get(nxt, nxt)
        else:
            i += 1
        if ch == "\0":
            break
        out.append(ch)
    return "".join(out)


def _keyword(word: str) -> str:
    for pattern, kind in _COMPILED:
        if pattern.fullmatch(word):
            return kind
    return ""


def tokenize(text: str) -> list[Token]:
    """The file's tokens, noise words and punctuation left out (the parser never sees them either)."""
    tokens: list[Token] = []
    pos, line, state = 0, 1, "INITIAL"
    n = len(text)
    while pos < n:
        if m := _BLANK.match(text, pos):
            pos = m.end()
            continue
        candidates: list[tuple[int, int, str]] = []  # (length, rule order, what) - longest wins, then the first rule
        if q := _QUOTED.match(text, pos):
            candidates.append((len(q.group()), 0, "QUOTED"))
        if nl := _NEWLINE.match(text, pos):
            candidates.append((len(nl.group()), 3, "NEWLINE"))
        word = _WORD.match(text, pos)
        if word:
            w = word.group()
            if state == "NAME":
                candidates.append((len(w), 1, "NAMEWORD"))
            else:
                candidates.append((len(w), 4, "WORD"))
                if num := _NUMBER.match(text, pos):
                    candidates.append((len(num.group()), 3, "NUMBER"))
                prefixed = _NO_PREFIXED.match(text, pos)
                if prefixed:
                    candidates.append((len(prefixed.group()), 2, "NOPREFIX"))
        ch = text[pos]
        if ch == "=":
            candidates.append((1, 2, "MAP"))
        elif ch in ";:,":
            candidates.append((1, 2, "PUNCT"))
        length, _, what = max(candidates, key=lambda c: (c[0], -c[1]))
        chunk = text[pos:pos + length]
        start_line = line
        pos += length
        line += chunk.count("\n")
        if what == "NEWLINE" or what == "PUNCT":
            continue
        if what == "QUOTED":
            tokens.append(Token("STRING", chunk, start_line, unescape(chunk[1:-1])))
            state = "INITIAL"
        elif what == "NAMEWORD":
            tokens.append(Token("STRING", chunk, start_line, unescape(chunk)))
            state = "INITIAL"
        elif what == "MAP":
            tokens.append(Token("MAP", chunk, start_line))
            state = "NAME"
        elif what == "NOPREFIX":
            tokens.append(Token("NO", "no", start_line))
            pos -= length - 2  # the rest is read again as its own word
            line = start_line
        elif what == "NUMBER":
            tokens.append(Token("NUMBER", chunk, start_line, int(chunk)))
        else:  # a word: a keyword, a noise word, or a string
            kind = _keyword(chunk)
            if state == "AUTH" and chunk == "password":
                kind = "AUTHTYPE"
            elif kind == "PASSWORD" and state == "AUTH":
                kind = ""  # pass(word)? is not a rule of the AUTH state
            if chunk in _NOISE:
                continue
            if not kind:
                tokens.append(Token("STRING", chunk, start_line, unescape(chunk)))
                continue
            tokens.append(Token(kind, chunk, start_line, chunk))
            if kind == "AUTHENTICATE":
                state = "AUTH"
            elif kind == "AUTHTYPE":
                state = "INITIAL"
            elif kind in _NAME_STATE_AFTER:
                state = "NAME"
    return tokens
