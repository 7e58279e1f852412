"""Edge checks (sizes, framing) and upstream header rewriting (hop-by-hop, forwarding, ids)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentinel_stack.proxy.limits import (
    HOP_BY_HOP,
    BodyFraming,
    ForwardingPolicy,
    Rejection,
    RejectReason,
    RequestLimits,
    check_body_size,
    check_framing,
    check_head,
    client_address,
    prepare_upstream_headers,
    request_id,
    strip_hop_by_hop,
)

LIMITS = RequestLimits(
    max_target_length=20, max_header_count=3, max_header_size=10, max_header_bytes=30
)
TRUSTED = ForwardingPolicy.from_cidrs(["10.0.0.0/8", "fd00::/8"])


def seeded_bytes(seed: int = 1) -> random.Random:
    return random.Random(seed)


def values(headers: tuple[tuple[str, str], ...], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name]


# --- head sizes ------------------------------------------------------------------------------


def test_acceptable_head() -> None:
    assert check_head("/x", [("a", "1"), ("b", "2")], LIMITS) is None


@pytest.mark.parametrize(
    ("target", "headers", "reason", "status"),
    [
        ("/" + "x" * 20, [], RejectReason.TARGET_TOO_LONG, 414),
        ("/", [("a", "1")] * 4, RejectReason.TOO_MANY_HEADERS, 431),
        ("/", [("name", "1234567")], RejectReason.HEADER_TOO_LARGE, 431),
        ("/", [("aaaa", "111111")] * 3, RejectReason.HEADERS_TOO_LARGE, 431),
        ("/", [("a", "x\r\nb: y")], RejectReason.INVALID_HEADER, 400),
        ("/", [("a", "x\x00")], RejectReason.INVALID_HEADER, 400),
        ("/", [("a\n", "x")], RejectReason.INVALID_HEADER, 400),
    ],
)
def test_head_rejections(
    target: str, headers: list[tuple[str, str]], reason: RejectReason, status: int
) -> None:
    rejection = check_head(target, headers, LIMITS)
    assert rejection is not None
    assert rejection.reason is reason
    assert rejection.status == status


def test_default_limits_accept_an_ordinary_browser_request() -> None:
    headers = [("host", "example.com"), ("user-agent", "Mozilla/5.0 " * 10), ("cookie", "a" * 4000)]
    assert check_head("/index.html?q=1", headers, RequestLimits()) is None


# --- framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "version", "expected"),
    [
        ([], "1.1", BodyFraming("none")),
        ([("Content-Length", "5")], "1.1", BodyFraming("length", 5)),
        ([("content-length", "5"), ("content-length", "5")], "1.1", BodyFraming("length", 5)),
        ([("content-length", "5, 005")], "1.0", BodyFraming("length", 5)),
        ([("content-length", "0")], "1.1", BodyFraming("length", 0)),
        ([("Transfer-Encoding", "Chunked")], "1.1", BodyFraming("streamed")),
        ([("transfer-encoding", " chunked ")], "1.1", BodyFraming("streamed")),
        ([], "2", BodyFraming("streamed")),
        ([("te", "trailers")], "2", BodyFraming("streamed")),
        ([("content-length", "7")], "2", BodyFraming("length", 7)),
    ],
)
def test_framing(headers: list[tuple[str, str]], version: str, expected: BodyFraming) -> None:
    assert check_framing(headers, max_body=100, http_version=version) == expected


@pytest.mark.parametrize(
    ("headers", "version", "reason"),
    [
        ([("content-length", "5"), ("content-length", "6")], "1.1", "CONFLICTING_CONTENT_LENGTH"),
        ([("content-length", "5, 6")], "2", "CONFLICTING_CONTENT_LENGTH"),
        ([("content-length", "+5")], "1.1", "BAD_CONTENT_LENGTH"),
        ([("content-length", "-1")], "1.1", "BAD_CONTENT_LENGTH"),
        ([("content-length", "0x10")], "1.1", "BAD_CONTENT_LENGTH"),
        ([("content-length", "5 5")], "1.1", "BAD_CONTENT_LENGTH"),
        ([("content-length", "")], "1.1", "BAD_CONTENT_LENGTH"),
        ([("content-length", "5,")], "1.1", "BAD_CONTENT_LENGTH"),
        (
            [("content-length", "5"), ("transfer-encoding", "chunked")],
            "1.1",
            "LENGTH_AND_CHUNKED",
        ),
        ([("transfer-encoding", "gzip, chunked")], "1.1", "BAD_TRANSFER_ENCODING"),
        (
            [("transfer-encoding", "chunked"), ("transfer-encoding", "chunked")],
            "1.1",
            "BAD_TRANSFER_ENCODING",
        ),
        ([("transfer-encoding", "chunked, identity")], "1.1", "BAD_TRANSFER_ENCODING"),
        ([("transfer-encoding", "")], "1.1", "BAD_TRANSFER_ENCODING"),
        ([("transfer-encoding", "xchunked")], "1.1", "BAD_TRANSFER_ENCODING"),
        ([("transfer-encoding", "chunked")], "1.0", "TRANSFER_ENCODING_IN_HTTP10"),
    ],
)
def test_ambiguous_framing_is_refused_with_400(
    headers: list[tuple[str, str]], version: str, reason: str
) -> None:
    result = check_framing(headers, max_body=100, http_version=version)
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason[reason]
    assert result.status == 400


@pytest.mark.parametrize("length", ["101", "99999999999999999999999999"])
def test_declared_body_over_the_limit_is_413(length: str) -> None:
    result = check_framing([("content-length", length)], max_body=100)
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.BODY_TOO_LARGE
    assert result.status == 413


def test_streamed_body_size() -> None:
    assert check_body_size(100, 100) is None
    rejection = check_body_size(101, 100)
    assert rejection is not None
    assert rejection.status == 413


# --- hop-by-hop ------------------------------------------------------------------------------


def test_hop_by_hop_fields_are_removed() -> None:
    headers = [
        ("Host", "h"),
        ("Connection", "keep-alive, X-Secret, Upgrade"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic x"),
        ("Proxy-Connection", "close"),
        ("Proxy", "http://evil"),
        ("TE", "trailers"),
        ("Trailer", "x"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "websocket"),
        ("x-secret", "1"),
        ("Accept", "*/*"),
        ("Proxyish", "kept"),
    ]
    assert strip_hop_by_hop(headers) == [("Host", "h"), ("Accept", "*/*"), ("Proxyish", "kept")]


def test_connection_cannot_remove_host_or_content_length() -> None:
    headers = [("connection", "Host, Content-Length"), ("host", "h"), ("content-length", "3")]
    assert strip_hop_by_hop(headers) == [("host", "h"), ("content-length", "3")]


names = st.sampled_from(
    ["connection", "Keep-Alive", "x-a", "x-b", "Proxy-Foo", "te", "accept", "upgrade"]
)


@given(st.lists(st.tuples(names, st.sampled_from(["x-a", "close", "x-b, te", "v"])), max_size=8))
def test_no_hop_by_hop_field_survives(headers: list[tuple[str, str]]) -> None:
    out = strip_hop_by_hop(headers)
    nominated = {
        t.strip().lower() for n, v in headers if n.lower() == "connection" for t in v.split(",")
    }
    for name, _ in out:
        lowered = name.lower()
        assert lowered not in HOP_BY_HOP
        assert not lowered.startswith("proxy-")
        assert lowered not in nominated
    assert [h for h in headers if h in out] == out  # order and values kept


# --- forwarding ------------------------------------------------------------------------------


def test_trusted_proxy_list() -> None:
    assert TRUSTED.trusts("10.1.2.3")
    assert TRUSTED.trusts("::ffff:10.1.2.3")
    assert TRUSTED.trusts("fd00::1")
    assert not TRUSTED.trusts("192.168.0.1")
    assert not TRUSTED.trusts(None)
    assert not TRUSTED.trusts("not-an-ip")
    assert not ForwardingPolicy().trusts("127.0.0.1")
    with pytest.raises(ValueError, match="'nope'"):
        ForwardingPolicy.from_cidrs(["nope"])


def prepare(
    headers: list[tuple[str, str]],
    peer: str | None,
    policy: ForwardingPolicy = TRUSTED,
    framing: BodyFraming | None = None,
) -> tuple[tuple[str, str], ...]:
    return prepare_upstream_headers(
        headers,
        peer=peer,
        scheme="https",
        host="shop.example:8443",
        policy=policy,
        random_bytes=seeded_bytes().randbytes,
        framing=framing,
    ).headers


SPOOFED = [
    ("X-Forwarded-For", "1.1.1.1"),
    ("X-Forwarded-Proto", "http"),
    ("X-Forwarded-Host", "evil"),
    ("Forwarded", "for=1.1.1.1"),
    ("X-Real-IP", "1.1.1.1"),
    ("X-Request-Id", "chosen-by-client"),
    ("Accept", "*/*"),
]


def test_untrusted_peer_gets_its_forwarding_fields_overwritten() -> None:
    out = prepare(SPOOFED, "203.0.113.9")
    assert values(out, "x-forwarded-for") == ["203.0.113.9"]
    assert values(out, "x-forwarded-proto") == ["https"]
    assert values(out, "x-forwarded-host") == ["shop.example:8443"]
    assert values(out, "forwarded") == []
    assert values(out, "x-real-ip") == []
    assert values(out, "x-request-id") != ["chosen-by-client"]
    assert values(out, "accept") == ["*/*"]


def test_trusted_peer_extends_the_chain_and_keeps_its_fields() -> None:
    headers = [*SPOOFED, ("x-forwarded-for", "2.2.2.2")]
    out = prepare(headers, "10.0.0.5")
    assert values(out, "x-forwarded-for") == ["1.1.1.1, 2.2.2.2, 10.0.0.5"]
    assert values(out, "x-forwarded-proto") == ["http"]
    assert values(out, "x-forwarded-host") == ["evil"]
    assert values(out, "forwarded") == ["for=1.1.1.1"]
    assert values(out, "x-request-id") == ["chosen-by-client"]


def test_no_peer_address_sends_no_x_forwarded_for() -> None:
    out = prepare(SPOOFED, None)
    assert values(out, "x-forwarded-for") == []
    assert values(out, "x-forwarded-proto") == ["https"]


def test_ipv4_mapped_peer_is_written_as_ipv4() -> None:
    out = prepare([], "::ffff:203.0.113.9", ForwardingPolicy())
    assert values(out, "x-forwarded-for") == ["203.0.113.9"]


def test_hop_by_hop_fields_do_not_reach_the_upstream() -> None:
    out = prepare([("connection", "x-a"), ("x-a", "1"), ("keep-alive", "5")], "203.0.113.9")
    assert {name for name, _ in out} == {
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-request-id",
    }


def test_framing_makes_content_length_canonical() -> None:
    out = prepare([("Content-Length", "5, 005")], "203.0.113.9", framing=BodyFraming("length", 5))
    assert values(out, "content-length") == ["5"]
    streamed = prepare([("content-length", "5")], "203.0.113.9", framing=BodyFraming("streamed"))
    assert values(streamed, "content-length") == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["x-forwarded-for", "X-Request-Id", "x-forwarded-host", "a"]),
            st.sampled_from(["1.2.3.4", "", "abc", "10.0.0.1, 9.9.9.9"]),
        ),
        max_size=6,
    ),
    st.sampled_from(["10.0.0.5", "203.0.113.9", None]),
)
def test_exactly_one_of_each_composed_field(
    headers: list[tuple[str, str]], peer: str | None
) -> None:
    out = prepare(headers, peer)
    for name in ("x-forwarded-proto", "x-forwarded-host", "x-request-id"):
        assert len(values(out, name)) == 1
    assert len(values(out, "x-forwarded-for")) == (0 if peer is None else 1)


# --- client address and request id ----------------------------------------------------------


@pytest.mark.parametrize(
    ("xff", "peer", "expected"),
    [
        ([], "203.0.113.9", "203.0.113.9"),
        (["1.1.1.1"], "203.0.113.9", "203.0.113.9"),  # untrusted peer: its XFF is ignored
        (["1.1.1.1"], "10.0.0.5", "1.1.1.1"),
        (["1.1.1.1, 10.0.0.7"], "10.0.0.5", "1.1.1.1"),  # walk over trusted hops
        (["6.6.6.6, 1.1.1.1"], "10.0.0.5", "1.1.1.1"),  # stop at the first untrusted one
        (["6.6.6.6", "1.1.1.1"], "10.0.0.5", "1.1.1.1"),  # several fields form one list
        (["garbage"], "10.0.0.5", "10.0.0.5"),
        (["10.0.0.9"], "10.0.0.5", "10.0.0.9"),  # all trusted: the leftmost
        ([], None, None),
    ],
)
def test_client_address(xff: list[str], peer: str | None, expected: str | None) -> None:
    headers = [("X-Forwarded-For", value) for value in xff]
    assert client_address(headers, peer, TRUSTED) == expected


def test_request_id_is_generated_from_injected_randomness() -> None:
    first = request_id([], peer_trusted=False, random_bytes=seeded_bytes(3).randbytes)
    again = request_id([], peer_trusted=False, random_bytes=seeded_bytes(3).randbytes)
    other = request_id([], peer_trusted=False, random_bytes=seeded_bytes(4).randbytes)
    assert first == again != other
    assert len(first) == 36
    assert first[14] == "4"  # a version-4 UUID


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        (["abc-123_x.y:z"], True),
        (["a" * 128], True),
        (["a" * 129], False),
        (["bad id"], False),
        (["bad\u00e9"], False),
        ([""], False),
        (["one", "two"], False),
    ],
)
def test_incoming_request_id_is_kept_only_when_valid_and_trusted(
    incoming: list[str], kept: bool
) -> None:
    headers = [("x-request-id", value) for value in incoming]
    rid = request_id(headers, peer_trusted=True, random_bytes=seeded_bytes().randbytes)
    assert (rid == incoming[0]) is kept
    untrusted = request_id(headers, peer_trusted=False, random_bytes=seeded_bytes().randbytes)
    assert untrusted != incoming[0]


@pytest.mark.parametrize(
    ("te", "forwarded"),
    [("trailers", True), ("Trailers ", True), ("gzip", False), ("trailers, gzip", False)],
)
def test_te_trailers_is_promised_upstream_again_and_nothing_else(te: str, forwarded: bool) -> None:
    headers = prepare([("Connection", "TE"), ("TE", te), ("Accept", "*/*")], "10.0.0.9")
    assert [v for n, v in headers if n.lower() == "te"] == (["trailers"] if forwarded else [])
