"""Control API messages. One request per line; answers carry the request's `id`.

A request is answered by one `Reply`, or, for streaming ops (`logs` with follow,
`subscribe`), by any number of `Streamed` lines until the client hangs up.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Op = Literal["status", "start", "stop", "restart", "logs", "subscribe", "down", "reload", "alerts"]


class Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    op: Op
    id: int = 0
    name: str | None = None
    lines: int = 100
    follow: bool = False
    topics: list[str] = msgspec.field(default_factory=list)


class ErrorInfo(msgspec.Struct, frozen=True):
    code: str
    message: str


class Reply(msgspec.Struct, frozen=True, omit_defaults=True):
    id: int
    ok: bool
    result: Any = None
    error: ErrorInfo | None = None


class Streamed(msgspec.Struct, frozen=True):
    id: int
    event: Any


encoder = msgspec.json.Encoder()
request_decoder = msgspec.json.Decoder(Request)
