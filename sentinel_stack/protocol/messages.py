"""Every message of the agent protocol, one frozen Struct per message type, and the type table.

Field names are the wire names (docs/agent-protocol.md lists them with JSON examples). Unknown
fields are ignored when decoding, so a newer peer may add optional fields without a version
bump. Lists a newer peer may extend with values we do not know (event kinds, features,
encodings) are plain strings in the handshake, never enums, for the same reason.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from sentinel_stack.protocol.decisions import Decision

__all__ = [
    "MAX_FRAME",
    "MESSAGE_TABLE",
    "PROTOCOL_VERSION",
    "AgentDecision",
    "AgentHello",
    "Cancel",
    "Configure",
    "ConfigureResult",
    "DecisionEvent",
    "Encoding",
    "EventError",
    "EventKind",
    "Feature",
    "GoAway",
    "Health",
    "Hello",
    "Limits",
    "Message",
    "MessageType",
    "Ping",
    "Pong",
    "RequestBodyChunk",
    "RequestComplete",
    "RequestHeaders",
    "ResponseBodyChunk",
    "ResponseHeaders",
    "TlsInfo",
    "message_class",
    "message_type",
]

PROTOCOL_VERSION = 1
MAX_FRAME = 16 * 1024 * 1024
"""Hard ceiling on a frame's length field (type byte + payload); either side may lower it."""

CorrelationId = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Headers = dict[str, list[str]]
T = TypeVar("T")


class Encoding(enum.StrEnum):
    """Payload encodings. JSON is mandatory for every implementation; MessagePack is optional."""

    JSON = "json"
    MSGPACK = "msgpack"


class EventKind(enum.StrEnum):
    """Per-request events an agent may subscribe to in its handshake answer."""

    REQUEST_HEADERS = "request_headers"
    REQUEST_BODY = "request_body"
    RESPONSE_HEADERS = "response_headers"
    RESPONSE_BODY = "response_body"
    REQUEST_COMPLETE = "request_complete"


class Feature(enum.StrEnum):
    """Optional behaviours, used only when both sides list them."""

    CONFIGURE = "configure"
    HEALTH = "health"


class Limits(msgspec.Struct, frozen=True):
    """What the side that sends it accepts.

    ``max_frame`` bounds frames sent *to* this side; ``max_concurrency`` bounds the events
    awaiting a decision at once on one connection.
    """

    max_frame: Annotated[int, msgspec.Meta(ge=64, le=MAX_FRAME)] = MAX_FRAME
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1024


class Hello(msgspec.Struct, frozen=True):
    """Proxy → agent, first frame on a connection (always JSON)."""

    versions: tuple[int, ...] = (PROTOCOL_VERSION,)
    name: str = "sentinel-proxy"
    version: str = ""
    events: tuple[str, ...] = tuple(EventKind)
    features: tuple[str, ...] = tuple(Feature)
    encodings: tuple[str, ...] = (Encoding.MSGPACK, Encoding.JSON)
    limits: Limits = Limits()


class AgentHello(msgspec.Struct, frozen=True):
    """Agent → proxy answer to `Hello` (always JSON); every later frame uses ``encoding``."""

    version: int
    name: str
    agent_version: str = ""
    events: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    encoding: Encoding = Encoding.JSON
    limits: Limits = Limits()


class GoAway(msgspec.Struct, frozen=True, omit_defaults=True):
    """Either side: I start no new requests here; finish the open ones, then close."""

    reason: str = ""


class Ping(msgspec.Struct, frozen=True):
    """Either side: prove you are alive; answered by a `Pong` with the same nonce."""

    nonce: Count


class Pong(msgspec.Struct, frozen=True):
    nonce: Count


class TlsInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    version: str = ""
    cipher: str = ""
    sni: str = ""


class RequestHeaders(msgspec.Struct, frozen=True, omit_defaults=True):
    """Proxy → agent: a request arrived; answered by `AgentDecision` or `EventError`."""

    correlation_id: CorrelationId
    request_id: str
    method: str
    path: str
    query: str = ""
    headers: Headers = {}
    client_ip: str = ""
    client_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    route_id: str = ""
    upstream_id: str = ""
    protocol: str = "HTTP/1.1"
    tls: TlsInfo | None = None


class RequestBodyChunk(msgspec.Struct, frozen=True, omit_defaults=True):
    """Proxy → agent, only after the agent answered ``needs_more``; ``last`` ends the body."""

    correlation_id: CorrelationId
    data: bytes
    offset: Count = 0
    last: bool = False


class ResponseHeaders(msgspec.Struct, frozen=True, omit_defaults=True):
    """Proxy → agent: the upstream (or the proxy itself) answered with these headers."""

    correlation_id: CorrelationId
    status: Annotated[int, msgspec.Meta(ge=100, le=599)]
    headers: Headers = {}


class ResponseBodyChunk(msgspec.Struct, frozen=True, omit_defaults=True):
    """Proxy → agent, only after ``needs_more`` on the response; ``last`` ends the body."""

    correlation_id: CorrelationId
    data: bytes
    offset: Count = 0
    last: bool = False


class RequestComplete(msgspec.Struct, frozen=True, omit_defaults=True):
    """Proxy → agent, not answered: how the request ended, for learning and auditing."""

    correlation_id: CorrelationId
    status: Annotated[int, msgspec.Meta(ge=0, le=599)]
    duration_us: Count = 0
    request_bytes: Count = 0
    response_bytes: Count = 0
    decided_by: str = ""
    error: str = ""


class Cancel(msgspec.Struct, frozen=True, omit_defaults=True):
    """Proxy → agent, not answered: stop working on this event; any answer will be ignored."""

    correlation_id: CorrelationId
    reason: str = ""


class Configure(msgspec.Struct, frozen=True, omit_defaults=True):
    """Proxy → agent: apply this configuration; answered by `ConfigureResult`."""

    revision: Count
    config: dict[str, Any] = {}

    def decode(self, config_type: type[T]) -> T:
        """The config as the agent's own typed structure.

        Raises `msgspec.ValidationError`, whose message names the offending key path.
        """
        return msgspec.convert(self.config, config_type)


class ConfigureResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """Agent → proxy: whether ``revision`` is now in force, and why not."""

    revision: Count
    ok: bool = True
    error: str = ""


class Health(msgspec.Struct, frozen=True, omit_defaults=True):
    """Agent → proxy, unsolicited: how the agent is doing (sent on connect and periodically)."""

    status: Literal["ok", "degraded", "failing"] = "ok"
    detail: str = ""
    in_flight: Count = 0
    served: Count = 0
    errors: Count = 0
    config_revision: Count = 0


class AgentDecision(msgspec.Struct, frozen=True, omit_defaults=True):
    """Agent → proxy: the answer to one event of request ``correlation_id``."""

    correlation_id: CorrelationId
    decision: Decision = Decision()


class EventError(msgspec.Struct, frozen=True, omit_defaults=True):
    """Agent → proxy: no decision for this event; the proxy applies its fail-open/closed policy.

    ``code`` is one of ``agent_error`` (the handler failed), ``over_capacity`` (more events in
    flight than the agent's ``max_concurrency``), ``duplicate`` (an event for a correlation id
    that is still being decided) or ``unsupported`` (an event the agent cannot handle).
    """

    correlation_id: CorrelationId
    code: str
    message: str = ""


DecisionEvent = RequestHeaders | RequestBodyChunk | ResponseHeaders | ResponseBodyChunk

Message = (
    Hello
    | AgentHello
    | GoAway
    | Ping
    | Pong
    | RequestHeaders
    | RequestBodyChunk
    | ResponseHeaders
    | ResponseBodyChunk
    | RequestComplete
    | Cancel
    | Configure
    | ConfigureResult
    | Health
    | AgentDecision
    | EventError
)


class MessageType(enum.IntEnum):
    """The u8 after a frame's length. Grouped by purpose; gaps are reserved."""

    HELLO = 0x01
    AGENT_HELLO = 0x02
    GOAWAY = 0x03
    PING = 0x04
    PONG = 0x05
    REQUEST_HEADERS = 0x10
    REQUEST_BODY = 0x11
    RESPONSE_HEADERS = 0x12
    RESPONSE_BODY = 0x13
    REQUEST_COMPLETE = 0x14
    CANCEL = 0x15
    CONFIGURE = 0x20
    CONFIGURE_RESULT = 0x21
    HEALTH = 0x22
    DECISION = 0x30
    EVENT_ERROR = 0x31


MESSAGE_TABLE: Mapping[MessageType, type[Message]] = {
    MessageType.HELLO: Hello,
    MessageType.AGENT_HELLO: AgentHello,
    MessageType.GOAWAY: GoAway,
    MessageType.PING: Ping,
    MessageType.PONG: Pong,
    MessageType.REQUEST_HEADERS: RequestHeaders,
    MessageType.REQUEST_BODY: RequestBodyChunk,
    MessageType.RESPONSE_HEADERS: ResponseHeaders,
    MessageType.RESPONSE_BODY: ResponseBodyChunk,
    MessageType.REQUEST_COMPLETE: RequestComplete,
    MessageType.CANCEL: Cancel,
    MessageType.CONFIGURE: Configure,
    MessageType.CONFIGURE_RESULT: ConfigureResult,
    MessageType.HEALTH: Health,
    MessageType.DECISION: AgentDecision,
    MessageType.EVENT_ERROR: EventError,
}
_TYPE_BY_CLASS: Mapping[type[Message], MessageType] = {c: t for t, c in MESSAGE_TABLE.items()}


def message_type(message: Message) -> MessageType:
    """The type byte that frames ``message``."""
    return _TYPE_BY_CLASS[type(message)]


def message_class(code: int) -> type[Message] | None:
    """The message class for a type byte, or None when this version does not define it."""
    try:
        return MESSAGE_TABLE[MessageType(code)]
    except ValueError:
        return None
