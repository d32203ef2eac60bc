"""The POP3 client: one session with a POP3 server, and how its replies are read.

Each module imports only the ones listed before it:

* ``replies``: what a server line means, without any I/O;
* ``stream``: the connection's bytes, commands out, bounded lines and multi-line answers in, all timed;
* ``transport``: opening the connection (TCP, TLS, STLS) and the guard that keeps passwords off plaintext;
* ``login``: SASL PLAIN, USER/PASS, APOP, and CAPA;
* ``client``: ``Pop3Client``, the session's commands (LIST, UIDL, RETR, TOP, DELE, QUIT).
"""
