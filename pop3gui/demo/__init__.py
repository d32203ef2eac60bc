"""``pop3gui demo``: the whole connector working in a sandbox, with nothing installed but the package.

- :mod:`pop3gui.demo.pop3_server` - the fake ISP: an asyncio POP3 server with
  in-memory mailboxes, one of them signing in with OAuth2 (XOAUTH2,
  OAUTHBEARER);
- :mod:`pop3gui.demo.imap_server` - the fake ISP's IMAP side: an asyncio
  IMAP4rev1 server with in-memory folders (UIDPLUS, MOVE, IDLE), where the
  office's shared mailbox lives;
- :mod:`pop3gui.demo.sign_in` - the demo's own sign-in page: a tiny OAuth2
  authorization server (PKCE, refresh-token rotation) that issues the tokens
  the fake ISP accepts;
- :mod:`pop3gui.demo.exchange` - the fake office server: aiosmtpd accepting
  only its accepted domains (``550 5.7.1 Unable to relay`` otherwise), filing
  mail into Maildirs;
- :mod:`pop3gui.demo.keyring_backend` - an in-memory keyring for the sample
  passwords and the OAuth2 sign-in (the real keyring is neither needed nor
  touched);
- :mod:`pop3gui.demo.sandbox` - :class:`~pop3gui.demo.sandbox.Sandbox`, which
  ties them together with a sample configuration.

Like :mod:`pop3gui.core`, nothing here imports Qt.  The window part of the
demo is a hook the command line looks up by name::

    pop3gui.gui.demo_window.run_demo_window(sandbox, *, once: bool, tray: bool) -> int

It gets a :class:`~pop3gui.demo.sandbox.Sandbox` that is constructed but not
started; it runs ``await sandbox.start()`` on its own (qasync) loop (and
``await sandbox.sign_in()`` for the OAuth2 mailbox), opens the
properties window on ``sandbox.paths`` and ``sandbox.config`` (the sandbox's
in-memory keyring is the process's keyring while it runs), lets the saved
policies drive the fake Exchange with ``sandbox.accept_policy_domains(config)``,
``await sandbox.stop()`` before it returns, and returns the exit code.
The command line removes the sandbox folder afterwards (unless ``--keep``).
"""
