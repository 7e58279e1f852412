"""The policy's contract: the input document it reads and the decision it must produce.

Input (``input``)::

    request:  {method, path, query: {name: [values]}, headers: {name: value}, body_size}
    client:   {ip, port}
    route:    the proxy route name ("" when none)
    identity: {authenticated: bool, claims: {...}}   # claims only from a verified JWT

Header names are lower-case; repeated headers are joined with ", " (RFC 9110 list form).

Decision (the value of the configured rule, ``data.sentinel.authz.decision`` by default)::

    {allow: bool, deny: [reason, ...], headers: {name: value}, status: int}

``allow`` must be literally true to allow: a missing or non-boolean ``allow``, or an
undefined decision, denies (fail closed). ``status`` defaults to 200 when allowed and 403
when denied; ``deny`` may be a set or a list of strings; ``headers`` are added to the
upstream request when allowed (the response carries them when denied).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from sentinel_agents.policy.identity import ANONYMOUS, Identity


@dataclass(frozen=True, slots=True)
class PolicyRequest:
    """The request facts the wrapper hands over (header names lower-case)."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = field(default_factory=dict)
    body_size: int = 0
    client_ip: str = ""
    client_port: int = 0
    route: str = ""


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the proxy must do. ``error`` is set when the policy could not be evaluated.

    ``reasons`` are the policy's deny reasons (for the block body and the audit record).
    """

    allow: bool
    status: int
    reasons: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


def build_input(request: PolicyRequest, identity: Identity = ANONYMOUS) -> dict[str, Any]:
    """The ``input`` document for ``request`` as seen by ``identity``."""
    return {
        "request": {
            "method": request.method.upper(),
            "path": request.path,
            "query": parse_qs(request.query, keep_blank_values=True),
            "headers": _headers(request.headers),
            "body_size": request.body_size,
        },
        "client": {"ip": request.client_ip, "port": request.client_port},
        "route": request.route,
        "identity": identity.as_input(),
    }


def decision_from_result(result: object) -> PolicyDecision:
    """Read the policy's value into a `PolicyDecision`, failing closed on anything odd.

    A malformed decision is a policy bug: it denies with ``error`` set so it is alerted on.
    """
    if not isinstance(result, dict):
        return PolicyDecision(False, 403, ("policy decision is undefined",), error=None)
    problems: list[str] = []
    allow_raw = result.get("allow", False)
    if not isinstance(allow_raw, bool):
        problems.append(f"allow must be a boolean, got {allow_raw!r}")
    allow = allow_raw is True
    deny_raw = result.get("deny", [])
    reasons: tuple[str, ...] = ()
    if isinstance(deny_raw, list) and all(isinstance(r, str) for r in deny_raw):
        reasons = tuple(sorted(deny_raw))
    else:
        problems.append("deny must be a set or array of strings")
    headers_raw = result.get("headers", {})
    headers: dict[str, str] = {}
    if isinstance(headers_raw, dict) and all(isinstance(v, str) for v in headers_raw.values()):
        headers = {str(k).lower(): v for k, v in headers_raw.items()}
    else:
        problems.append("headers must be an object of strings")
    status_raw = result.get("status", 200 if allow else 403)
    status = 200 if allow else 403
    if (
        isinstance(status_raw, int)
        and not isinstance(status_raw, bool)
        and 100 <= status_raw <= 599
    ):
        status = status_raw
    else:
        problems.append(f"status must be an HTTP status code, got {status_raw!r}")
    if problems:
        return PolicyDecision(False, 403, reasons, headers, error="; ".join(problems))
    if allow and reasons:
        # Contradiction in the policy: a reason to deny wins.
        return PolicyDecision(False, status if status >= 400 else 403, reasons, headers)
    return PolicyDecision(allow, status, reasons, headers)


def _headers(raw: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, str]:
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    merged: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        merged[key] = f"{merged[key]}, {value}" if key in merged else value
    return merged
