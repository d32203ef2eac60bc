"""The POP3 client: one session with a POP3 server, and how its replies are read."""
