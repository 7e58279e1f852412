"""What one event means as a step of a threat chain, and how bad a chain of steps is.

`describe_event` turns a kernel event of a web server's process tree into a step summary and
an ATT&CK technique, or None when the event is routine (a server's own outbound connect, a
fork). The rules engine's alerts later refine a step (its rule, its own technique); these
defaults keep chains meaningful when no rule matched.

`chain_severity` escalates with the phases the chain's techniques reach: initial access
plus execution is high; execution plus credential access, privilege escalation,
persistence or defence evasion is critical. Pure functions.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from sentinel_stack.detect.alert import Severity, severity_rank
from sentinel_stack.probe import events as ev

__all__ = ["SHELLS", "chain_severity", "describe_event", "phase_of", "tactic_of"]

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox", "fish", "csh", "tcsh"})

# ATT&CK technique id prefixes per phase (a sub-technique shares its parent's prefix).
_PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("initial-access", ("T1190", "T1133", "T1078")),
    ("execution", ("T1059", "T1620", "T1203", "T1106")),
    ("persistence", ("T1053", "T1098", "T1543", "T1136", "T1505")),
    ("privilege-escalation", ("T1548", "T1068", "T1055")),
    ("defense-evasion", ("T1070", "T1562", "T1027")),
    ("credential-access", ("T1552", "T1003", "T1555", "T1110")),
    ("discovery", ("T1083", "T1046", "T1082", "T1057")),
    ("command-and-control", ("T1090", "T1105", "T1071", "T1095", "T1572")),
)
_POST_EXPLOIT = frozenset(
    {"credential-access", "privilege-escalation", "persistence", "defense-evasion"}
)
_EINPROGRESS = -115
_SETID_BITS = 0o6000


def phase_of(technique: str | None) -> str | None:
    if not technique:
        return None
    for phase, prefixes in _PHASES:
        if technique.startswith(prefixes):
            return phase
    return None


def tactic_of(techniques: Iterable[str]) -> str | None:
    """The furthest phase reached (the order of `_PHASES`), for an alert's ``tactic``."""
    order = {phase: rank for rank, (phase, _) in enumerate(_PHASES)}
    reached = [p for p in (phase_of(t) for t in techniques) if p is not None]
    return max(reached, key=order.__getitem__) if reached else None


def chain_severity(techniques: Iterable[str], step_severities: Iterable[str]) -> Severity:
    """Medium to start with; the phases reached raise it; a step's own alert severity (a
    critical reverse-shell rule, say) is a floor."""
    phases = {p for p in (phase_of(t) for t in techniques) if p is not None}
    severity: Severity = "medium"
    if "execution" in phases and phases & _POST_EXPLOIT:
        severity = "critical"
    elif ("initial-access" in phases and phases & ({"execution"} | _POST_EXPLOIT)) or (
        "execution" in phases and "command-and-control" in phases
    ):
        severity = "high"
    for other in step_severities:
        if severity_rank(other) > severity_rank(severity) and other in _SEVERITIES:
            severity = _SEVERITIES[other]
    return severity


_SEVERITIES: dict[str, Severity] = {
    "info": "info",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "critical",
}


def describe_event(event: ev.KernelEvent, descendant: bool) -> tuple[str, str | None] | None:
    """(summary, technique) of a notable event; None for routine activity.

    ``descendant``: the process is below the upstream's server process (a child the server
    started), where every exec and connect is notable; the server itself is judged only by
    intrinsically suspicious acts.
    """
    who = f"{event.comm or '?'}[{event.pid}]"
    failed = _failed(getattr(event, "result", None))
    if isinstance(event, ev.ExecEvent):
        if not descendant:
            return None
        program = event.exe or event.filename or event.comm
        argv = " ".join(event.argv or [])[:200]
        shell = posixpath.basename(program or "") in SHELLS
        return f"{who} exec {program}" + (f": {argv}" if argv else ""), (
            "T1059.004" if shell else "T1059"
        )
    if isinstance(event, ev.OpenEvent):
        return _describe_open(event, who, failed)
    if isinstance(event, ev.ConnectEvent):
        if not descendant or event.remote is None:
            return None
        if event.result is not None and event.result not in (0, _EINPROGRESS):
            return None
        return f"{who} connect {event.remote.address}:{event.remote.port}", "T1095"
    if isinstance(event, ev.DupSocketEvent):
        return f"{who} socket duplicated onto fd {event.newfd} (shell over a socket)", "T1059.004"
    if isinstance(event, ev.MemfdEvent):
        return f"{who} memfd_create {event.name!r}{failed}", "T1620"
    if isinstance(event, ev.PtraceEvent):
        return f"{who} ptrace {event.request} pid {event.target_pid}{failed}", "T1055.008"
    if isinstance(event, ev.ChmodEvent):
        if event.mode & _SETID_BITS:
            return f"{who} chmod {oct(event.mode)} {event.path}{failed}", "T1548.001"
        return (f"{who} chmod {oct(event.mode)} {event.path}{failed}", None) if descendant else None
    if isinstance(event, ev.PrivilegeEvent):
        return f"{who} {event.call}({event.requested}){failed}", "T1548"
    if isinstance(event, ev.CapsetEvent):
        return f"{who} capset on pid {event.target_pid}{failed}", "T1548"
    if isinstance(event, ev.FileChangeEvent):
        technique = "T1070.002" if event.path.startswith("/var/log") else None
        return f"{who} {event.op} {event.path}{failed}", technique
    return None


def _describe_open(event: ev.OpenEvent, who: str, failed: str) -> tuple[str, str | None] | None:
    if not event.reasons:
        return None
    path = event.path
    summary = f"{who} open {path} ({', '.join(event.reasons)}){failed}"
    if "sensitive" in event.reasons:
        shadow = posixpath.basename(path) in ("shadow", "gshadow", "opasswd")
        return summary, "T1003.008" if shadow else "T1552.001"
    if "watched_write" in event.reasons:
        if "authorized_keys" in path:
            return summary, "T1098.004"
        if "cron" in path:
            return summary, "T1053.003"
        return summary, None
    return summary, "T1083"  # traversal


def _failed(result: object) -> str:
    return f" (failed: {result})" if isinstance(result, int) and result < 0 else ""
