"""Denylist matching: every entry kind, TTLs under a synthetic clock, add/remove, listing."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sentinel_agents.denylist import (
    DenyEntry,
    Denylist,
    DenylistError,
    DenyRequest,
    format_ttl,
    parse_ttl,
)

T0 = 1_700_000_000.0


def req(ip: str = "192.0.2.1", path: str = "/", ua: str = "", **headers: str) -> DenyRequest:
    return DenyRequest(client_ip=ip, path=path, user_agent=ua, headers=headers)


def test_single_ipv4_and_cidr() -> None:
    dl = Denylist()
    dl.add("ip", "203.0.113.7", now=T0, reason="scanner")
    dl.add("ip", "10.1.2.3/8", now=T0)  # host bits are normalised away
    hit = dl.match(req(ip="203.0.113.7"), T0)
    assert hit is not None
    assert hit.entry.value == "203.0.113.7/32"
    assert hit.field == "client_ip"
    assert "scanner" in hit.explanation and "203.0.113.7/32" in hit.explanation
    cidr = dl.match(req(ip="10.200.0.1"), T0)
    assert cidr is not None and cidr.entry.value == "10.0.0.0/8"
    assert dl.match(req(ip="203.0.113.8"), T0) is None
    assert dl.match(req(ip="11.0.0.1"), T0) is None


def test_ipv6_and_v4_mapped_addresses() -> None:
    dl = Denylist()
    dl.add("ip", "2001:db8::/32", now=T0)
    dl.add("ip", "198.51.100.0/24", now=T0)
    assert dl.match(req(ip="2001:db8:1::5"), T0) is not None
    assert dl.match(req(ip="2001:db9::1"), T0) is None
    mapped = dl.match(req(ip="::ffff:198.51.100.9"), T0)
    assert mapped is not None and mapped.entry.value == "198.51.100.0/24"


def test_most_specific_network_is_reported() -> None:
    dl = Denylist()
    dl.add("ip", "10.0.0.0/8", now=T0, reason="broad")
    dl.add("ip", "10.1.0.0/16", now=T0, reason="narrow")
    hit = dl.match(req(ip="10.1.9.9"), T0)
    assert hit is not None and hit.entry.reason == "narrow"


def test_non_ip_client_is_not_an_error() -> None:
    dl = Denylist()
    dl.add("ip", "0.0.0.0/0", now=T0)
    assert dl.match(req(ip="unix-socket"), T0) is None


def test_path_prefixes_are_case_sensitive_prefixes() -> None:
    dl = Denylist()
    dl.add("path_prefix", "/wp-admin", now=T0)
    dl.add("path_prefix", "/.git/", now=T0)
    hit = dl.match(req(path="/wp-admin/install.php"), T0)
    assert hit is not None and hit.field == "path" and hit.entry.value == "/wp-admin"
    assert dl.match(req(path="/.git/config"), T0) is not None
    assert dl.match(req(path="/.git"), T0) is None
    assert dl.match(req(path="/WP-ADMIN"), T0) is None
    assert dl.match(req(path="/blog"), T0) is None


def test_user_agent_fragments_case_insensitive() -> None:
    dl = Denylist()
    dl.add("user_agent", "SQLMap", now=T0)
    dl.add("user_agent", "nikto", now=T0)
    hit = dl.match(req(ua="Mozilla/5.0 sqlmap/1.7 (https://sqlmap.org)"), T0)
    assert hit is not None and hit.entry.value == "sqlmap" and hit.field == "user_agent"
    assert dl.match(req(ua="Mozilla/5.0 (Nikto/2.1.6)"), T0) is not None
    assert dl.match(req(ua="curl/8.0"), T0) is None
    assert dl.match(req(ua=""), T0) is None


def test_header_values_exact_with_case_insensitive_name() -> None:
    dl = Denylist()
    dl.add("header", "leaked-key-123", header="X-Api-Key", now=T0, reason="leaked")
    hit = dl.match(req(**{"x-api-key": "leaked-key-123"}), T0)
    assert hit is not None and hit.field == "header x-api-key"
    assert hit.entry.describe() == "header x-api-key=leaked-key-123"
    assert dl.match(req(**{"x-api-key": "LEAKED-KEY-123"}), T0) is None
    assert dl.match(req(**{"x-other": "leaked-key-123"}), T0) is None


def test_ttl_expiry_under_a_synthetic_clock() -> None:
    dl = Denylist()
    dl.add("ip", "203.0.113.7", now=T0, ttl=parse_ttl("10m"))
    dl.add("user_agent", "sqlmap", now=T0)
    assert dl.match(req(ip="203.0.113.7"), T0 + 599.9) is not None
    assert dl.match(req(ip="203.0.113.7"), T0 + 600) is None
    assert dl.next_expiry() == T0 + 600
    assert [e.value for e in dl.purge_expired(T0 + 600)] == ["203.0.113.7/32"]
    assert len(dl) == 1
    assert dl.next_expiry() is None
    assert dl.match(req(ua="sqlmap"), T0 + 10**9) is not None


def test_expired_entry_does_not_hide_a_live_broader_one() -> None:
    dl = Denylist()
    dl.add("ip", "10.0.0.0/8", now=T0, reason="permanent")
    dl.add("ip", "10.1.1.1", now=T0, ttl=5, reason="temporary")
    late = dl.match(req(ip="10.1.1.1"), T0 + 10)
    assert late is not None and late.entry.reason == "permanent"


def test_readding_replaces_and_extends_ttl() -> None:
    dl = Denylist()
    dl.add("ip", "203.0.113.7", now=T0, ttl=60)
    dl.add("ip", "203.0.113.7/32", now=T0 + 50, ttl=60, reason="again")
    assert len(dl) == 1
    assert dl.match(req(ip="203.0.113.7"), T0 + 100) is not None
    (listed,) = dl.entries(T0 + 100)
    assert listed.entry.reason == "again"
    assert listed.remaining_ttl == pytest.approx(10)


def test_remove_any_spelling() -> None:
    dl = Denylist()
    dl.add("ip", "10.0.0.0/8", now=T0)
    dl.add("path_prefix", "/x", now=T0)
    dl.add("path_prefix", "/y", now=T0)
    dl.add("user_agent", "bot", now=T0)
    dl.add("header", "v", header="h", now=T0)
    removed = dl.remove("ip", "10.9.9.9/8")
    assert removed is not None and removed.value == "10.0.0.0/8"
    assert dl.remove("ip", "10.0.0.0/8") is None
    assert dl.remove("path_prefix", "/x") is not None
    assert dl.remove("user_agent", "BOT") is not None
    assert dl.remove("header", "v", header="H") is not None
    assert dl.match(req(ip="10.0.0.1", path="/x", ua="bot", h="v"), T0) is None
    assert dl.match(req(path="/y/z"), T0) is not None
    assert len(dl) == 1


def test_listing_with_remaining_ttl() -> None:
    dl = Denylist()
    dl.add("ip", "192.0.2.1", now=T0, ttl=3600)
    dl.add("ip", "192.0.2.2", now=T0, ttl=60)
    dl.add("ip", "192.0.2.3", now=T0)
    dl.add("ip", "192.0.2.4", now=T0, ttl=1)
    listing = dl.entries(T0 + 30)
    assert [(x.entry.value, x.remaining_ttl) for x in listing] == [
        ("192.0.2.2/32", 30.0),
        ("192.0.2.1/32", 3570.0),
        ("192.0.2.3/32", None),
    ]
    assert format_ttl(3570.0) == "59m30s"


@pytest.mark.parametrize(
    ("kind", "value", "header", "fragment"),
    [
        ("ip", "300.1.1.1", "", "not an IP address"),
        ("ip", "10.0.0.0/33", "", "CIDR"),
        ("path_prefix", "admin", "", "must start with '/'"),
        ("user_agent", "  ", "", "must not be empty"),
        ("header", "v", "", "header name"),
        ("cookie", "v", "", "unknown entry kind"),
    ],
)
def test_bad_entries_are_refused_with_a_reason(
    kind: str, value: str, header: str, fragment: str
) -> None:
    with pytest.raises(DenylistError, match=fragment):
        Denylist().add(kind, value, header=header, now=T0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("2d", 172800),
        ("1h30m", 5400),
        ("1w", 604800),
        (" 10M ", 600),
        ("45", 45),
        (1.5, 1.5),
        ("0.5h", 1800),
    ],
)
def test_parse_ttl(text: str | float, seconds: float) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "-5m", "0", "0s", "10 minutes", "1h-5m"])
def test_parse_ttl_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="TTL"):
        parse_ttl(text)


def test_format_ttl() -> None:
    assert format_ttl(0) == "0s"
    assert format_ttl(0.2) == "1s"
    assert format_ttl(90061) == "1d1h1m1s"
    assert parse_ttl(format_ttl(5400)) == 5400


@settings(max_examples=150, deadline=None)
@given(
    networks=st.lists(
        st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).flatmap(
            lambda ip: st.tuples(st.just(ip), st.integers(0, ip.max_prefixlen))
        ),
        max_size=12,
    ),
    probes=st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), min_size=1, max_size=12),
)
def test_ip_index_agrees_with_a_linear_scan(
    networks: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]],
    probes: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> None:
    dl = Denylist()
    nets = []
    for ip, length in networks:
        net = ipaddress.ip_network(f"{ip}/{length}", strict=False)
        nets.append(net)
        dl.add("ip", str(net), now=T0)
    for probe in probes + [net.network_address for net in nets]:
        # Linear scan; a v4-mapped IPv6 client is judged as its IPv4 address first.
        mapped = probe.ipv4_mapped if isinstance(probe, ipaddress.IPv6Address) else None
        as_v4 = [n for n in nets if mapped is not None and n.version == 4 and mapped in n]
        as_is = [n for n in nets if n.version == probe.version and probe in n]
        expected = as_v4 or as_is
        hit = dl.match(req(ip=str(probe)), T0)
        if not expected:
            assert hit is None
        else:
            assert hit is not None
            assert hit.entry.value == str(max(expected, key=lambda n: n.prefixlen))


def test_entry_identity_and_describe() -> None:
    entry = DenyEntry("path_prefix", "/x")
    assert entry.key == ("path_prefix", "", "/x")
    assert entry.remaining_ttl(T0) is None
    assert not entry.expired(T0)
