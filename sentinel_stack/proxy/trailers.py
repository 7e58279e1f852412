"""Which response trailers the front relays, and how (pure; the I/O is `front._relay`).

hypercorn sends trailers (ASGI ``http.response.trailers``) only to HTTP/2 clients whose
request said exactly ``te: trailers``, and only when the response head announced them.
They must be announced before anyone knows whether the upstream will send any:

- an HTTP/2 upstream's response that did not end with its head may have them (gRPC always
  does): announced; when none come, the block repeats ``x-request-id``, since HTTP/2 has no
  empty trailer block (h2 refuses to send one);
- a head that ended the stream has none, except gRPC's "trailers-only" answer (its status
  in the head). hypercorn cannot end a stream with a head (it sends an empty DATA frame,
  which gRPC clients refuse), so the status fields move to a trailer block;
- HTTP/1.1 upstreams' trailers are not relayed (``te`` is not forwarded to them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Header = tuple[str, str]
GRPC_STATUS_FIELDS = frozenset({"grpc-status", "grpc-message", "grpc-status-details-bin"})


def client_takes_trailers(scope: Mapping[str, Any]) -> bool:
    """hypercorn's own test: the extension (HTTP/2 and 3 only) and exactly ``te: trailers``."""
    extensions = scope.get("extensions") or {}
    return "http.response.trailers" in extensions and (b"te", b"trailers") in scope["headers"]


@dataclass(frozen=True)
class TrailerPlan:
    head: list[Header]  # the response head to send
    announce: bool  # whether the head announces trailers
    moved: list[Header]  # head fields that go in the trailer block instead


def plan_trailers(
    head: list[Header], *, client_takes: bool, upstream_http2: bool, ended_with_head: bool
) -> TrailerPlan:
    if not (client_takes and upstream_http2):
        return TrailerPlan(head, False, [])
    if not ended_with_head:
        return TrailerPlan(head, True, [])
    moved = [(n, v) for n, v in head if n.lower() in GRPC_STATUS_FIELDS]
    kept = [(n, v) for n, v in head if n.lower() not in GRPC_STATUS_FIELDS]
    return TrailerPlan(kept, bool(moved), moved)


def trailer_block(plan: TrailerPlan, upstream: Sequence[Header], request_id: str) -> list[Header]:
    """The fields of the announced block (``upstream``: hop-by-hop fields already removed)."""
    return plan.moved or list(upstream) or [("x-request-id", request_id)]
