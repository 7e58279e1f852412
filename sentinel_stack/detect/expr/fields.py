"""The fields a condition may name, their types, and how to read each from each event kind.

A field is defined for some event kinds; on the others it reads as null (so the rule
compiler folds a test of it to false and the rule is not even indexed for that kind).
Getters are plain callables on the event struct (C-level `attrgetter` where possible);
fields that depend on the stack (`proc.stack_child`, `net.egress_allowed`) close over
the `StackView`. List fields return lists, never null, on the kinds they exist for.
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from sentinel_stack.detect.context import StackView
from sentinel_stack.detect.events import ChildState, HubAlert
from sentinel_stack.probe import events as ev
from sentinel_stack.proxy.telemetry import AccessRecord

__all__ = ["FIELDS", "KINDS", "KIND_CLASSES", "Const", "FieldSpec", "FieldType", "Getter"]

FieldType = Literal["str", "int", "float", "bool", "strs", "ints"]
Getter = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Const:
    """A field whose value is fixed for a kind (null where the field does not exist)."""

    value: Any


MISSING = Const(None)

KIND_CLASSES: dict[str, type] = {
    "kernel.exec": ev.ExecEvent,
    "kernel.fork": ev.ForkEvent,
    "kernel.exit": ev.ExitEvent,
    "kernel.connect": ev.ConnectEvent,
    "kernel.accept": ev.AcceptEvent,
    "kernel.tcp_state": ev.TcpStateEvent,
    "kernel.open": ev.OpenEvent,
    "kernel.file_change": ev.FileChangeEvent,
    "kernel.privilege": ev.PrivilegeEvent,
    "kernel.capset": ev.CapsetEvent,
    "kernel.ptrace": ev.PtraceEvent,
    "kernel.memfd": ev.MemfdEvent,
    "kernel.chmod": ev.ChmodEvent,
    "kernel.dup_socket": ev.DupSocketEvent,
    "probe.health": ev.ProbeHealth,
    "access": AccessRecord,
    "alert": HubAlert,
    "state": ChildState,
}
KINDS: tuple[str, ...] = tuple(KIND_CLASSES)
KERNEL = frozenset(k for k in KINDS if k.startswith("kernel."))
NET = frozenset({"kernel.connect", "kernel.accept", "kernel.tcp_state"})
RESULT = frozenset(
    k
    for k, cls in KIND_CLASSES.items()
    if k in KERNEL and "result" in getattr(cls, "__struct_fields__", ())
)
PATHS = frozenset({"kernel.open", "kernel.chmod", "kernel.file_change"})
_WRITE = 0o1 | 0o2 | 0o100 | 0o1000 | 0o2000  # O_WRONLY O_RDWR O_CREAT O_TRUNC O_APPEND


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    type: FieldType
    doc: str
    kinds: frozenset[str] | None  # None: every kind, unknown ones too
    getter: Getter | None = None
    contextual: Callable[[StackView], Getter] | None = None
    per_kind: Callable[[str | None], Getter | Const] | None = None

    @property
    def kinds_text(self) -> str:
        """Where the field exists, said briefly ("kernel.*", "open, chmod", "all")."""
        if self.kinds is None:
            return "all"
        kinds = set(self.kinds)
        parts = []
        if kinds >= KERNEL:
            parts.append("kernel.*")
            kinds -= KERNEL
        parts += sorted(k.removeprefix("kernel.") for k in kinds)
        return ", ".join(parts)

    def access(self, kind: str | None, view: StackView) -> Getter | Const:
        """How to read this field from events of `kind` (None: a kind without a schema)."""
        if self.kinds is not None and kind not in self.kinds:
            return MISSING
        if self.per_kind is not None:
            return self.per_kind(kind)
        if self.contextual is not None:
            return self.contextual(view)
        assert self.getter is not None
        return self.getter


def _memo(fn: Getter) -> Getter:
    """Remember the value for the last event: several rules read the same derived field."""
    last: list[Any] = [None, None]

    def get(event: Any) -> Any:
        if event is last[0]:
            return last[1]
        value = fn(event)
        last[0], last[1] = event, value
        return value

    return get


def _cmdline(e: ev.KernelEvent) -> str:
    return " ".join(e.argv) if e.argv else e.comm


def _args(e: ev.KernelEvent) -> str:
    return " ".join(e.argv[1:]) if e.argv else ""


def _pname(e: ev.KernelEvent) -> str | None:
    return e.lineage[0].comm if e.lineage else None


def _pexe(e: ev.KernelEvent) -> str | None:
    return e.lineage[0].exe if e.lineage else None


_LOOPBACK: dict[str, bool] = {}


def _is_loopback(address: str) -> bool:
    found = _LOOPBACK.get(address)
    if found is None:
        try:
            parsed = ipaddress.ip_address(address)
            mapped = getattr(parsed, "ipv4_mapped", None)
            found = (mapped or parsed).is_loopback
        except ValueError:
            found = False
        if len(_LOOPBACK) > 4096:
            _LOOPBACK.clear()
        _LOOPBACK[address] = found
    return found


def _remote_loopback(e: ev.ConnectEvent) -> bool | None:
    return _is_loopback(e.remote.address) if e.remote is not None else None


def _file_action(e: Any) -> str:
    if isinstance(e, ev.OpenEvent):
        flags = e.flags or 0
        return "truncate" if flags & 0o1000 else "write" if flags & _WRITE else "read"
    if isinstance(e, ev.ChmodEvent):
        return "chmod"
    return str(e.op)


def _stack_child(view: StackView) -> Getter:
    return view.stack_child


def _stack_main(view: StackView) -> Getter:
    return view.is_stack_main


def _egress_allowed(view: StackView) -> Getter:
    def allowed(e: ev.ConnectEvent) -> bool | None:
        if e.remote is None:
            return None
        return view.egress_allowed(view.stack_child(e), e.remote.address, e.remote.port)

    return allowed


def _upstream_child(view: StackView) -> Getter:
    return lambda e: view.upstream_process.get(e.upstream)


def _child_kind(view: StackView) -> Getter:
    return lambda e: view.kinds.get(e.child)


def _evt_source(kind: str | None) -> Getter | Const:
    return Const("supervisor") if kind == "state" else attrgetter("source")


def _evt_kind(kind: str | None) -> Getter | Const:
    return attrgetter("kind") if kind is None else Const(kind)


def _endpoint(side: str, part: str) -> Getter:
    def get(e: Any) -> Any:
        endpoint = getattr(e, side)
        return None if endpoint is None else getattr(endpoint, part)

    return get


def _net_protocol(kind: str | None) -> Getter | Const:
    return Const("tcp") if kind == "kernel.tcp_state" else attrgetter("protocol")


_SPECS: list[FieldSpec] = []


def _f(
    name: str,
    type_: FieldType,
    doc: str,
    kinds: frozenset[str] | set[str] | None,
    getter: Getter | str | None = None,
    **extra: Any,
) -> None:
    if isinstance(getter, str):
        getter = attrgetter(getter)
    frozen = frozenset(kinds) if kinds is not None else None
    _SPECS.append(FieldSpec(name, type_, doc, frozen, getter, **extra))


ALL = None
K, A, S = KERNEL, {"access"}, {"state"}
# evt: every event
_f("evt.kind", "str", "event kind: kernel.exec, access, alert, state, …", ALL, per_kind=_evt_kind)
_f("evt.time", "float", "event time (unix seconds)", ALL, "time")
_f(
    "evt.source",
    "str",
    "who wrote the event (probe, proxy, supervisor, …)",
    ALL,
    per_kind=_evt_source,
)
_f("evt.result", "int", "syscall result (0 or fd on success, -errno on failure)", RESULT, "result")
_f("evt.backend", "str", "probe backend (bpftrace, procfs)", K | {"probe.health"}, "backend")
# proc, user: the process of a kernel event
_f("proc.pid", "int", "process id", K, "pid")
_f("proc.tid", "int", "thread id", K, "tid")
_f("proc.ppid", "int", "parent process id", K, "ppid")
_f("proc.name", "str", "command name (comm, 15 chars)", K, "comm")
_f("proc.exe", "str", "executable path", K, "exe")
_f("proc.argv", "strs", "arguments, argv[0] first", K, lambda e: e.argv or [])
_f("proc.cmdline", "str", "arguments joined with spaces", K, _cmdline)
_f("proc.args", "str", "arguments after argv[0], joined with spaces", K, _args)
_f("proc.pname", "str", "parent's command name", K, _pname)
_f("proc.pexe", "str", "parent's executable", K, _pexe)
_f(
    "proc.ancestors.name",
    "strs",
    "command names of parent, grandparent, …",
    K,
    _memo(lambda e: [a.comm for a in e.lineage]),
)
_f(
    "proc.ancestors.exe",
    "strs",
    "executables of the ancestors",
    K,
    _memo(lambda e: [a.exe for a in e.lineage if a.exe]),
)
_f("proc.ancestors.pid", "ints", "pids of the ancestors", K, lambda e: [a.pid for a in e.lineage])
_f("proc.cgroup", "str", "cgroup v2 path", K, "cgroup_path")
_f("proc.container_id", "str", "container id, if any", K, "container_id")
_f(
    "proc.stack_child",
    "str",
    "the stack child (or `launcher`) the process belongs to",
    K,
    contextual=_stack_child,
)
_f(
    "proc.stack_main",
    "bool",
    "the process is a stack child itself, or a program the launcher ran directly",
    K,
    contextual=_stack_main,
)
_f("user.uid", "int", "real user id", K, "uid")
_f("user.euid", "int", "effective user id", K, "euid")
_f("group.gid", "int", "real group id", K, "gid")
# files
_f("fd.name", "str", "path opened, chmod-ed, unlinked, renamed or truncated", PATHS, "path")
_f("file.path", "str", "alias of fd.name", PATHS, "path")
_f("fd.directory", "str", "directory part of fd.name", PATHS, lambda e: posixpath.dirname(e.path))
_f("fd.filename", "str", "last part of fd.name", PATHS, lambda e: posixpath.basename(e.path))
_f("fd.flags", "strs", "open flags (O_WRONLY, O_CREAT, O_TRUNC, …)", {"kernel.open"}, "flag_names")
_f(
    "fd.write",
    "bool",
    "opened for writing (write, create, truncate or append)",
    {"kernel.open"},
    lambda e: bool((e.flags or 0) & _WRITE),
)
_f(
    "fd.reasons",
    "strs",
    "why the probe reported the open: sensitive, traversal, watched_write",
    {"kernel.open"},
    "reasons",
)
_f("file.op", "str", "unlink, rename or truncate", {"kernel.file_change"}, "op")
_f(
    "file.action",
    "str",
    "read, write, truncate (open); chmod; unlink, rename, truncate",
    PATHS,
    _file_action,
)
_f(
    "file.target",
    "str",
    "the file written or moved into place: the rename target, else fd.name",
    PATHS,
    lambda e: getattr(e, "new_path", None) or e.path,
)
_f("file.new_path", "str", "rename target", {"kernel.file_change"}, "new_path")
_f("file.mode", "int", "mode given to chmod", {"kernel.chmod"}, "mode")
_f(
    "file.mode_octal",
    "str",
    "the same in octal, e.g. 4755",
    {"kernel.chmod"},
    lambda e: format(e.mode, "o"),
)
_f(
    "file.setuid",
    "bool",
    "chmod sets the setuid bit",
    {"kernel.chmod"},
    lambda e: bool(e.mode & 0o4000),
)
_f(
    "file.setgid",
    "bool",
    "chmod sets the setgid bit",
    {"kernel.chmod"},
    lambda e: bool(e.mode & 0o2000),
)
# network (remote = the peer, for connect and accept alike)
_f("net.daddr", "str", "remote address", NET, _endpoint("remote", "address"))
_f("net.dport", "int", "remote port", NET, _endpoint("remote", "port"))
_f("net.saddr", "str", "local address", NET, _endpoint("local", "address"))
_f("net.sport", "int", "local port", NET, _endpoint("local", "port"))
_f("net.family", "str", "inet or inet6", NET, "family")
_f("net.protocol", "str", "tcp, udp, …", NET, per_kind=_net_protocol)
_f("net.fd", "int", "socket fd", {"kernel.connect", "kernel.accept"}, "fd")
_f("net.loopback", "bool", "the remote address is loopback", NET, _remote_loopback)
_f(
    "net.egress_allowed",
    "bool",
    "the destination is in the allowed egress of the process's stack child",
    {"kernel.connect"},
    contextual=_egress_allowed,
)
_f("tcp.old_state", "str", "TCP state before", {"kernel.tcp_state"}, "old_state")
_f("tcp.new_state", "str", "TCP state after", {"kernel.tcp_state"}, "new_state")
# per-kind kernel details
_f("exec.filename", "str", "path given to execve (as passed)", {"kernel.exec"}, "filename")
_f("exec.argv_truncated", "bool", "argv was cut by the probe", {"kernel.exec"}, "argv_truncated")
_f("exit.code", "int", "exit code", {"kernel.exit"}, "exit_code")
_f("exit.signal", "int", "killing signal", {"kernel.exit"}, "signal")
_f("exit.core_dumped", "bool", "dumped core", {"kernel.exit"}, "core_dumped")
_f("priv.call", "str", "setuid, setresuid, setgid, …", {"kernel.privilege"}, "call")
_f(
    "priv.requested",
    "ints",
    "ids asked for (unchanged ones left out)",
    {"kernel.privilege"},
    lambda e: [i for i in e.requested if i is not None],
)
_f("priv.old_uid", "int", "uid before the call", {"kernel.privilege"}, "old_uid")
_f("priv.old_euid", "int", "euid before the call", {"kernel.privilege"}, "old_euid")
_f("cap.target_pid", "int", "capset target", {"kernel.capset"}, "target_pid")
_f("cap.effective", "int", "effective capability mask", {"kernel.capset"}, "effective")
_f("cap.permitted", "int", "permitted capability mask", {"kernel.capset"}, "permitted")
_f("ptrace.request", "str", "ATTACH, SEIZE, POKETEXT, …", {"kernel.ptrace"}, "request")
_f("ptrace.target_pid", "int", "traced pid", {"kernel.ptrace"}, "target_pid")
_f("memfd.name", "str", "memfd_create name", {"kernel.memfd"}, "name")
_f("memfd.flags", "int", "memfd_create flags", {"kernel.memfd"}, "flags")
_f("dup.oldfd", "int", "the socket fd duplicated", {"kernel.dup_socket"}, "oldfd")
_f("dup.newfd", "int", "0, 1 or 2", {"kernel.dup_socket"}, "newfd")
# access records
for _name, _type, _attr, _doc in (
    ("req.id", "str", "request_id", "request id"),
    ("req.method", "str", "method", "HTTP method"),
    ("req.path", "str", "path", "request path"),
    ("req.query", "str", "query", "query string"),
    ("req.target", "str", "target", "upstream address that served it (host:port)"),
    ("req.host", "str", "host", "Host"),
    ("req.protocol", "str", "protocol", "HTTP version"),
    ("req.status", "int", "status", "response status"),
    ("req.latency_ms", "float", "latency_ms", "latency in ms"),
    ("req.route", "str", "route", "route id"),
    ("req.upstream", "str", "upstream", "upstream name"),
    ("req.user_agent", "str", "user_agent", "User-Agent"),
    ("req.decided_by", "str", "decided_by", "agent that decided (block, redirect, …)"),
    ("req.tags", "strs", "tags", "agent tags"),
    ("req.rule_ids", "strs", "rule_ids", "agent rule ids"),
    ("req.error", "str", "error", "proxy error"),
    ("client.ip", "str", "client_ip", "client address"),
    ("client.port", "int", "client_port", "client port"),
):
    _f(_name, _type, _doc, A, _attr)  # type: ignore[arg-type]
_f(
    "req.upstream_child",
    "str",
    "the stack child serving the request's upstream",
    A,
    contextual=_upstream_child,
)
# alerts seen on the hub, probe health, supervisor state changes
_f("alert.rule", "str", "rule of an alert on the hub", {"alert"}, "rule")
_f("alert.severity", "str", "severity of an alert on the hub", {"alert"}, "severity")
_f("alert.summary", "str", "summary of an alert on the hub", {"alert"}, "summary")
_f("alert.lost_events", "int", "events lost (probe.events_lost)", {"alert"}, "lost_events")
_f("alert.window_seconds", "float", "window of the loss count", {"alert"}, "window_seconds")
_f("probe.lost_events", "int", "kernel events lost so far", {"probe.health"}, "lost_events")
_f("probe.degraded", "bool", "the probe runs degraded", {"probe.health"}, "degraded")
_f("probe.reason", "str", "why degraded", {"probe.health"}, "reason")
_f("probe.hub_dropped", "int", "events the probe dropped", {"probe.health"}, "hub_dropped")
_f("child.name", "str", "child whose state changed", S, "child")
_f("child.state", "str", "new state: starting, running, backoff, exited, fatal, …", S, "state")
_f("child.previous", "str", "previous state", S, "previous")
_f("child.reason", "str", "why (exit status, …)", S, "reason")
_f("child.pid", "int", "child pid", S, "pid")
_f("child.kind", "str", "process, agent, proxy, probe or detector", S, contextual=_child_kind)

FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _SPECS}
