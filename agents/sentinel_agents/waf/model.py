"""The WAF's vocabulary: the request an engine inspects and the verdict it returns.

These are msgspec Structs, not dicts, because they cross layers (proxy → agent → engine) and
processes (a worker pool pickles them). They are frozen so that one request can be handed to
several engines, or to a worker, without anyone mutating it underneath the others.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from urllib.parse import unquote_plus

import msgspec


class WafMode(enum.StrEnum):
    """What an engine does with a request whose anomaly score reaches the threshold."""

    BLOCK = "block"
    DETECT = "detect"


class BodyLimitAction(enum.StrEnum):
    """What happens to a body longer than the inspection limit.

    ``REJECT`` is the safe default: inspecting only a prefix lets an attacker pad a payload past
    the limit. ``PARTIAL`` inspects the prefix and lets the rest through unseen, which suits
    upload routes whose tails are not interesting.
    """

    REJECT = "reject"
    PARTIAL = "partial"


class Severity(enum.IntEnum):
    """Syslog severities, the scale ModSecurity and the OWASP CRS use (lower is worse)."""

    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7


# How much one finding adds to the inbound anomaly score: the CRS defaults, so that a threshold
# means the same thing to both engines.
SEVERITY_SCORE: dict[Severity, int] = {
    Severity.EMERGENCY: 5,
    Severity.ALERT: 5,
    Severity.CRITICAL: 5,
    Severity.ERROR: 4,
    Severity.WARNING: 3,
    Severity.NOTICE: 2,
}


class HttpRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One HTTP request as the proxy saw it, up to the body inspection limit.

    ``path`` and ``query`` are raw (still percent-encoded), as on the request line, because
    decoding is part of what an engine inspects: an attack may hide in the encoding itself.
    Header names may have any case; lookups through :meth:`header` ignore it. Cookies are read
    from the ``Cookie`` header rather than carried twice, so that both engines and the upstream
    see the very same bytes.
    """

    method: str
    path: str
    query: str = ""
    http_version: str = "1.1"
    headers: dict[str, list[str]] = msgspec.field(default_factory=dict)
    body: bytes = b""
    client_ip: str = "127.0.0.1"
    client_port: int = 0
    server_ip: str = "127.0.0.1"
    server_port: int = 80
    route: str | None = None

    @property
    def uri(self) -> str:
        """The request target as it appeared on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path

    def header(self, name: str) -> list[str]:
        """All values of one header, in arrival order, matched case-insensitively."""
        wanted = name.lower()
        values: list[str] = []
        for key, vals in self.headers.items():
            if key.lower() == wanted:
                values.extend(vals)
        return values

    def header_items(self) -> Iterator[tuple[str, str]]:
        """Every (name, value) pair, one per value, in arrival order."""
        for key, vals in self.headers.items():
            for value in vals:
                yield key, value

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased; empty when absent."""
        values = self.header("content-type")
        return values[0].split(";", 1)[0].strip().lower() if values else ""

    @property
    def cookies(self) -> list[tuple[str, str]]:
        """Cookie (name, value) pairs from every ``Cookie`` header, values percent-decoded."""
        pairs: list[tuple[str, str]] = []
        for line in self.header("cookie"):
            for part in line.split(";"):
                name, sep, value = part.strip().partition("=")
                if name or sep:
                    pairs.append((name, unquote_plus(value)))
        return pairs


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One rule that matched: enough for an audit record and for a person to tune exclusions."""

    rule_id: int
    message: str
    severity: Severity
    tags: tuple[str, ...] = ()
    matched_data: str = ""
    target: str = ""

    @property
    def score(self) -> int:
        """What this finding adds to the anomaly score."""
        return SEVERITY_SCORE.get(self.severity, 0)


class WafVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """What one engine decided about one request.

    ``would_block`` says the request crossed the threshold (or hit a disruptive rule);
    ``blocked`` says the engine wants it stopped, which only happens in block mode. In
    detect-only mode a caller therefore still learns what *would* have happened.
    """

    engine: str
    mode: WafMode
    blocked: bool
    would_block: bool
    status: int
    anomaly_score: int
    threshold: int
    findings: tuple[Finding, ...] = ()
    reason: str = ""

    @property
    def attack_tags(self) -> tuple[str, ...]:
        """The distinct ``attack-*`` tags of all findings, sorted: what kind of attack this was."""
        return tuple(sorted({t for f in self.findings for t in f.tags if t.startswith("attack-")}))

    @property
    def rule_ids(self) -> tuple[int, ...]:
        """The distinct rule ids that matched, sorted."""
        return tuple(sorted({f.rule_id for f in self.findings}))
