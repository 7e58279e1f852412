"""The backend interface and the choice between eBPF and the procfs fallback.

A backend observes the kernel and hands batches of normalized events to an `EventSink`; its
`run` is started with ``await nursery.start(backend.run, sink)`` and reports ready once
everything it watches with is live. The service around it does enrichment, publishing and
health the same way for both, so detections see one schema whatever the backend.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import trio

from sentinel_stack.probe import events as ev

__all__ = [
    "Backend",
    "BackendFailed",
    "BackendStatus",
    "EventSink",
    "ScopeDrift",
    "ebpf_unavailable_reason",
]


class EventSink(Protocol):
    def submit(self, events: Sequence[ev.KernelEvent]) -> None:
        """Take a batch of events. Never blocks; the sink counts what it must drop."""


@dataclass(slots=True)
class BackendStatus:
    name: str
    degraded: bool = False
    reason: str | None = None
    programs: list[str] = field(default_factory=list)
    programs_attached: int = 0
    probes_attached: int = 0
    lost_events: int = 0
    parse_errors: int = 0
    ready: bool = False


class Backend(Protocol):
    status: BackendStatus

    async def run(
        self, sink: EventSink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...


class BackendFailed(RuntimeError):
    """The backend could not start or stopped; the message is meant for a person."""


class ScopeDrift(RuntimeError):
    """Processes or cgroups of the stack appeared while the programs were being attached
    and the kernel-side scope cannot know them: restart the backend with a fresh seed."""


def ebpf_unavailable_reason(bpftrace: str = "bpftrace") -> str | None:
    """Why the bpftrace backend cannot work here, or None when it may."""
    if os.geteuid() != 0:
        return "not running as root (eBPF tracing needs CAP_BPF/CAP_SYS_ADMIN)"
    if shutil.which(bpftrace) is None:
        return f"{bpftrace!r} not found on PATH (apt-get install bpftrace)"
    if not Path("/sys/kernel/btf/vmlinux").exists():
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux); the programs need it"
    if not Path("/sys/kernel/tracing").exists():
        return "tracefs is not available (/sys/kernel/tracing missing)"
    lockdown = Path("/sys/kernel/security/lockdown")
    try:
        if "[confidentiality]" in lockdown.read_text():
            return "the kernel is locked down (confidentiality): tracing is refused"
    except OSError:
        pass
    return None
