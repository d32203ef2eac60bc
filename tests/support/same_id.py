"""Messages that share one Message-ID, as real mail has them.

``DISTINCT`` are five different messages with one Message-ID, one From, Date,
Subject and (mostly) one body, differing the way real corpora do: MIME headers
present or not, a Content-Type that says ``text`` instead of ``text/plain``, extra
Cc lines, a parameter on a folded Content-Type line, a body one line longer.
``copies_of`` gives the same message as different mailboxes hand it out: other
trace and envelope headers, scanner verdicts, mailbox flags, line endings, folding.
"""

from __future__ import annotations

SHARED_ID = "<20011004.61304.110929@mailer.fabrikam.example>"

_COMMON = (
    "Message-ID: " + SHARED_ID + "\n"
    "From: john@fabrikam.example (John X. Doe)\n"
    "To: bob@contoso.com\n"
)
_TAIL = (
    "Subject: This is a test message\n"
    "Date: Fri, 4 May 2001 14:05:44 -0400\n"
)
_BODY = "\nHi,\n\nDo you like this message?\n\n-Me\n"
_MIME = "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n"

DISTINCT: dict[str, str] = {
    "plain": _COMMON + _TAIL + _BODY,
    "mime": _MIME + _COMMON + _TAIL + _BODY,
    "content-type-text": _MIME.replace("text/plain;", "text;") + _COMMON + _TAIL + _BODY,
    "more-cc": _MIME + _COMMON + "Cc: carol@contoso.com\nCC: dave@contoso.com\n" + _TAIL + _BODY,
    "folded-parameter": _MIME.replace("us-ascii\n", "us-ascii;\n\tformat=flowed\n") + _COMMON + _TAIL + _BODY,
    "longer-body": _MIME + _COMMON + _TAIL + _BODY + "P.S. one more line\n",
}


def copies_of(text: str) -> list[bytes]:
    """The same message as several mailboxes would serve it (CRLF, as POP3 does)."""
    crlf = text.replace("\n", "\r\n")
    head, _, body = crlf.partition("\r\n\r\n")
    return [
        crlf.encode(),
        ("Return-Path: <john@fabrikam.example>\r\nDelivered-To: bob@contoso.com\r\n"
         "Received: from mx1.isp.example by pop.isp.example; Fri, 4 May 2001 14:06:00 -0400\r\n" + crlf).encode(),
        ("Received: from relay.isp.example\r\n\tby mail.other-isp.example; Fri, 4 May 2001 14:07:00 -0400\r\n"
         "X-Original-To: catch-all@isp.example\r\nX-Spam-Status: No, score=0.1\r\nX-UIDL: 1234\r\n"
         "Status: RO\r\nAuthentication-Results: mx.other-isp.example; spf=pass\r\n" + crlf).encode(),
        # A server that refolds a header and stores LF line endings, with a trailing blank line.
        (head.replace("Subject: This is", "Subject: This\r\n  is") + "\r\n\r\n" + body + "\r\n")
        .replace("\r\n", "\n").encode(),
    ]
