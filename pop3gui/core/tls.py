"""The TLS context for a connection to a mail server: one rule for POP3 and SMTP.

Certificates are checked against the system's authorities, or against the one
CA file an admin names for a server with a private certificate.  Turning the
check off is possible (``verify_tls = false``) and always reported as a
warning event by the engine.
"""

from __future__ import annotations

import ssl

from pop3gui.core.errors import TlsSetupError


def client_context(*, verify: bool = True, ca_file: str = "") -> ssl.SSLContext:
    """A client context that checks the server's certificate unless *verify* is False.

    Raises :class:`TlsSetupError`, naming the file, when *ca_file* cannot be
    read or holds no certificate: trusting anything else instead would hide
    the admin's mistake until the server's certificate changes.
    """
    try:
        ctx = ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TlsSetupError(
            f"cannot use the CA file {ca_file}: {reason}",
            cause="The ca_file setting names a file that does not exist, cannot be read, or holds no "
            "PEM certificate.",
            fix="Point ca_file to the CA certificate (PEM) of the server's private certificate, or empty it "
            "to use the system's authorities.",
        ) from exc
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
