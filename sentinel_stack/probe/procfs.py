"""Reading processes from /proc: small pure parsers and the thin functions that call them.

Used to seed the lineage table at start (so processes older than the probe have parents),
to enrich events with what the kernel records do not carry, and by the procfs fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcessSnapshot",
    "container_id_from_cgroup",
    "parse_cgroup_v2_path",
    "parse_stat",
    "parse_status_ids",
    "read_process",
    "snapshot_processes",
]

PROC = Path("/proc")

# Container runtimes put a 64-hex id in the cgroup path: docker-<id>.scope, /docker/<id>,
# cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope, kubepods .../<id>.
_CONTAINER_ID = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/|$)")


@dataclass(slots=True)
class ProcessSnapshot:
    """One process as /proc shows it now."""

    pid: int
    ppid: int
    comm: str
    start_ticks: int
    exe: str | None = None
    argv: list[str] | None = None
    uid: int | None = None
    euid: int | None = None
    gid: int | None = None
    cgroup_path: str | None = None


def parse_stat(text: str) -> tuple[str, int, int]:
    """(comm, ppid, start ticks) from /proc/<pid>/stat; comm may contain ')' and spaces."""
    open_paren, close_paren = text.index("("), text.rindex(")")
    comm = text[open_paren + 1 : close_paren]
    fields = text[close_paren + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, starttime field 22.
    return comm, int(fields[1]), int(fields[19])


def parse_status_ids(text: str) -> tuple[int | None, int | None, int | None]:
    """(real uid, effective uid, real gid) from /proc/<pid>/status."""
    uid = euid = gid = None
    for line in text.splitlines():
        if line.startswith("Uid:"):
            parts = line.split()
            uid, euid = int(parts[1]), int(parts[2])
        elif line.startswith("Gid:"):
            gid = int(line.split()[1])
            break
    return uid, euid, gid


def parse_cgroup_v2_path(text: str) -> str | None:
    """The unified-hierarchy path ("0::/path") from /proc/<pid>/cgroup."""
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:] or "/"
    return None


def container_id_from_cgroup(path: str | None) -> str | None:
    """The container id a runtime encoded in a cgroup path, if any."""
    if not path:
        return None
    match = _CONTAINER_ID.search(path)
    return match[1] if match else None


def parse_cmdline(raw: bytes) -> list[str]:
    parts = raw.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p.decode("utf-8", "replace") for p in parts]


def read_process(pid: int, proc: Path = PROC) -> ProcessSnapshot | None:
    """Everything we want about one process, or None if it is gone (or a kernel thread)."""
    base = proc / str(pid)
    try:
        comm, ppid, start = parse_stat((base / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None
    snap = ProcessSnapshot(pid=pid, ppid=ppid, comm=comm, start_ticks=start)
    try:
        snap.argv = parse_cmdline((base / "cmdline").read_bytes())
        snap.uid, snap.euid, snap.gid = parse_status_ids((base / "status").read_text())
        snap.cgroup_path = parse_cgroup_v2_path((base / "cgroup").read_text())
    except (OSError, ValueError, IndexError):
        pass
    try:
        snap.exe = str((base / "exe").readlink())
    except OSError:
        snap.exe = None  # kernel thread, exited, or not ours to read
    return snap


def snapshot_processes(proc: Path = PROC) -> list[ProcessSnapshot]:
    """Every process visible now (those exiting meanwhile are skipped)."""
    try:
        pids = [int(entry.name) for entry in proc.iterdir() if entry.name.isdigit()]
    except OSError:
        return []
    found = []
    for pid in pids:
        snap = read_process(pid, proc)
        if snap is not None:
            found.append(snap)
    return found
