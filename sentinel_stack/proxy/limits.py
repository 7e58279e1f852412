"""Request checks and header rewriting at the proxy's edge, as pure functions.

The front calls these before routing (`check_head`, `check_framing`) and before sending a
request upstream (`prepare_upstream_headers`). Headers are ``(name, value)`` string pairs
decoded as latin-1, so a string's length is its length in bytes on the wire.

Framing is checked strictly because the proxy and the upstream must agree on where a request
ends: when they disagree, one request can hide another (request smuggling). Anything
ambiguous is refused with 400 instead of being repaired.

Forwarding headers are only believed from trusted proxies (a list of CIDRs, empty by
default): from anyone else, ``X-Forwarded-*``, ``Forwarded``, ``X-Real-IP`` and
``X-Request-Id`` are replaced, so a client cannot choose the address an upstream or an
agent sees.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "HOP_BY_HOP",
    "BodyFraming",
    "ForwardingPolicy",
    "RejectReason",
    "Rejection",
    "RequestLimits",
    "UpstreamHeaders",
    "check_body_size",
    "check_framing",
    "check_head",
    "client_address",
    "prepare_upstream_headers",
    "request_id",
    "strip_hop_by_hop",
]

Header = tuple[str, str]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RejectReason(enum.StrEnum):
    TARGET_TOO_LONG = "request target too long"
    TOO_MANY_HEADERS = "too many header fields"
    HEADER_TOO_LARGE = "a header field is too large"
    HEADERS_TOO_LARGE = "header section too large"
    INVALID_HEADER = "header field has a forbidden character"
    BAD_CONTENT_LENGTH = "Content-Length is not a number"
    CONFLICTING_CONTENT_LENGTH = "several differing Content-Length values"
    LENGTH_AND_CHUNKED = "both Content-Length and Transfer-Encoding"
    BAD_TRANSFER_ENCODING = "Transfer-Encoding other than exactly chunked"
    TRANSFER_ENCODING_IN_HTTP10 = "Transfer-Encoding in an HTTP/1.0 request"
    BODY_TOO_LARGE = "body larger than the route allows"


_STATUS = {
    RejectReason.TARGET_TOO_LONG: 414,
    RejectReason.TOO_MANY_HEADERS: 431,
    RejectReason.HEADER_TOO_LARGE: 431,
    RejectReason.HEADERS_TOO_LARGE: 431,
    RejectReason.BODY_TOO_LARGE: 413,
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Answer the client with ``status``; ``reason`` is for metrics, ``detail`` for logs."""

    reason: RejectReason
    detail: str = ""

    @property
    def status(self) -> int:
        return _STATUS.get(self.reason, 400)


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Size limits of a request head (not in the config schema yet: these defaults apply)."""

    max_target_length: int = 8 * 1024
    max_header_count: int = 100
    max_header_size: int = 8 * 1024
    max_header_bytes: int = 32 * 1024


_FORBIDDEN_IN_HEADER = re.compile(r"[\x00\r\n]")


def check_head(target: str, headers: Sequence[Header], limits: RequestLimits) -> Rejection | None:
    """Request target length, header count and sizes; None when the head is acceptable.

    A header's size is ``len(name) + len(value)``; the section's size adds 4 bytes per field
    for ``": "`` and CRLF, as on the wire in HTTP/1.1.
    """
    if len(target) > limits.max_target_length:
        return Rejection(RejectReason.TARGET_TOO_LONG, f"{len(target)} bytes")
    if len(headers) > limits.max_header_count:
        return Rejection(RejectReason.TOO_MANY_HEADERS, f"{len(headers)} fields")
    total = 0
    for name, value in headers:
        size = len(name) + len(value)
        if size > limits.max_header_size:
            return Rejection(RejectReason.HEADER_TOO_LARGE, f"{name[:64]}: {size} bytes")
        if _FORBIDDEN_IN_HEADER.search(name) or _FORBIDDEN_IN_HEADER.search(value):
            return Rejection(RejectReason.INVALID_HEADER, name[:64])
        total += size + 4
    if total > limits.max_header_bytes:
        return Rejection(RejectReason.HEADERS_TOO_LARGE, f"{total} bytes")
    return None


@dataclass(frozen=True, slots=True)
class BodyFraming:
    """How the request body is delimited.

    ``none``: no body (HTTP/1.x without Content-Length or Transfer-Encoding). ``length``:
    exactly ``length`` bytes. ``streamed``: chunked HTTP/1.1, or HTTP/2-3 without
    Content-Length; the front counts bytes as they arrive (`check_body_size`).
    """

    kind: Literal["none", "length", "streamed"]
    length: int | None = None


_DIGITS = re.compile(r"[0-9]+")
_HUGE = 10**18  # stands in for longer numbers: beyond any limit, and no huge-int parsing


def check_framing(
    headers: Sequence[Header], *, max_body: int, http_version: str = "1.1"
) -> BodyFraming | Rejection:
    """The body framing of a request, or why it is refused (400 ambiguous, 413 too large).

    Content-Length may repeat (as fields or comma-separated) only with one value. In
    HTTP/1.x, Transfer-Encoding must be exactly ``chunked``, never with Content-Length, and
    never in HTTP/1.0. In HTTP/2 and 3 the frames delimit the body and ``TE``-style fields
    are the protocol library's business, so only Content-Length is checked.
    """
    lengths: set[int] = set()
    codings: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "content-length":
            for item in value.split(","):
                item = item.strip(" \t")
                if not _DIGITS.fullmatch(item):
                    return Rejection(RejectReason.BAD_CONTENT_LENGTH, value[:64])
                lengths.add(int(item) if len(item) <= 18 else _HUGE)
        elif lowered == "transfer-encoding":
            codings.extend(c.strip(" \t").lower() for c in value.split(","))
    if len(lengths) > 1:
        return Rejection(RejectReason.CONFLICTING_CONTENT_LENGTH, ", ".join(map(str, lengths)))
    http1 = http_version.startswith("1")
    if codings and http1:
        if http_version == "1.0":
            return Rejection(RejectReason.TRANSFER_ENCODING_IN_HTTP10)
        if lengths:
            return Rejection(RejectReason.LENGTH_AND_CHUNKED)
        if codings != ["chunked"]:
            return Rejection(RejectReason.BAD_TRANSFER_ENCODING, ", ".join(codings)[:64])
        return BodyFraming("streamed")
    if lengths:
        (length,) = lengths
        if length > max_body:
            return Rejection(RejectReason.BODY_TOO_LARGE, f"{length} > {max_body} bytes")
        return BodyFraming("length", length)
    return BodyFraming("none") if http1 else BodyFraming("streamed")


def check_body_size(received: int, max_body: int) -> Rejection | None:
    """For streamed bodies: refuse once more than *max_body* bytes have arrived."""
    if received > max_body:
        return Rejection(RejectReason.BODY_TOO_LARGE, f"more than {max_body} bytes")
    return None


HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy", "te", "trailer", "transfer-encoding", "upgrade"}
)
# Connection may nominate more fields to drop; never these, which routing and framing need.
_NOT_NOMINATABLE = frozenset({"host", "content-length"})


def strip_hop_by_hop(headers: Iterable[Header]) -> list[Header]:
    """Headers without hop-by-hop fields: `HOP_BY_HOP`, every ``Proxy-*`` field, and the
    fields named in Connection (except Host and Content-Length).

    ``Proxy`` (no dash) goes too: no client needs it and CGI-style upstreams turn it into
    ``HTTP_PROXY`` ("httpoxy"). ``TE`` goes as well; `prepare_upstream_headers` puts
    back ``te: trailers`` for clients that accept trailers (gRPC needs it upstream).
    """
    headers = list(headers)
    nominated: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            nominated.update(token.strip(" \t").lower() for token in value.split(","))
    nominated -= _NOT_NOMINATABLE
    return [
        (name, value)
        for name, value in headers
        if (lowered := name.lower()) not in HOP_BY_HOP
        and not lowered.startswith("proxy-")
        and lowered not in nominated
    ]


def accepts_trailers(headers: Iterable[Header]) -> bool:
    """Whether the client said ``TE: trailers``: exactly that value, the only one HTTP/2
    allows (RFC 9113 §8.2.2) and the one hypercorn checks before it sends trailers."""
    return any(n.lower() == "te" and v.strip(" \t").lower() == "trailers" for n, v in headers)


@dataclass(frozen=True, slots=True)
class ForwardingPolicy:
    """Which peers may tell us about earlier hops (their X-Forwarded-*, X-Request-Id)."""

    trusted_proxies: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> ForwardingPolicy:
        """``["10.0.0.0/8", "::1"]`` → policy; ValueError names the bad entry."""
        networks = []
        for cidr in cidrs:
            try:
                networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"trusted proxy {cidr!r} is not an IP or CIDR: {exc}") from exc
        return cls(tuple(networks))

    def trusts(self, address: str | None) -> bool:
        ip = _parse_ip(address)
        if ip is None:
            return False
        return any(ip.version == net.version and ip in net for net in self.trusted_proxies)


def _parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not text:
        return None
    try:
        ip = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return ip


def _values(headers: Iterable[Header], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _xff_entries(headers: Iterable[Header]) -> list[str]:
    entries = (e.strip() for v in _values(headers, "x-forwarded-for") for e in v.split(","))
    return [entry for entry in entries if entry]


def client_address(
    headers: Sequence[Header], peer: str | None, policy: ForwardingPolicy
) -> str | None:
    """The client's address: the peer, or walking X-Forwarded-For from the right while each
    hop is a trusted proxy (the first untrusted or unparsable entry stops the walk)."""
    ip = _parse_ip(peer)
    current = str(ip) if ip is not None else None
    entries = _xff_entries(headers)
    while policy.trusts(current) and entries:
        hop = _parse_ip(entries.pop())
        if hop is None:
            break
        current = str(hop)
    return current


_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


def request_id(
    headers: Sequence[Header], *, peer_trusted: bool, random_bytes: Callable[[int], bytes]
) -> str:
    """The request's id: a trusted peer's single well-formed X-Request-Id, else a new UUID4
    built from *random_bytes* (``os.urandom`` in production, a seeded source in tests)."""
    if peer_trusted:
        incoming = _values(headers, "x-request-id")
        if len(incoming) == 1 and _VALID_REQUEST_ID.fullmatch(incoming[0]):
            return incoming[0]
    return str(uuid.UUID(bytes=random_bytes(16), version=4))


@dataclass(frozen=True, slots=True)
class UpstreamHeaders:
    """What `prepare_upstream_headers` produced: the headers to send and what it decided."""

    headers: tuple[Header, ...]
    request_id: str
    client_address: str | None


_REPLACED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id"})
_UNTRUSTED_DROPPED = frozenset({"forwarded", "x-real-ip"})


def prepare_upstream_headers(
    headers: Sequence[Header],
    *,
    peer: str | None,
    scheme: str,
    host: str,
    policy: ForwardingPolicy,
    random_bytes: Callable[[int], bytes],
    framing: BodyFraming | None = None,
) -> UpstreamHeaders:
    """Request headers for the upstream: hop-by-hop removed, forwarding fields composed.

    *peer* is the client socket's IP (None for a Unix socket), *scheme* and *host* what the
    client used. From a trusted peer, its X-Forwarded-For is extended with the peer's address
    and its X-Forwarded-Proto/-Host are kept; from anyone else they are overwritten (and
    Forwarded and X-Real-IP dropped). With no peer address, no X-Forwarded-For is sent.
    Given the *framing* from `check_framing`, the client's Content-Length fields (``5, 5``,
    ``005``) are replaced by one canonical field, so the upstream parses what was checked.
    """
    kept = strip_hop_by_hop(headers)
    if accepts_trailers(headers):
        # Hop-by-hop, but it is this hop's promise too: the proxy relays trailers (HTTP/2
        # upstreams) to a client that accepts them, and gRPC servers insist on it.
        kept.append(("te", "trailers"))
    if framing is not None:
        kept = [(name, value) for name, value in kept if name.lower() != "content-length"]
        if framing.kind == "length":
            kept.append(("content-length", str(framing.length)))
    trusted = policy.trusts(peer)
    client = client_address(kept, peer, policy)
    rid = request_id(kept, peer_trusted=trusted, random_bytes=random_bytes)
    chain = _xff_entries(kept) if trusted else []
    proto = (_values(kept, "x-forwarded-proto") if trusted else [])[:1] or [scheme]
    fwd_host = (_values(kept, "x-forwarded-host") if trusted else [])[:1] or [host]
    dropped = _REPLACED if trusted else _REPLACED | _UNTRUSTED_DROPPED
    out = [(name, value) for name, value in kept if name.lower() not in dropped]
    peer_ip = _parse_ip(peer)
    if peer_ip is not None:
        out.append(("x-forwarded-for", ", ".join([*chain, str(peer_ip)])))
    out.append(("x-forwarded-proto", proto[0]))
    out.append(("x-forwarded-host", fwd_host[0]))
    out.append(("x-request-id", rid))
    return UpstreamHeaders(tuple(out), rid, client)
