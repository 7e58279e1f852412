"""The alert: what the detector (and the probe, for its own losses) writes to the event hub.

One JSON object per alert, `"kind": "alert"` being the msgspec tag. Every consumer (the TUI,
`sentinel-stack alerts`, the JSON-lines sink, webhooks, the audit log) reads this one shape.
"""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")

_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}

FieldValue = str | int | float | bool | None


def severity_rank(severity: str) -> int:
    """0 for info … 4 for critical; unknown spellings rank as medium."""
    return _RANK.get(severity, 2)


def new_alert_id() -> str:
    return uuid.uuid4().hex


class ProcessInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    pid: int
    comm: str = ""
    exe: str | None = None
    argv: list[str] | None = None
    uid: int | None = None
    lineage: list[dict[str, FieldValue]] = []


class ChainStep(msgspec.Struct, kw_only=True, omit_defaults=True):
    time: float
    kind: str
    summary: str
    technique: str | None = None


class Alert(msgspec.Struct, kw_only=True, tag="alert", tag_field="kind"):
    id: str = msgspec.field(default_factory=new_alert_id)
    time: float
    source: str = "detector"
    rule: str
    severity: Severity
    summary: str
    tactic: str | None = None
    technique: str | None = None
    tags: list[str] = []
    fields: dict[str, FieldValue] = {}
    process: ProcessInfo | None = None
    client_ip: str | None = None
    request_id: str | None = None
    chain: list[ChainStep] = []
    chain_id: str | None = None
    count: int = 1


ALERT_ENCODER = msgspec.json.Encoder()
ALERT_DECODER = msgspec.json.Decoder(Alert)
