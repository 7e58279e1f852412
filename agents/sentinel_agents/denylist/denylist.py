"""The denylist: entries indexed for per-request lookup, with TTLs judged against a passed-in clock.

Pure: ``now`` (wall-clock epoch seconds, so expiries survive a restart through the saved
file) comes with every call. Expired entries never match; memory is given back by
`Denylist.purge_expired`, which a wrapper calls at `Denylist.next_expiry`.

Lookup cost does not grow with the number of entries of a kind:
- IPs and CIDRs: one dict per prefix length present, keyed by the network's integer, probed
  longest prefix first (at most 33 probes for IPv4, 129 for IPv6; in practice a handful);
- path prefixes: one dict probe per distinct prefix length present;
- user-agent fragments: one Aho-Corasick pass over the lower-cased user agent;
- header values: one dict probe per denied header name.
"""

from __future__ import annotations

import importlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sentinel_agents.denylist.model import DenyEntry, DenyMatch, DenyRequest, normalise_entry


def _load_ahocorasick() -> Any:
    """pyahocorasick if installed (imported by name: the C module ships no type stubs)."""
    try:
        return importlib.import_module("ahocorasick")
    except ImportError:  # pragma: no cover - exercised only where the wheel is missing
        return None


_AHOCORASICK = _load_ahocorasick()


@dataclass(frozen=True, slots=True)
class ListedEntry:
    """An entry as a listing shows it: with the TTL left at the time of listing."""

    entry: DenyEntry
    remaining_ttl: float | None


class _NetworkIndex:
    """Longest-prefix match over IPv4 and IPv6 networks without scanning entries."""

    def __init__(self) -> None:
        # (version, prefix length) -> {network int >> host bits: entry}
        self._tables: dict[tuple[int, int], dict[int, DenyEntry]] = {}
        self._lengths: dict[int, list[int]] = {4: [], 6: []}

    def put(self, entry: DenyEntry) -> None:
        network = ipaddress.ip_network(entry.value)
        shift = network.max_prefixlen - network.prefixlen
        table = self._tables.setdefault((network.version, network.prefixlen), {})
        table[int(network.network_address) >> shift] = entry
        lengths = self._lengths[network.version]
        if network.prefixlen not in lengths:
            lengths.append(network.prefixlen)
            lengths.sort(reverse=True)

    def drop(self, entry: DenyEntry) -> None:
        network = ipaddress.ip_network(entry.value)
        table_key = (network.version, network.prefixlen)
        table = self._tables.get(table_key, {})
        table.pop(int(network.network_address) >> (network.max_prefixlen - network.prefixlen), None)
        if not table and table_key in self._tables:
            del self._tables[table_key]
            self._lengths[network.version].remove(network.prefixlen)

    def find(self, address: str) -> Iterator[DenyEntry]:
        """Entries containing ``address``, most specific first; nothing for a non-IP."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return
        # An IPv4 client seen through a dual-stack socket (::ffff:a.b.c.d) is checked against
        # the IPv4 entries first, then against IPv6 ones as written.
        if ip.version == 6 and ip.ipv4_mapped is not None:
            yield from self._probe(ip.ipv4_mapped)
        yield from self._probe(ip)

    def _probe(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Iterator[DenyEntry]:
        as_int, bits = int(ip), ip.max_prefixlen
        for length in self._lengths[ip.version]:
            entry = self._tables[(ip.version, length)].get(as_int >> (bits - length))
            if entry is not None:
                yield entry


class _SubstringIndex:
    """Case-insensitive substring search; Aho-Corasick when available, rebuilt lazily."""

    def __init__(self) -> None:
        self._entries: dict[str, DenyEntry] = {}
        self._automaton: Any = None

    def put(self, entry: DenyEntry) -> None:
        self._entries[entry.value] = entry
        self._automaton = None

    def drop(self, entry: DenyEntry) -> None:
        if self._entries.pop(entry.value, None) is not None:
            self._automaton = None

    def find(self, text: str) -> Iterator[DenyEntry]:
        if not self._entries or not text:
            return
        haystack = text.lower()
        if _AHOCORASICK is None:
            # Without pyahocorasick: one `in` per fragment; fine for tens of fragments.
            for fragment, entry in list(self._entries.items()):
                if fragment in haystack:
                    yield entry
            return
        if self._automaton is None:
            automaton = _AHOCORASICK.Automaton()
            for fragment in self._entries:
                automaton.add_word(fragment, fragment)
            automaton.make_automaton()
            self._automaton = automaton
        for _end, fragment in self._automaton.iter(haystack):
            found = self._entries.get(fragment)
            if found is not None:
                yield found


class Denylist:
    """Denied IPs/CIDRs, path prefixes, user-agent fragments and header values."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], DenyEntry] = {}
        self._networks = _NetworkIndex()
        self._paths: dict[str, DenyEntry] = {}
        self._path_lengths: list[int] = []
        self._agents = _SubstringIndex()
        self._headers: dict[str, dict[str, DenyEntry]] = {}

    def __len__(self) -> int:
        """Entries held, including expired ones not yet purged."""
        return len(self._entries)

    def add(
        self,
        kind: str,
        value: str,
        *,
        now: float,
        ttl: float | None = None,
        reason: str = "",
        header: str = "",
    ) -> DenyEntry:
        """Add (or replace) an entry, expiring at ``now + ttl`` when ``ttl`` is given.

        Raises `DenylistError` for a value that cannot be an entry of ``kind``.
        """
        expires_at = None if ttl is None else now + ttl
        entry = normalise_entry(
            kind, value, header=header, reason=reason, created_at=now, expires_at=expires_at
        )
        self.put(entry)
        return entry

    def put(self, entry: DenyEntry) -> None:
        """Insert an already normalised entry (e.g. one read back from the saved file)."""
        old = self._entries.get(entry.key)
        if old is not None:
            self._unindex(old)
        self._entries[entry.key] = entry
        if entry.kind == "ip":
            self._networks.put(entry)
        elif entry.kind == "path_prefix":
            self._paths[entry.value] = entry
            if len(entry.value) not in self._path_lengths:
                self._path_lengths.append(len(entry.value))
                self._path_lengths.sort(reverse=True)
        elif entry.kind == "user_agent":
            self._agents.put(entry)
        else:
            self._headers.setdefault(entry.header, {})[entry.value] = entry

    def remove(self, kind: str, value: str, *, header: str = "") -> DenyEntry | None:
        """Remove the entry ``kind``/``value`` (any spelling that normalises the same)."""
        key = normalise_entry(kind, value, header=header).key
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._unindex(entry)
        return entry

    def match(self, request: DenyRequest, now: float) -> DenyMatch | None:
        """The first live entry matching ``request``, checked IP, path, header, user agent."""
        for entry in self._networks.find(request.client_ip):
            if self._live(entry, now):
                return DenyMatch(entry, "client_ip", request.client_ip)
        path = request.path
        for length in self._path_lengths:
            if len(path) >= length:
                by_path = self._paths.get(path[:length])
                if by_path is not None and self._live(by_path, now):
                    return DenyMatch(by_path, "path", path)
        for name, values in self._headers.items():
            value = request.headers.get(name)
            if value is not None:
                by_header = values.get(value)
                if by_header is not None and self._live(by_header, now):
                    return DenyMatch(by_header, f"header {name}", value)
        for entry in self._agents.find(request.user_agent):
            if self._live(entry, now):
                return DenyMatch(entry, "user_agent", request.user_agent)
        return None

    def entries(self, now: float) -> list[ListedEntry]:
        """Live entries, soonest expiry first then permanent ones, with TTL left at ``now``."""
        live = [e for e in self._entries.values() if not e.expired(now)]
        live.sort(key=lambda e: (e.expires_at is None, e.expires_at or 0.0, e.key))
        return [ListedEntry(e, e.remaining_ttl(now)) for e in live]

    def purge_expired(self, now: float) -> list[DenyEntry]:
        """Drop every expired entry; returns them (the wrapper may log or audit them)."""
        gone = [e for e in self._entries.values() if e.expired(now)]
        for entry in gone:
            del self._entries[entry.key]
            self._unindex(entry)
        return gone

    def next_expiry(self) -> float | None:
        """The earliest ``expires_at`` held, so a wrapper can sleep until the next purge."""
        times = [e.expires_at for e in self._entries.values() if e.expires_at is not None]
        return min(times, default=None)

    @staticmethod
    def _live(entry: DenyEntry, now: float) -> bool:
        # No removal here: lookups iterate the indexes, and a lookup must stay read-only.
        return not entry.expired(now)

    def _unindex(self, entry: DenyEntry) -> None:
        if entry.kind == "ip":
            self._networks.drop(entry)
        elif entry.kind == "path_prefix":
            self._paths.pop(entry.value, None)
            if not any(len(p) == len(entry.value) for p in self._paths):
                self._path_lengths.remove(len(entry.value))
        elif entry.kind == "user_agent":
            self._agents.drop(entry)
        else:
            values = self._headers.get(entry.header, {})
            values.pop(entry.value, None)
            if not values:
                self._headers.pop(entry.header, None)
