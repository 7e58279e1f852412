"""What the detector reads: every hub line and supervisor state change, as one typed event.

The detector subscribes to the launcher's control socket (topics ``events`` and ``state``);
each streamed line is ``{"id": n, "event": {...}}``. Hub events carry a ``"kind"`` tag
(kernel events from the probe, access records from the proxy, alerts, probe health);
supervisor state changes carry ``"type": "state"``. `decode_event` turns any of them into
a typed struct: the probe's kernel event classes, the proxy's `AccessRecord`, `HubAlert`
(an alert from anyone, read leniently: the probe writes severities such as "warning" that
the detector's own `Alert` does not allow), `ChildState`, or `OtherEvent` for kinds this
version does not know (they still reach analyzers, and rules can match on `evt.kind`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from sentinel_stack.probe import events as ev
from sentinel_stack.proxy.telemetry import AccessRecord

__all__ = [
    "ChildState",
    "DetectEvent",
    "HubAlert",
    "OtherEvent",
    "decode_event",
    "decode_stream_line",
]


class HubAlert(msgspec.Struct, kw_only=True, tag="alert", tag_field="kind", gc=False):
    """An alert seen on the hub (the probe's loss alerts, agents', another detector's)."""

    time: float
    source: str = ""
    rule: str = ""
    severity: str = "medium"
    summary: str = ""
    technique: str | None = None
    lost_events: int = 0
    window_seconds: float = 0.0
    client_ip: str | None = None
    request_id: str | None = None


class ChildState(msgspec.Struct, kw_only=True, tag="state", tag_field="type", gc=False):
    """A supervisor state change of one child (the `StateChange` of supervisor/events.py)."""

    child: str
    state: str
    previous: str = ""
    reason: str = ""
    pid: int | None = None
    time: float

    @property
    def kind(self) -> str:
        return "state"


class OtherEvent(msgspec.Struct, kw_only=True, gc=False):
    """A hub event of a kind this detector has no schema for."""

    kind: str
    time: float = 0.0
    source: str = ""
    data: dict[str, Any] = {}


HubKnown = (
    ev.ExecEvent
    | ev.ForkEvent
    | ev.ExitEvent
    | ev.ConnectEvent
    | ev.AcceptEvent
    | ev.TcpStateEvent
    | ev.OpenEvent
    | ev.FileChangeEvent
    | ev.PrivilegeEvent
    | ev.CapsetEvent
    | ev.PtraceEvent
    | ev.MemfdEvent
    | ev.ChmodEvent
    | ev.DupSocketEvent
    | ev.ProbeHealth
    | AccessRecord
    | HubAlert
)

DetectEvent = HubKnown | ChildState | OtherEvent
"""Everything an analyzer may be shown. `event.kind` names the kind of each."""


class _Envelope(msgspec.Struct, gc=False):
    id: int = 0
    event: msgspec.Raw = msgspec.Raw()  # empty: a reply, not a streamed event
    ok: bool | None = None


class _Peek(msgspec.Struct, gc=False):
    kind: str | None = None
    type: str | None = None
    time: float = 0.0
    source: str = ""


_KNOWN: msgspec.json.Decoder[HubKnown] = msgspec.json.Decoder(HubKnown)
_STATE = msgspec.json.Decoder(ChildState)
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_PEEK = msgspec.json.Decoder(_Peek)
_DICT = msgspec.json.Decoder(dict[str, Any])


def decode_event(raw: bytes | msgspec.Raw) -> DetectEvent | None:
    """The typed event for one JSON object, or None when it is not an event at all.

    The common case (a known hub kind) costs one decode; the rest fall back to a peek at
    ``kind``/``type``. A known kind whose fields do not fit the schema (a newer producer)
    becomes an `OtherEvent` rather than being lost.
    """
    try:
        return _KNOWN.decode(raw)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return None
    try:
        peek = _PEEK.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if peek.type == "state" and peek.kind is None:
        try:
            return _STATE.decode(raw)
        except msgspec.ValidationError:
            return None
    if peek.kind is None:
        return None
    data = _DICT.decode(raw)
    return OtherEvent(kind=peek.kind, time=peek.time, source=peek.source, data=data)


def decode_stream_line(line: bytes) -> DetectEvent | None:
    """The event inside one control-API stream line (``{"id": n, "event": {...}}``)."""
    try:
        envelope = _ENVELOPE.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not envelope.event:
        return None
    return decode_event(envelope.event)
