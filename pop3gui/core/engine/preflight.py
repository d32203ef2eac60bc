"""``pop3gui check``: find every failure before any mail flows.

It validates what the config alone can tell (the KB's failure: a target in a
domain no recipient policy covers), then asks the real servers: each POP3
account logs in (STAT, CAPA, UIDL), and each local target is probed on the SMTP
server with MAIL FROM + RCPT TO + RSET, so nothing is sent.  An IMAP account
logs in, lists the server's folders and opens each folder it fetches from
read-only (EXAMINE), so no flag changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from pop3gui.core.config.model import AccountConfig, Config
from pop3gui.core.config.policies import policy_warnings
from pop3gui.core.state.credentials import Credentials
from pop3gui.core.smtp.diagnose import (
    diagnose_recipient,
    domain_of,
    needs_postmaster_probe,
    refusal_label,
)
from pop3gui.core.errors import CredentialError, OAuthError, MailboxError, SmtpError, TlsSetupError
from pop3gui.core.smtp.submit import RecipientReply, SmtpSubmitter
from pop3gui.core.engine.connections import imap_client, open_local_server, pop3_client
from pop3gui.core.engine.findings import Finding, Report
from pop3gui.core.mail.addresses import normalize_address
from pop3gui.core.engine.login import AccountLogin
from pop3gui.core.health.preflight import alert_findings
from pop3gui.core.oauth.session import SignIns
from pop3gui.core.state.paths import default_paths


def local_targets(config: Config) -> list[tuple[str, str]]:
    """(where, address) of every configured local target, deduped by address."""
    seen: dict[str, str] = {}
    for acc in config.accounts:
        if acc.kind == "user" and acc.enabled:
            seen.setdefault(acc.deliver_to.lower(), f"account '{acc.name}' deliver_to")
    for i, rule in enumerate(config.rules):
        seen.setdefault(rule.deliver_to.lower(), f"routing_rule {i + 1} deliver_to")
    if config.delivery.undeliverable_to:
        seen.setdefault(config.delivery.undeliverable_to.lower(), "delivery.undeliverable_to")
    if config.alerts.mail_to and normalize_address(config.alerts.mail_to) is not None:
        seen.setdefault(config.alerts.mail_to.lower(), "alerts.mail_to")
    return [(where, address) for address, where in seen.items()]


async def check_account(account: AccountConfig, credentials: Credentials, *, config: Config | None = None,
                        sign_ins: SignIns | None = None) -> Finding:
    """Log in, STAT, CAPA and UIDL; send nothing, delete nothing.

    An OAuth2 account uses its stored sign-in (refreshed if due); *config*
    names its provider.  Without a sign-in the finding says how to sign in.
    """
    subject = f"account '{account.name}'"
    sign_ins = sign_ins or _sign_ins(credentials)
    try:
        login = AccountLogin(account, config or Config(accounts=(account,)), credentials, sign_ins)
    except KeyError:
        return Finding(False, subject, f"oauth_provider {account.oauth_provider!r} is not configured",
                       "The account signs in with OAuth2 through a provider the configuration does not have.",
                       "Add the [[oauth_provider]] this account names, or choose another one.")
    if account.protocol == "imap":
        try:
            return await _check_imap(account, login)
        finally:
            login.close()
    try:
        client = pop3_client(account)
        async with client:
            await login.log_in(client)
            count, size = await client.stat()
            uidl = await client.uidl()
            caps = ", ".join(sorted(client.capabilities)) or "none"
    except (CredentialError, MailboxError, TlsSetupError, OAuthError) as exc:
        return Finding(False, subject, str(exc), exc.cause, exc.fix)
    finally:
        login.close()
    how = " with APOP" if account.auth == "apop" else ""  # the one POP3 login whose method the server must offer
    text = f"logged in to {account.host}:{account.port}{how}; {count} message(s), {size} bytes; capabilities: {caps}"
    if uidl is None:
        return Finding(True, subject, text + "; no UIDL (messages are identified by a header hash)")
    return Finding(True, subject, text)


async def _check_imap(account: AccountConfig, login: AccountLogin) -> Finding:
    """Log in, LIST, and EXAMINE every folder the account fetches from; change nothing."""
    subject = f"account '{account.name}'"
    found: tuple[str, ...] = ()
    try:
        async with imap_client(account) as client:
            await login.log_in(client)
            listed = await client.list_folders()
            found = tuple(f.name for f in listed if f.selectable)
            counts = []
            for folder in account.folders:
                state = await client.select(folder, readonly=True)
                counts.append(f"{folder}: {state.exists} message(s)")
            uidplus, idle = client.has_uidplus, client.has_idle
    except (CredentialError, MailboxError, TlsSetupError, OAuthError) as exc:
        return Finding(False, subject, str(exc), exc.cause, exc.fix, folders=found)
    notes = [f"logged in to {account.host}:{account.port} (IMAP); " + "; ".join(counts)]
    if account.after_delivery == "move":
        exists = account.move_to.casefold() in {f.casefold() for f in found}
        notes.append(f"handled mail moves to {account.move_to}" + ("" if exists else " (created at the first move)"))
    if account.after_delivery != "keep" and not uidplus:
        notes.append("no UIDPLUS: handled mail is removed only when no other message of the folder is marked "
                     "deleted")
    if account.idle:
        notes.append("new mail is pushed (IDLE)" if idle else "no IDLE: polled on the schedule")
    return Finding(True, subject, "; ".join(notes), folders=found)


async def run_preflight(config: Config, credentials: Credentials | None = None, *,
                        sign_ins: SignIns | None = None) -> Report:
    credentials = credentials or Credentials()
    sign_ins = sign_ins or _sign_ins(credentials)
    report = Report()
    for warning in policy_warnings(config):
        report.add(Finding(False, warning.address, warning.text, "No recipient policy covers this domain.",
                           warning.fix))
    report.findings.extend(alert_findings(config))
    for account in config.accounts:
        if account.enabled:
            report.add(await check_account(account, credentials, config=config, sign_ins=sign_ins))
    report.findings.extend(await probe_targets(config, credentials, sign_ins=sign_ins))
    return report


def _sign_ins(credentials: Credentials) -> SignIns:
    """The sign-ins of this machine's installation, sharing the runner's refresh locks."""
    return SignIns(credentials, default_paths().sign_in_locks)


async def probe_targets(config: Config, credentials: Credentials, *, sign_ins: SignIns | None = None) -> list[Finding]:
    """Connect to the local server and RCPT-probe every local target (MAIL, RCPT, RSET)."""
    smtp_subject = f"smtp {config.smtp.host}:{config.smtp.port}"
    try:
        local = await open_local_server(config.smtp, credentials, sign_ins or _sign_ins(credentials), config)
        targets = local_targets(config)
        async with local.session() as smtp:
            probe = await smtp.probe("", [address for _, address in targets]) if targets else None
            postmaster = await _postmaster_answers(smtp, probe.replies if probe else ())
            announced = smtp.size_limit
    except (CredentialError, SmtpError, TlsSetupError, OAuthError) as exc:
        return [Finding(False, smtp_subject, str(exc), exc.cause, exc.fix)]
    findings = [Finding(True, smtp_subject, "connected" + (" and logged in" if config.smtp.username else ""))]
    findings.extend(_size_findings(config, smtp_subject, announced))
    for (where, _), reply in zip(targets, probe.replies if probe else ()):  # noqa: B905
        if reply.accepted:
            findings.append(Finding(True, reply.address, f"{where}: accepted by the local server ({reply.code})"))
        else:
            d = diagnose_recipient(reply.code, reply.message, reply.address,
                                   postmaster_accepted=postmaster.get(domain_of(reply.address).lower()))
            findings.append(Finding(False, reply.address,
                                    f"{where}: refused{refusal_label(d.kind)}: {reply.code} {reply.message}",
                                    d.cause, d.fix))
    return findings


async def _postmaster_answers(smtp: SmtpSubmitter, replies: Sequence[RecipientReply]) -> dict[str, bool]:
    """For each domain whose refusal does not say why: does the server take postmaster@domain?

    RFC 5321 requires every accepted domain to take postmaster, so a refused
    postmaster means the domain itself is not accepted (nothing is sent).
    """
    unclear = {domain_of(r.address).lower() for r in replies
               if not r.accepted and needs_postmaster_probe(r.code, r.message)}
    answers = {domain: await smtp.takes_postmaster(domain) for domain in sorted(unclear)}
    return {domain: taken for domain, taken in answers.items() if taken is not None}


def _size_findings(config: Config, subject: str, announced: int | None) -> list[Finding]:
    """Say so when the local server takes less than ``[delivery] max_message_kb``: the rest stays at the ISP."""
    ours = config.delivery.max_message_kb * 1024
    if not announced or (ours and announced >= ours):
        return []
    theirs = f"{announced / 1_048_576:.1f} MB"
    return [Finding(True, subject, f"the local server takes messages up to {theirs} (SIZE {announced}), less than "
                    f"[delivery] max_message_kb = {config.delivery.max_message_kb}: larger messages stay on the "
                    "mail server with one event (3003)", "",
                    "Raise the local server's limit (Postfix: message_size_limit) if such mail must arrive.")]
