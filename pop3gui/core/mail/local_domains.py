"""The local domains: the domains the recipient policies cover.

The local server accepts mail for these domains only, so whether a domain is
covered decides both who may come out of recipient resolution and which
configured addresses get a "no recipient policy covers it" warning.  Both ask
:class:`LocalDomains`, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pop3gui.core.errors import ConfigError
from pop3gui.core.mail.addresses import domain_of, normalize_address, normalize_domain

__all__ = ["LocalDomains"]


class LocalDomains:
    """The recipient policies' domains: the only ones the local server accepts.

    Compared in normalised form, so case and IDN spelling do not matter.  A
    domain is covered only by itself: "sales.contoso.com" needs its own entry
    next to "contoso.com", as on the local server.
    """

    def __init__(self, domains: Iterable[str], *, skip_invalid: bool = False) -> None:
        """Raises ConfigError for a name that is not a domain, unless *skip_invalid*.

        Skipping suits a configuration still being edited, whose policies
        may hold a half-typed domain.
        """
        ordered: dict[str, None] = {}
        for domain in domains:
            normal = normalize_domain(domain)
            if normal is None:
                if skip_invalid:
                    continue
                raise ConfigError(
                    f"{domain!r} is not a valid e-mail domain",
                    cause="A recipient policy names something that is not a domain name.",
                    fix="Write the domain as it appears after the @, e.g. contoso.com.",
                )
            ordered.setdefault(normal)
        self._ordered = tuple(ordered)
        self._domains = frozenset(ordered)

    def __contains__(self, domain: object) -> bool:
        """Whether a recipient policy covers this domain (in any spelling)."""
        return isinstance(domain, str) and normalize_domain(domain) in self._domains

    def is_local(self, address: str) -> bool:
        """Whether a bare addr-spec is in a local domain (a display name is not one)."""
        normal = normalize_address(address)
        return normal is not None and domain_of(normal) in self

    def __iter__(self) -> Iterator[str]:
        return iter(self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)

    def __repr__(self) -> str:
        return f"LocalDomains({list(self._ordered)!r})"
