"""The TLS context for a connection to a mail server: one rule for POP3 and SMTP.

Certificates are checked against the system's authorities, or against the one
CA file an admin names for a server with a private certificate.  Turning the
check off is possible (``verify_tls = false``) and always reported as a
warning event by the engine.
"""

from __future__ import annotations

import ssl


def client_context(*, verify: bool = True, ca_file: str = "") -> ssl.SSLContext:
    """A client context that checks the server's certificate unless *verify* is False."""
    ctx = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
