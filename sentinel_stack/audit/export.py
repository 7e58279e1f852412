"""Audit records for SIEMs: the JSON lines as they are, ArcSight CEF, or RFC 5424 syslog.

Pure functions, one record in, one line out (no newline). Escaping:

- CEF header fields: ``\\`` → ``\\\\`` and ``|`` → ``\\|``; CR/LF become spaces (a header
  has no escape for them). Extension values: ``\\`` → ``\\\\``, ``=`` → ``\\=``, LF → ``\\n``,
  CR → ``\\r`` (pipes need no escape there).
- syslog: in SD-PARAM values ``"``, ``\\`` and ``]`` get a backslash (RFC 5424 §6.3.3);
  MSG is UTF-8 without a BOM (MSG-ANY). Because the output is one message per line, CR
  and LF — in values and in MSG — are written as the two characters ``\\r`` / ``\\n``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sentinel_stack import __version__
from sentinel_stack.audit.record import AuditRecord
from sentinel_stack.config.durations import parse_duration

Level = str  # info | low | medium | high | critical
CEF_SEVERITY = {"info": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
SYSLOG_SEVERITY = {"info": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}
SYSLOG_FACILITY = 13  # "log audit" (RFC 5424 table 1)
DEFAULT_SD_ID = "audit@32473"  # 32473: the enterprise number RFC 5612 reserves for examples
_FIXED_LEVEL = {
    "block": "low",
    "remediation": "medium",
    "process_restart": "low",
    "process_exit": "medium",
    "process_fatal": "high",
    "process_stop": "info",
    "gap": "high",
}


def level(record: AuditRecord) -> Level:
    d = record.data
    match record.type:
        case "alert":
            sev = d.get("severity")
            return sev if sev in CEF_SEVERITY else "medium"
        case "policy_decision":
            return "info" if d.get("allowed", True) else "low"
        case "config_reload":
            return "low" if d.get("ok", True) else "medium"
        case "recovery":
            return "critical" if d.get("damaged") else "medium"
    return _FIXED_LEVEL.get(record.type, "info")


def summary(record: AuditRecord) -> str:
    """One human line about the record."""
    d = record.data
    match record.type:
        case "alert":
            return str(d.get("summary") or d.get("rule") or "alert")
        case "block":
            return (
                f"{d.get('action', 'block')} {d.get('method', '')} {d.get('path', '')} from "
                f"{d.get('client_ip', '?')} by {d.get('decided_by') or 'an agent'}"
            )
        case "policy_decision":
            verdict = "allowed" if d.get("allowed", True) else "denied"
            return f"policy {verdict} request {d.get('request_id', '?')} ({d.get('path', '')})"
        case "remediation":
            return str(d.get("summary") or f"remediation {d.get('action', '')}".strip())
        case "config_reload":
            if d.get("ok", True):
                return "config reloaded: " + (", ".join(d.get("changes") or []) or "no changes")
            return f"config reload refused: {d.get('error', '')}"
        case "process_restart" | "process_exit" | "process_fatal" | "process_stop":
            return f"{d.get('child')} {d.get('state')} ({d.get('reason', '')})"
        case "gap":
            return f"{d.get('dropped')} event(s) not audited: {d.get('reason', '')}"
        case "recovery":
            return f"audit log recovery: {d.get('reason', '')}"
        case "checkpoint":
            return f"checkpoint ({d.get('reason')}) signed by key {d.get('key_id')}"
        case "genesis":
            return f"audit log {d.get('log_id')} created for stack {d.get('stack')}"
        case "open":
            return f"audit writer started (pid {d.get('pid')})"
    return record.type


_FIELD_KEYS = (
    "rule",
    "severity",
    "technique",
    "tactic",
    "client_ip",
    "request_id",
    "decided_by",
    "action",
    "method",
    "path",
    "status",
    "child",
    "state",
    "reason",
    "dropped",
)


def _fields(record: AuditRecord) -> dict[str, str]:
    """The record's most useful data fields, as text, for both formats."""
    d = record.data
    out = {k: _text(d[k]) for k in _FIELD_KEYS if d.get(k) not in (None, "", [])}
    process = d.get("process")
    if isinstance(process, dict) and "pid" in process:
        out["pid"] = _text(process["pid"])
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


# ---- CEF ------------------------------------------------------------------------------------


def cef_header(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r", " ").replace("\n", " ")


def cef_value(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r", "\\r").replace("\n", "\\n")


_CEF_KEYS = {
    "client_ip": "src",
    "action": "act",
    "request_id": "cs3",
    "rule": "cs4",
    "technique": "cs5",
    "child": "cs6",
    "path": "request",
    "method": "requestMethod",
    "pid": "spid",
}
_CEF_LABELS = {"cs3": "requestId", "cs4": "rule", "cs5": "technique", "cs6": "child"}


def to_cef(record: AuditRecord) -> str:
    signature = f"alert:{record.data.get('rule')}" if record.type == "alert" else record.type
    header = "|".join(
        [
            "CEF:0",
            "sentinel-stack",
            "sentinel-stack",
            cef_header(__version__),
            cef_header(signature),
            cef_header(summary(record)),
            str(CEF_SEVERITY[level(record)]),
        ]
    )
    ext = {
        "rt": str(round(record.time * 1000)),
        "cat": record.type,
        "externalId": str(record.seq),
        "cs1Label": "hash",
        "cs1": record.hash,
        "cs2Label": "prev",
        "cs2": record.prev,
        "msg": summary(record),
    }
    for name, value in _fields(record).items():
        key = _CEF_KEYS.get(name)
        if key is not None:
            if key in _CEF_LABELS:
                ext[key + "Label"] = _CEF_LABELS[key]
            ext[key] = value
    return header + "|" + " ".join(f"{k}={cef_value(v)}" for k, v in ext.items())


# ---- syslog ---------------------------------------------------------------------------------

_PARAM_NAME = re.compile(r"[^!-~]|[=\]\"]")


def sd_value(text: str) -> str:
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
    return text.replace("\r", "\\r").replace("\n", "\\n")


def sd_name(text: str) -> str:
    """A PARAM-NAME: printable US-ASCII except ``= ] "`` and space, at most 32 chars."""
    return _PARAM_NAME.sub("_", text)[:32] or "_"


def to_syslog(record: AuditRecord, hostname: str, sd_id: str = DEFAULT_SD_ID) -> str:
    pri = SYSLOG_FACILITY * 8 + SYSLOG_SEVERITY[level(record)]
    stamp = datetime.fromtimestamp(record.time, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = sd_name(hostname)[:255] if hostname else "-"
    params = {"seq": str(record.seq), "hash": record.hash, "prev": record.prev}
    params.update(_fields(record))
    sd = "[" + sd_name(sd_id) + "".join(f' {sd_name(k)}="{sd_value(v)}"' for k, v in params.items())
    msg = summary(record).replace("\r", "\\r").replace("\n", "\\n")
    return f"<{pri}>1 {stamp} {host} sentinel-stack - {record.type} {sd}] {msg}"


# ---- selection ------------------------------------------------------------------------------


def parse_since(text: str, now: float) -> float:
    """Epoch seconds from ``1700000000``, ``2024-05-01T12:00:00`` (UTC unless it says
    otherwise) or a duration back from now (``"90m"``, ``"2d"``)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        pass
    else:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    try:
        return now - parse_duration(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use epoch seconds, an ISO 8601 time or a duration like 1h"
        ) from None
