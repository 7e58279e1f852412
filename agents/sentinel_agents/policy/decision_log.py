"""Decision-log records shaped like OPA's, so existing log pipelines and habits carry over.

Credentials do not belong in a log: ``authorization``, ``proxy-authorization`` and
``cookie`` header values are replaced before the input is recorded (the policy itself saw
them; the verified claims are in ``input.identity``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDACTED = "<redacted>"


class BundleInfo(msgspec.Struct, frozen=True):
    """Which policy answered: the revision (manifest or digest) and the content digest."""

    revision: str
    digest: str


class DecisionLogRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One decision, as OPA's decision log names the fields."""

    decision_id: str
    path: str
    input: dict[str, Any]
    result: Any
    timestamp: str
    bundles: dict[str, BundleInfo]
    error: str | None = None


def make_decision_log(
    *,
    path: str,
    input_document: dict[str, Any],
    result: Any,
    now: float,
    bundle_name: str,
    bundle: BundleInfo,
    error: str | None = None,
    decision_id: str | None = None,
) -> DecisionLogRecord:
    """A record for a decision made at ``now`` (epoch seconds); a fresh id unless given."""
    return DecisionLogRecord(
        decision_id=decision_id or str(uuid.uuid4()),
        path=path,
        input=redact_input(input_document),
        result=result,
        timestamp=datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        bundles={bundle_name: bundle},
        error=error,
    )


def redact_input(input_document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the input with credential headers masked (the original is left alone)."""
    request = input_document.get("request")
    if not isinstance(request, dict):
        return input_document
    headers = request.get("headers")
    if not isinstance(headers, dict) or not REDACTED_HEADERS.intersection(headers):
        return input_document
    masked = {k: (REDACTED if k in REDACTED_HEADERS else v) for k, v in headers.items()}
    return {**input_document, "request": {**request, "headers": masked}}


def encode_decision_log(record: DecisionLogRecord) -> bytes:
    """One JSON line (no trailing newline) for the event hub or a log file."""
    return msgspec.json.encode(record)
