"""Denylist agent core: IPs/CIDRs, path prefixes, user-agent fragments and header values,
with TTLs judged against an injected wall clock and an atomically saved JSON-lines file.

The agent wrapper calls `load_denylist(path, now=...)` at start, `Denylist.match(request,
now)` per request, `Denylist.add`/`remove` from its control commands followed by
`save_denylist`, and `purge_expired` at `next_expiry()`.
"""

from sentinel_agents.denylist.denylist import Denylist, ListedEntry
from sentinel_agents.denylist.model import (
    ENTRY_KINDS,
    DenyEntry,
    DenylistError,
    DenyMatch,
    DenyRequest,
    EntryKind,
    normalise_entry,
)
from sentinel_agents.denylist.store import (
    LoadReport,
    dump_entries,
    load_denylist,
    parse_entries,
    save_denylist,
)
from sentinel_agents.denylist.ttl import format_ttl, parse_ttl

__all__ = [
    "ENTRY_KINDS",
    "DenyEntry",
    "DenyMatch",
    "DenyRequest",
    "Denylist",
    "DenylistError",
    "EntryKind",
    "ListedEntry",
    "LoadReport",
    "dump_entries",
    "format_ttl",
    "load_denylist",
    "normalise_entry",
    "parse_entries",
    "parse_ttl",
    "save_denylist",
]
