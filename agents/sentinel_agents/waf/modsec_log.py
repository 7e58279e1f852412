"""Turning ModSecurity's text log lines into findings, safely.

A line looks like::

    ModSecurity: Warning. Matched "Operator `Rx' ... (Value: `<request data>' )
    [file "…"] [line "…"] [id "…"] [rev "…"] [msg "…"] [data "…"] [severity "2"] [ver "…"]
    [maturity "0"] [accuracy "0"] [tag "…"]… [hostname "…"] [uri "<request path>"]
    [unique_id "…"] [ref "…"]

Two parts carry request data *unescaped* (the ``Value`` excerpt at the front and ``uri`` near
the end), so an attacker can write ``"] [id "1"]`` into them. The parser therefore never scans
the line from the front. It cuts at ``[hostname "<nonce>"]`` (the engine passes a per-process
random string as the server address, which no request can contain), then peels fields off
the right-hand side, where every value is either ours (file, id, tags, severity) or escaped by
ModSecurity (``data`` turns quotes into ``\\x22``). All of it is ``str.find`` work: linear time,
no regular expression runs over request data.
"""

from __future__ import annotations

import msgspec

from sentinel_agents.waf.model import Finding, Severity
from sentinel_agents.waf.modsec_rules import RuleInfo

# Tags implied by CRS rule-id ranges, for rules whose log line lost its tags (multiMatch).
_ATTACK_BY_RANGE: tuple[tuple[int, int, str], ...] = (
    (913000, 913999, "attack-reputation-scanner"),
    (920000, 920999, "attack-protocol"),
    (921000, 921999, "attack-protocol"),
    (930000, 930999, "attack-lfi"),
    (931000, 931999, "attack-rfi"),
    (932000, 932999, "attack-rce"),
    (933000, 933999, "attack-injection-php"),
    (934000, 934999, "attack-injection-generic"),
    (941000, 941999, "attack-xss"),
    (942000, 942999, "attack-sqli"),
    (943000, 943999, "attack-fixation"),
    (944000, 944999, "attack-injection-java"),
)


class LogEntry(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of one log line that the engine uses."""

    rule_id: int
    message: str
    data: str
    severity: Severity | None
    tags: tuple[str, ...]


def parse_log_line(line: str, hostname: str) -> LogEntry | None:
    """Parse one line; None when it is not a rule message of this engine's transactions."""
    anchor = f' [hostname "{hostname}"]'
    cut = line.find(anchor)
    if cut < 0:
        return None
    head = line[:cut]
    fields: dict[str, str] = {}
    tags: list[str] = []
    # Right to left: tags, accuracy, maturity, ver, severity, data.
    while "data" not in fields:
        peeled = _peel(head)
        if peeled is None:
            return None
        head, key, value = peeled
        if key == "tag":
            tags.append(value)
        else:
            fields[key] = value
    # msg is ours except in a few CRS rules that quote request data into it; take the last
    # ' [msg "' so that whatever precedes it (rev, id) is still ours.
    msg_at = head.rfind(' [msg "')
    if msg_at < 0 or not head.endswith('"]'):
        return None
    fields["msg"] = head[msg_at + len(' [msg "') : -2]
    head = head[:msg_at]
    while "id" not in fields:
        peeled = _peel(head)
        if peeled is None:
            return None
        head, key, value = peeled
        fields[key] = value
    if not fields["id"].isdigit():
        return None
    severity_text = fields.get("severity", "")
    severity = (
        Severity(int(severity_text))
        if severity_text.isdigit() and int(severity_text) <= 7
        else None
    )
    return LogEntry(
        rule_id=int(fields["id"]),
        message=fields["msg"],
        data=unescape(fields["data"]),
        severity=severity,
        tags=tuple(reversed(tags)),
    )


def _peel(head: str) -> tuple[str, str, str] | None:
    """Split ``… [key "value"]`` into (``…``, key, value) for a quote-free value."""
    if not head.endswith('"]'):
        return None
    quote = head.rfind('"', 0, len(head) - 2)
    bracket = head.rfind(" [", 0, quote)
    if quote < 0 or bracket < 0:
        return None
    key = head[bracket + 2 : quote].strip()
    if not key.isidentifier():
        return None
    return head[:bracket], key, head[quote + 1 : -2]


def unescape(text: str) -> str:
    r"""Undo ModSecurity's ``\xHH`` escaping (quotes, control bytes, non-ASCII), as UTF-8."""
    if "\\x" not in text:
        return text
    out = bytearray()
    parts = text.split("\\x")
    out += parts[0].encode()
    for part in parts[1:]:
        code = part[:2]
        if len(code) == 2 and all(c in "0123456789abcdefABCDEF" for c in code):
            out.append(int(code, 16))
            out += part[2:].encode()
        else:
            out += b"\\x" + part.encode()
    return out.decode("utf-8", "replace")


def to_finding(entry: LogEntry, info: RuleInfo | None) -> Finding:
    """A finding from a parsed line, completed from the rule's definition where it is silent."""
    tags = entry.tags or (info.tags if info else ())
    if not any(t.startswith("attack-") for t in tags):
        implied = _implied_attack_tag(entry.rule_id)
        if implied:
            tags = (*tags, implied)
    severity = entry.severity
    if info is not None and info.severity is not None:
        severity = info.severity
    elif severity is None or (info is not None and severity is Severity.EMERGENCY):
        # ModSecurity prints "0" for a rule that sets no severity; such a rule scores nothing.
        severity = Severity.INFO
    return Finding(
        rule_id=entry.rule_id,
        message=entry.message or (info.message if info else ""),
        severity=severity,
        tags=tags,
        matched_data=entry.data,
        target=_target(entry.data),
    )


def _implied_attack_tag(rule_id: int) -> str:
    for low, high, tag in _ATTACK_BY_RANGE:
        if low <= rule_id <= high:
            return tag
    return ""


def _target(data: str) -> str:
    """``ARGS:q`` out of the CRS logdata convention ``… found within ARGS:q: value``."""
    marker = " found within "
    at = data.find(marker)
    if at < 0:
        return ""
    rest = data[at + len(marker) :]
    end = rest.find(": ")
    return rest[:end] if end >= 0 else rest
