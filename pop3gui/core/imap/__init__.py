"""IMAP4rev1 (RFC 3501) as a mail source: reading responses, the byte stream, and the session."""
