"""Denylist entries, the request facts they are matched against, and the match explanation.

Entries are normalised when created (CIDRs to their network form, header names and
user-agent fragments to lower case) so that "the same" entry added twice is one entry,
and so that removal by the spelling shown in a listing always works.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

EntryKind = Literal["ip", "path_prefix", "user_agent", "header"]
ENTRY_KINDS: tuple[EntryKind, ...] = ("ip", "path_prefix", "user_agent", "header")


class DenylistError(ValueError):
    """An entry that cannot be added: the message says which value and why."""


@dataclass(frozen=True, slots=True)
class DenyEntry:
    """One denied value. ``expires_at`` is wall-clock epoch seconds, or None for permanent.

    ``value`` is the normalised spelling: ``"10.0.0.0/8"``, ``"/wp-admin"``, ``"sqlmap"``
    or, for a header entry, the exact header value with ``header`` naming the header.
    """

    kind: EntryKind
    value: str
    header: str = ""
    reason: str = ""
    created_at: float = 0.0
    expires_at: float | None = None

    @property
    def key(self) -> tuple[EntryKind, str, str]:
        """Identity: adding an entry with the same key replaces the old one."""
        return (self.kind, self.header, self.value)

    def expired(self, now: float) -> bool:
        """True once ``now`` (epoch seconds) reaches the expiry."""
        return self.expires_at is not None and now >= self.expires_at

    def remaining_ttl(self, now: float) -> float | None:
        """Seconds left before expiry (never negative), or None for a permanent entry."""
        return None if self.expires_at is None else max(0.0, self.expires_at - now)

    def describe(self) -> str:
        """How a person reads this entry: ``ip 10.0.0.0/8`` or ``header x-api-key=abc``."""
        if self.kind == "header":
            return f"header {self.header}={self.value}"
        return f"{self.kind} {self.value}"


@dataclass(frozen=True, slots=True)
class DenyRequest:
    """What the denylist looks at. Header names must be lower-case.

    ``path`` is matched as given: the proxy passes the normalised path (percent-decoding,
    dot-segment removal), so ``/a/../admin`` cannot slip past a ``/admin`` prefix.
    """

    client_ip: str
    path: str
    user_agent: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DenyMatch:
    """The entry that matched and the request value that matched it."""

    entry: DenyEntry
    field: str
    matched: str

    @property
    def explanation(self) -> str:
        """One line for logs and audit records, e.g. ``client_ip 10.1.2.3 in ip 10.0.0.0/8``."""
        why = f" ({self.entry.reason})" if self.entry.reason else ""
        return f"{self.field} {self.matched!r} matched {self.entry.describe()}{why}"


def normalise_entry(
    kind: str,
    value: str,
    *,
    header: str = "",
    reason: str = "",
    created_at: float = 0.0,
    expires_at: float | None = None,
) -> DenyEntry:
    """Validate and normalise one entry; raises `DenylistError` naming the bad value."""
    if kind == "ip":
        try:
            network = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise DenylistError(
                f"ip entry {value!r} is not an IP address or CIDR (e.g. 203.0.113.7, "
                "10.0.0.0/8, 2001:db8::/32)"
            ) from None
        return DenyEntry("ip", str(network), "", reason, created_at, expires_at)
    if kind == "path_prefix":
        if not value.startswith("/"):
            raise DenylistError(f"path_prefix entry {value!r} must start with '/'")
        return DenyEntry("path_prefix", value, "", reason, created_at, expires_at)
    if kind == "user_agent":
        fragment = value.strip().lower()
        if not fragment:
            raise DenylistError("user_agent entry must not be empty (it would match everyone)")
        return DenyEntry("user_agent", fragment, "", reason, created_at, expires_at)
    if kind == "header":
        name = header.strip().lower()
        if not name:
            raise DenylistError(f"header entry {value!r} needs the header name")
        return DenyEntry("header", value, name, reason, created_at, expires_at)
    raise DenylistError(f"unknown entry kind {kind!r}; use one of {', '.join(ENTRY_KINDS)}")
