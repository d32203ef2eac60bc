"""From the mailboxes another program fetched to a pop3gui configuration, merged into the current one.

Merging never overwrites: an imported mailbox whose name is taken by an
existing account gets a new name (the report says which), one that is
already configured (same host, user name and protocol) is left out, and the
existing [smtp], schedule and recipient policies stay as they are; only
domains no policy covers yet are added, as a new policy.  Passwords become
:class:`Secret` values for the keyring, never config keys.  The result is
validated as the file would be (config_to_dict + parse_config).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pop3gui.core.config.load import parse_config
from pop3gui.core.config.model import (
    AccountConfig, Config, OAuthProviderConfig, RecipientPolicy, ScheduleConfig, SmtpConfig,
    default_port,
)
from pop3gui.core.config.save import config_to_dict
from pop3gui.core.config.table import check_name
from pop3gui.core.mail.addresses import normalize_domain
from pop3gui.core.migrate.report import ImportPlan, Mailbox, Note, Secret

__all__ = ["ImportResult", "build_config", "PLACEHOLDER_CLIENT_ID"]

PLACEHOLDER_CLIENT_ID = "set-the-client-id-of-your-app-registration"

_MICROSOFT_HOSTS = ("office365.com", "outlook.com", "hotmail.com", "live.com")
_GOOGLE_HOSTS = ("gmail.com", "googlemail.com")


@dataclass(frozen=True)
class ImportResult:
    """The merged configuration, what was added, the passwords for the keyring, and every note."""

    config: Config
    added: tuple[AccountConfig, ...]
    secrets: tuple[Secret, ...]
    notes: tuple[Note, ...]
    added_policy: RecipientPolicy | None = None
    smtp_changed: bool = False

    @property
    def unmapped(self) -> tuple[Note, ...]:
        return tuple(n for n in self.notes if n.unmapped)


def build_config(plans: list[ImportPlan], existing: Config | None = None) -> ImportResult:
    """Merge every plan's mailboxes into *existing* (a fresh config when None); ConfigError if invalid."""
    base = existing if existing is not None else Config()
    notes: list[Note] = [n for plan in plans for n in plan.notes]
    secrets: list[Secret] = []
    accounts = list(base.accounts)
    providers = list(base.oauth_providers)
    added: list[AccountConfig] = []
    taken = {a.name.casefold() for a in accounts}
    known = {(a.host.lower(), a.username, a.protocol): a.name for a in accounts}
    domains: dict[str, None] = {}
    boxes = [box for plan in plans for box in plan.mailboxes]

    for box in boxes:
        key = (box.host.lower(), box.username, box.protocol)
        if key in known:
            notes.append(Note(box.file, box.line, f"{box.username} at {box.host} is already account "
                              f"{known[key]!r}; it was not imported again", "", unmapped=False))
            continue
        name = _free_name(box, taken)
        if name != box.username:
            notes.append(Note(box.file, box.line, f"{box.username} at {box.host} is imported as account {name!r} "
                              f"(the name {box.username!r} is taken or not valid)", "", unmapped=False))
        taken.add(name.casefold())
        auth, provider, enabled = box.auth, "", box.enabled
        if auth == "oauth2":
            provider, created = _provider(box, providers)
            if provider:
                if created is not None:
                    providers.append(created)
                    notes.append(Note(box.file, box.line, f"account {name!r} signs in with OAuth2 through the new "
                                      f"[[oauth_provider]] {provider!r}, whose client_id is a placeholder",
                                      "Register an app (docs/oauth.md), put its client id into that provider, then "
                                      f"sign in: `pop3gui auth login {name}`."))
                else:
                    notes.append(Note(box.file, box.line, f"account {name!r} needs an OAuth2 sign-in",
                                      f"Run `pop3gui auth login {name}`.", unmapped=False))
            else:
                auth, enabled = "password", False
                notes.append(Note(box.file, box.line, f"account {name!r}: OAuth2 at {box.host} needs a provider "
                                  "pop3gui cannot guess; imported disabled with a password login",
                                  "Add an [[oauth_provider]] (docs/oauth.md), set auth = \"oauth2\" and "
                                  f"oauth_provider on the account, then `pop3gui auth login {name}`."))
        account = AccountConfig(
            name=name, host=box.host, username=box.username, protocol=box.protocol,
            port=box.port or default_port(box.protocol, box.security), security=box.security,
            verify_tls=box.verify_tls, ca_file=box.ca_file, kind="user" if box.deliver_to else "global",
            deliver_to=box.deliver_to, envelope_headers=box.envelope_headers,
            leave_on_server=box.leave_on_server or box.delete_after_days > 0,
            delete_after_days=box.delete_after_days, enabled=enabled,
            timeout_s=box.timeout_s or AccountConfig.timeout_s, auth=auth, oauth_provider=provider, sasl=box.sasl,
            folders=box.folders if box.protocol == "imap" else ("INBOX",),
        )
        accounts.append(account)
        added.append(account)
        known[key] = name
        if box.password and auth != "oauth2":
            secrets.append(Secret(name, box.password, box.file, box.password_line))
        for domain in (*box.local_domains, box.deliver_to.rpartition("@")[2] if box.deliver_to else ""):
            if domain:
                domains.setdefault(domain)

    policies, added_policy = _policies(base, domains, boxes, notes)
    smtp, smtp_changed = _smtp(base, existing is not None, boxes, notes, secrets)
    delivery, schedule = base.delivery, base.schedule
    limits = [b.max_message_kb for b in boxes if b.max_message_kb > 0]
    if limits and min(limits) < delivery.max_message_kb:
        delivery = replace(delivery, max_message_kb=min(limits))
        first = next(b for b in boxes if b.max_message_kb == min(limits))
        notes.append(Note(first.file, first.line, f"[delivery] max_message_kb = {min(limits)} (the smallest "
                          "limit; pop3gui has one for all accounts)", "", unmapped=False))
    for plan in plans:
        if plan.undeliverable_to and not delivery.undeliverable_to:
            delivery = replace(delivery, undeliverable_to=plan.undeliverable_to)
        if plan.interval_min and existing is None:
            schedule = ScheduleConfig(interval_min=plan.interval_min, enabled=schedule.enabled, hours=schedule.hours)
    config = replace(base, accounts=tuple(accounts), policies=policies, smtp=smtp, delivery=delivery,
                     schedule=schedule, oauth_providers=tuple(providers))
    config = parse_config(config_to_dict(config), "<imported configuration>")
    return ImportResult(config=config, added=tuple(added), secrets=tuple(secrets), notes=tuple(notes),
                        added_policy=added_policy, smtp_changed=smtp_changed)


def _free_name(box: Mailbox, taken: set[str]) -> str:
    """The user name, or "user (host)", or with a number: unique (case-insensitively) and a valid name."""
    base = box.username if not check_name(box.username) else "imported"
    candidates = [base, f"{base} ({box.host})"[:100]]
    for candidate in candidates:
        if not check_name(candidate) and candidate.casefold() not in taken:
            return candidate
    n = 2
    while f"{candidates[1][:94]} {n}".casefold() in taken:
        n += 1
    return f"{candidates[1][:94]} {n}"


def _provider(box: Mailbox, providers: list[OAuthProviderConfig]) -> tuple[str, OAuthProviderConfig | None]:
    """The provider an OAuth2 account signs in through: an existing one of the right kind, or a new one."""
    host = box.host.lower()
    kind = ("microsoft" if any(host == h or host.endswith("." + h) for h in _MICROSOFT_HOSTS) else
            "google" if any(host == h or host.endswith("." + h) for h in _GOOGLE_HOSTS) else "")
    if not kind:
        return "", None
    for provider in providers:
        if provider.kind == kind:
            return provider.name, None
    name = f"imported-{kind}"
    return name, OAuthProviderConfig(name=name, client_id=PLACEHOLDER_CLIENT_ID, kind=kind)


def _policies(base: Config, domains: dict[str, None], boxes: list[Mailbox],
              notes: list[Note]) -> tuple[tuple[RecipientPolicy, ...], RecipientPolicy | None]:
    covered = set(base.local_domains())
    new: list[str] = []
    for domain in domains:
        ascii_form = normalize_domain(domain)
        if ascii_form is None:
            where = boxes[0] if boxes else None
            notes.append(Note(where.file if where else "", where.line if where else 0,
                              f"{domain!r} is not a domain name, so no recipient policy was made for it",
                              "Add your mail domains in Recipient Policies."))
            continue
        if ascii_form not in covered and ascii_form not in new:
            new.append(ascii_form)
    if not new:
        return base.policies, None
    names = {p.name for p in base.policies}
    name, n = "Imported", 2
    while name in names:
        name, n = f"Imported {n}", n + 1
    policy = RecipientPolicy(name=name, domains=tuple(new), primary=new[0])
    return (*base.policies, policy), policy


def _smtp(base: Config, merging: bool, boxes: list[Mailbox], notes: list[Note],
          secrets: list[Secret]) -> tuple[SmtpConfig, bool]:
    """[smtp] from the first mailbox that names a host; an existing file keeps its own."""
    hosts = [b for b in boxes if b.smtp_host]
    smtp, changed = base.smtp, False
    if hosts:
        first = hosts[0]
        wanted = (first.smtp_host, first.smtp_port or 25)
        if merging:
            if wanted != (base.smtp.host, base.smtp.port):
                notes.append(Note(first.file, first.line, f"the SMTP server {wanted[0]}:{wanted[1]} differs from "
                                  f"[smtp] ({base.smtp.host}:{base.smtp.port}), which was kept",
                                  "Change [smtp] if the imported program's server is the right one."))
        else:
            smtp, changed = replace(smtp, host=wanted[0], port=wanted[1]), True
        for other in hosts[1:]:
            if (other.smtp_host, other.smtp_port or 25) != wanted:
                notes.append(Note(other.file, other.line, f"SMTP server {other.smtp_host} was not used: pop3gui "
                                  f"delivers all mail to one server ({smtp.host})",
                                  "Let that server relay to the other if needed."))
    logins = [b for b in boxes if b.smtp_username]
    if logins and not merging:
        first = logins[0]
        smtp, changed = replace(smtp, username=first.smtp_username), True
        if first.smtp_password:
            secrets.append(Secret("", first.smtp_password, first.file, first.line, smtp_username=first.smtp_username))
    elif logins:
        notes.append(Note(logins[0].file, logins[0].line, f"esmtpname {logins[0].smtp_username!r} was not used: "
                          "[smtp] was kept", "Set [smtp] username and `pop3gui secret set --smtp` if needed."))
    return smtp, changed

