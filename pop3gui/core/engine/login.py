"""How an account logs in to its POP3 or IMAP server: password, APOP (POP3), or an OAuth2 access token.

The secret is fetched while the connection is set up (the keyring, or the
sign-in service, can be slower than a nearby POP3 server).  A refused access
token is renewed once and tried again on the same connection: a token may be
revoked or expire early, and a renewal shows whether the sign-in still holds.
"""

from __future__ import annotations

import asyncio

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.errors import MailboxConnectionError, MailboxTokenRefused
from pop3gui.core.imap.client import ImapClient
from pop3gui.core.oauth.endpoints import mailbox_purpose
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.oauth.store import login_command, sign_in_key
from pop3gui.core.pop3.client import Pop3Client
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.threads import in_lookup_thread


class AccountLogin:
    """The login of one account for one session; start it early, use it once connected."""

    def __init__(self, account: AccountConfig, config: Config, credentials: Credentials, sign_ins: SignIns) -> None:
        self.account = account
        self._sign_ins = sign_ins
        self._key = sign_in_key(account.name)
        if account.auth == "oauth2":
            self._provider = config.oauth_provider(account.oauth_provider)
            self._purpose = mailbox_purpose(account.protocol)
            self._secret = asyncio.ensure_future(sign_ins.access_token(self._key, self._provider, self._purpose))
        else:
            self._secret = asyncio.ensure_future(in_lookup_thread(credentials.pop3_password, account.name))

    async def log_in(self, client: Pop3Client | ImapClient) -> None:
        account = self.account
        secret = await self._secret
        if account.auth == "apop" and isinstance(client, Pop3Client):
            await client.apop(account.username, secret)
        elif account.auth != "oauth2":
            await client.login(account.username, secret)
        else:
            try:
                await client.login_oauth(account.username, secret, mechanism=account.sasl)
            except MailboxTokenRefused as refused:
                renewed = await self._sign_ins.access_token(self._key, self._provider, self._purpose, renew=True)
                try:
                    await client.login_oauth(account.username, renewed, mechanism=account.sasl)
                except MailboxConnectionError:
                    # The server hung up after the refusal: the refusal is the news; the renewed token is
                    # kept and tried at the next cycle.
                    raise refused from None
                except MailboxTokenRefused as exc:
                    permission = "IMAP" if account.protocol == "imap" else "POP"
                    exc.cause = (f"{exc.cause} A freshly renewed token was refused too, so the sign-in itself "
                                 "lacks access to this mailbox.").strip()
                    exc.fix = (f"Check that {account.username} is the mailbox the signed-in user may open (for a "
                               f"shared mailbox: FullAccess) and that the app has the {permission} permission; then "
                               f"sign in again: {login_command(self._key)}.")
                    raise

    def close(self) -> None:
        """Stop a password lookup still running; a token refresh is left to finish (and store its rotation).

        A failed lookup that nobody awaited is not an error of its own.
        """
        if self.account.auth != "oauth2" and not self._secret.done():
            self._secret.cancel()
        elif not self._secret.done():
            self._secret.add_done_callback(lambda done: done.cancelled() or done.exception())
        elif not self._secret.cancelled():
            self._secret.exception()
