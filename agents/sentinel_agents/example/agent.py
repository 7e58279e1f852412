"""The example agent's decisions: path prefixes to block, body markers to refuse.

It also answers the per-request header used by tests and benchmarks: an allowed request
gets ``x-sentinel-example: checked`` added upstream and ``x-content-type-options: nosniff``
set on the response.
"""

from __future__ import annotations

import msgspec

from sentinel_stack.agent import (
    Agent,
    Audit,
    Configure,
    Decision,
    HeaderOps,
    RequestBodyChunk,
    RequestHeaders,
    allow,
    block,
    needs_more,
)

__all__ = ["ExampleAgent", "ExampleConfig"]


class ExampleConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Configuration pushed by the proxy (``[agents.example.config]`` in the stack config)."""

    blocked_prefixes: tuple[str, ...] = ("/admin",)
    body_markers: tuple[str, ...] = ("<script",)


_ALLOWED = allow(
    request_headers=HeaderOps(add=(("x-sentinel-example", "checked"),)),
    response_headers=HeaderOps(set=(("x-content-type-options", "nosniff"),)),
)


class ExampleAgent(Agent):
    name = "example"
    version = "0.1.0"
    concurrent = False  # the hooks only compute; see Agent.concurrent

    def __init__(self, config: ExampleConfig | None = None) -> None:
        self.config = ExampleConfig() if config is None else config

    async def on_configure(self, update: Configure) -> None:
        self.config = update.decode(ExampleConfig)

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        if request.path.startswith(self.config.blocked_prefixes):
            return block(
                403,
                "forbidden by the example agent\n",
                audit=Audit(tags=("example", "path"), rule_ids=("EX-1",), reason=request.path),
            )
        if self.config.body_markers and _has_body(request):
            return needs_more()
        return _ALLOWED

    async def on_request_body(self, chunk: RequestBodyChunk) -> Decision:
        # Chunks are scanned one at a time; a marker split across two chunks is missed, which
        # a real agent would handle by keeping a tail per correlation_id.
        data = chunk.data.lower()
        for marker in self.config.body_markers:
            if marker.lower().encode() in data:
                audit = Audit(tags=("example", "body"), rule_ids=("EX-2",), reason=marker)
                return block(403, "forbidden by the example agent\n", audit=audit)
        return _ALLOWED if chunk.last else needs_more()


def _has_body(request: RequestHeaders) -> bool:
    length = request.headers.get("content-length", ["0"])[0]
    return "transfer-encoding" in request.headers or length not in ("", "0")
