"""The probe's wire schema: one typed event per kernel observation, the same for every backend.

Every event carries the process fields (`pid`, `ppid`, `comm`, `exe`, `argv`, `uid`, cgroup,
container id, lineage) and, per kind, its own fields. On the wire each is one JSON object
whose `"kind"` (``kernel.exec``...) is the msgspec tag, so a consumer decodes any line with
`EVENT_DECODER` and gets the right class back. Fields a backend cannot know are null (the
procfs fallback has no exit codes, for instance), never missing: the schema does not change
with the backend, only `backend` and the nulls do.
"""

from __future__ import annotations

import msgspec

__all__ = [
    "EVENT_DECODER",
    "EVENT_ENCODER",
    "AcceptEvent",
    "Ancestor",
    "AnyEvent",
    "CapsetEvent",
    "ChmodEvent",
    "ConnectEvent",
    "DupSocketEvent",
    "Endpoint",
    "ExecEvent",
    "ExitEvent",
    "FileChangeEvent",
    "ForkEvent",
    "KernelEvent",
    "MemfdEvent",
    "OpenEvent",
    "PrivilegeEvent",
    "ProbeAlert",
    "ProbeHealth",
    "PtraceEvent",
    "TcpStateEvent",
]


class Endpoint(msgspec.Struct, frozen=True, gc=False):
    address: str
    port: int


class Ancestor(msgspec.Struct, frozen=True, gc=False):
    """One step up the process tree: parent first, then grandparent..."""

    pid: int
    comm: str
    exe: str | None = None


class KernelEvent(msgspec.Struct, kw_only=True, tag_field="kind", gc=False):
    """Fields common to every kernel event. Mutable: enrichment fills the process fields.

    ``gc=False``: events never hold reference cycles, and not tracking them keeps the
    garbage collector out of the hot path of an event storm.
    """

    time: float
    source: str = "probe"
    backend: str = "bpftrace"
    pid: int
    tid: int | None = None
    ppid: int | None = None
    comm: str = ""
    exe: str | None = None
    argv: list[str] | None = None
    uid: int | None = None
    euid: int | None = None
    gid: int | None = None
    # cgroup v2 id (inode number of the cgroup directory) and its path below the mount.
    cgroup: int | None = None
    cgroup_path: str | None = None
    container_id: str | None = None
    # Process start in clock ticks since boot (/proc/<pid>/stat field 22): with pid, the
    # process's identity across pid reuse.
    start_ticks: int | None = None
    lineage: list[Ancestor] = []


class ExecEvent(KernelEvent, tag="kernel.exec"):
    filename: str = ""
    argv_truncated: bool = False


class ForkEvent(KernelEvent, tag="kernel.fork"):
    """A new process: `pid` is the child, `ppid` the parent that forked it."""


class ExitEvent(KernelEvent, tag="kernel.exit"):
    raw_status: int | None = None
    exit_code: int | None = None
    signal: int | None = None
    core_dumped: bool = False


class ConnectEvent(KernelEvent, tag="kernel.connect"):
    fd: int | None = None
    result: int | None = None
    family: str = "inet"
    protocol: str = "tcp"
    local: Endpoint | None = None
    remote: Endpoint | None = None


class AcceptEvent(KernelEvent, tag="kernel.accept"):
    fd: int | None = None
    family: str = "inet"
    protocol: str = "tcp"
    local: Endpoint | None = None
    remote: Endpoint | None = None


class TcpStateEvent(KernelEvent, tag="kernel.tcp_state"):
    socket: int = 0
    old_state: str = ""
    new_state: str = ""
    family: str = "inet"
    local: Endpoint | None = None
    remote: Endpoint | None = None


class OpenEvent(KernelEvent, tag="kernel.open"):
    path: str = ""
    flags: int | None = None
    flag_names: list[str] = []
    # "sensitive", "traversal", "watched_write"
    reasons: list[str] = []
    result: int | None = None
    syscall: str | None = None


class FileChangeEvent(KernelEvent, tag="kernel.file_change"):
    op: str = ""  # unlink | rename | truncate
    path: str = ""
    new_path: str | None = None
    result: int | None = None


class PrivilegeEvent(KernelEvent, tag="kernel.privilege"):
    call: str = ""  # setuid, setresuid, ...
    # The ids asked for, in the call's argument order; null where the caller passed -1.
    requested: list[int | None] = []
    old_uid: int | None = None
    old_euid: int | None = None
    result: int | None = None


class CapsetEvent(KernelEvent, tag="kernel.capset"):
    target_pid: int = 0
    effective: int = 0
    permitted: int = 0
    inheritable: int = 0
    result: int | None = None


class PtraceEvent(KernelEvent, tag="kernel.ptrace"):
    request: str = ""
    target_pid: int = 0
    result: int | None = None


class MemfdEvent(KernelEvent, tag="kernel.memfd"):
    name: str = ""
    flags: int = 0
    result: int | None = None


class ChmodEvent(KernelEvent, tag="kernel.chmod"):
    path: str = ""
    mode: int = 0
    result: int | None = None


class DupSocketEvent(KernelEvent, tag="kernel.dup_socket"):
    """A socket duplicated onto stdin, stdout or stderr: how reverse shells wire their stdio."""

    oldfd: int = 0
    newfd: int = 0


class ProbeHealth(msgspec.Struct, kw_only=True, tag="probe.health", tag_field="kind"):
    time: float
    source: str = "probe"
    backend: str
    degraded: bool = False
    reason: str | None = None
    scope: str = ""
    programs: list[str] = []
    programs_attached: int = 0
    ready: bool = False
    events_per_second: float = 0.0
    events_total: int = 0
    lost_events: int = 0
    parse_errors: int = 0
    hub_connected: bool = False
    hub_dropped: int = 0


class ProbeAlert(msgspec.Struct, kw_only=True, tag="alert", tag_field="kind"):
    """The probe's own alerts: like Falco's drop alert, lost kernel events are a finding."""

    time: float
    source: str = "probe"
    rule: str
    severity: str = "warning"
    summary: str
    lost_events: int = 0
    window_seconds: float = 0.0


AnyEvent = (
    ExecEvent
    | ForkEvent
    | ExitEvent
    | ConnectEvent
    | AcceptEvent
    | TcpStateEvent
    | OpenEvent
    | FileChangeEvent
    | PrivilegeEvent
    | CapsetEvent
    | PtraceEvent
    | MemfdEvent
    | ChmodEvent
    | DupSocketEvent
    | ProbeHealth
    | ProbeAlert
)

EVENT_ENCODER = msgspec.json.Encoder()
EVENT_DECODER: msgspec.json.Decoder[AnyEvent] = msgspec.json.Decoder(AnyEvent)
