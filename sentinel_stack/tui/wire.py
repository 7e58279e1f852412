"""Typed views of what the control API sends, decoded without importing the launcher's code.

The TUI runs on asyncio and must not pull in Trio through `sentinel_stack.supervisor`, so the
few shapes it reads are declared here again, as readers: every field has a default and
unknown fields are ignored, so a newer launcher never breaks an older TUI.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

E = TypeVar("E")


class ChildRow(msgspec.Struct, frozen=True):
    """One child as `status` reports it."""

    name: str
    kind: str = "process"
    state: str = "stopped"
    pid: int | None = None
    uptime: float | None = None
    restarts: int = 0
    last_exit: str | None = None
    reason: str = ""
    status: str = ""
    critical: bool = False
    depends_on: list[str] = []
    cpu_percent: float | None = None
    rss: int | None = None
    threads: int | None = None
    fds: int | None = None


class StackInfo(msgspec.Struct, frozen=True):
    name: str = ""
    pid: int | None = None
    run_dir: str = ""
    config: str = ""
    containment: str = ""
    uptime: float = 0.0
    failure: str | None = None


class HubCounters(msgspec.Struct, frozen=True):
    received: int = 0
    malformed: int = 0
    dropped: int = 0
    oversized: int = 0
    connections: int = 0
    by_kind: dict[str, int] = {}


class StackStatus(msgspec.Struct, frozen=True):
    """The `status` op's result."""

    stack: StackInfo = StackInfo()
    children: list[ChildRow] = []
    events: HubCounters = HubCounters()


# ---- the launcher's bus (topics state, log, stack) --------------------------------------------


class StateEvent(msgspec.Struct, tag="state", tag_field="type", frozen=True):
    child: str
    state: str
    previous: str = ""
    reason: str = ""
    pid: int | None = None
    time: float = 0.0


class LogEvent(msgspec.Struct, tag="log", tag_field="type", frozen=True):
    child: str
    stream: str = "stdout"
    time: float = 0.0
    line: str = ""


class NoticeEvent(msgspec.Struct, tag="stack", tag_field="type", frozen=True):
    message: str
    level: str = "info"
    time: float = 0.0


BusEvent = StateEvent | LogEvent | NoticeEvent


# ---- the event hub (topic events:access) ------------------------------------------------------


class AgentCallView(msgspec.Struct, frozen=True):
    agent: str
    action: str = "allow"
    latency_ms: float = 0.0
    error: str = ""


class AccessView(msgspec.Struct, frozen=True):
    """The fields of the proxy's access record that the TUI shows."""

    time: float = 0.0
    status: int = 0
    latency_ms: float = 0.0
    method: str = ""
    path: str = ""
    route: str = ""
    upstream: str = ""
    target: str = ""
    client_ip: str = ""
    decided_by: str = ""
    agents: list[AgentCallView] = []
    tags: list[str] = []
    rule_ids: list[str] = []
    error: str = ""
    request_id: str = ""


class Envelope(msgspec.Struct, Generic[E], frozen=True):
    """One line of a control conversation: a reply (`ok`) or a streamed `event`."""

    id: int = 0
    ok: bool | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    event: E | None = None


class EnvelopeDecoder(Generic[E]):
    """Decodes many lines in one parser pass (as one JSON array), events typed as ``E``.

    A line that does not fit (a newer launcher's event, a malformed line) is skipped alone.
    """

    def __init__(self, event_type: type[E]) -> None:
        self._decoder = msgspec.json.Decoder(list[Envelope[event_type]])  # type: ignore[valid-type]

    def decode(self, lines: list[bytes]) -> list[Envelope[E]]:
        if not lines:
            return []
        try:
            return self._decoder.decode(b"[" + b",".join(lines) + b"]")
        except msgspec.DecodeError:
            good: list[Envelope[E]] = []
            for line in lines:
                try:
                    good.extend(self._decoder.decode(b"[" + line + b"]"))
                except msgspec.DecodeError:
                    continue
            return good


RAW: EnvelopeDecoder[msgspec.Raw] = EnvelopeDecoder(msgspec.Raw)
BUS: EnvelopeDecoder[BusEvent] = EnvelopeDecoder(BusEvent)  # type: ignore[arg-type]
ACCESS: EnvelopeDecoder[AccessView] = EnvelopeDecoder(AccessView)
GENERIC: EnvelopeDecoder[dict[str, Any]] = EnvelopeDecoder(dict)


def status_from(result: Any) -> StackStatus:
    return msgspec.convert(result, StackStatus)
