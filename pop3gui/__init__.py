"""pop3gui: a POP3 connector that delivers ISP mailboxes to the office mail server."""

__version__ = "0.1.0"
