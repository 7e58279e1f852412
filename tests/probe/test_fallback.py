"""The procfs fallback: the same schema as eBPF, degraded and saying so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.fallback import ProcfsPoller, in_scope
from sentinel_stack.probe.procfs import ProcessSnapshot
from sentinel_stack.probe.records import Clocks, RecordNormalizer
from sentinel_stack.probe.scope import ScopeFilter

from .kit import running_probe


def snap(pid: int, ppid: int, start: int, cgroup: str = "/") -> ProcessSnapshot:
    return ProcessSnapshot(
        pid=pid,
        ppid=ppid,
        comm=f"p{pid}",
        start_ticks=start,
        exe=f"/bin/p{pid}",
        argv=[f"p{pid}"],
        uid=0,
        euid=0,
        gid=0,
        cgroup_path=cgroup,
    )


def test_scope_rules_match_the_kernel_side() -> None:
    procs = [
        snap(1, 0, 1),
        snap(10, 1, 2, "/stack/a"),
        snap(11, 10, 3, "/stack/a"),
        snap(12, 1, 4, "/other"),
        snap(99, 10, 5, "/stack/probe"),
        snap(100, 99, 6),
    ]
    tree = ScopeFilter(mode="tree", probe_pid=99, root_pid=10)
    assert in_scope(tree, procs) == {10, 11}
    cgroup = ScopeFilter(mode="cgroup", probe_pid=99, cgroup_relpath="/stack")
    assert in_scope(cgroup, procs) == {10, 11}
    assert in_scope(ScopeFilter(mode="host", probe_pid=99), procs) == {1, 10, 11, 12}


def test_poller_reports_new_and_vanished_processes_after_its_baseline() -> None:
    views = [[snap(10, 1, 2)], [snap(10, 1, 2), snap(11, 10, 3)], [snap(11, 10, 3)]]
    poller = ProcfsPoller(
        ScopeFilter(mode="tree", probe_pid=99, root_pid=10),
        [],
        [],
        "probe",
        snapshot=lambda: views.pop(0),
        proc=Path("/nonexistent"),
    )
    assert poller.poll(now=1.0) == []
    (started,) = poller.poll(now=2.0)
    assert isinstance(started, ev.ExecEvent)
    assert (started.pid, started.ppid, started.backend, started.filename) == (
        11,
        10,
        "procfs",
        "/bin/p11",
    )
    (ended,) = poller.poll(now=3.0)
    assert isinstance(ended, ev.ExitEvent) and ended.pid == 10 and ended.exit_code is None


def test_fallback_events_have_the_same_fields_as_ebpf_events() -> None:
    """A consumer sees one schema: the same keys, only `backend` and nulls differ."""
    bpf = RecordNormalizer(Clocks(0.0)).normalize(
        ["exec", 1, 2, 2, 1, 0, 0, 0, 1, 100, "sh", "/bin/sh", 0]
    )
    assert bpf is not None
    procfs = ProcfsPoller(ScopeFilter(mode="host", probe_pid=0), [], [], "probe")._event(
        ev.ExecEvent, snap(2, 1, 1), 1.0, filename="/bin/sh"
    )
    assert (
        json.loads(ev.EVENT_ENCODER.encode(bpf)).keys()
        == json.loads(ev.EVENT_ENCODER.encode(procfs)).keys()
    )


def test_probe_with_the_procfs_backend_is_degraded_and_sees_sensitive_opens() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ssf-", dir="/tmp"))
    secret = workdir / "secret"
    secret.write_text("x")
    env = {"SENTINEL_STACK_PID": str(os.getpid())}
    args = ["--backend", "procfs", "--sensitive-path", str(secret)]
    with running_probe(workdir, args, env) as run:
        holder = subprocess.Popen(
            [sys.executable, "-c", f"import sys; f = open('{secret}'); sys.stdin.read()"],
            stdin=subprocess.PIPE,
        )
        try:
            started = run.hub.wait_for(
                lambda e: e["kind"] == "kernel.exec" and e["pid"] == holder.pid
            )
            opened = run.hub.wait_for(
                lambda e: e["kind"] == "kernel.open" and e["pid"] == holder.pid
            )
        finally:
            holder.communicate(b"")
        health = run.hub.wait_for(lambda e: e["kind"] == "probe.health")
    assert started["backend"] == opened["backend"] == "procfs"
    assert opened["path"] == str(secret) and opened["reasons"] == ["sensitive"]
    assert os.getpid() in [a["pid"] for a in started["lineage"]]
    assert health["degraded"] and health["backend"] == "procfs"
    assert "--backend procfs" in health["reason"]
    assert "DEGRADED" in run.stderr()
    for name in ("secret", "events.sock", "notify.sock", "probe.log"):
        (workdir / name).unlink(missing_ok=True)
    workdir.rmdir()


def test_a_refused_ebpf_falls_back_with_the_reason_or_fails_when_required() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ssr-", dir="/tmp"))
    fake = workdir / "bpftrace"
    fake.write_text("#!/bin/sh\necho 'ERROR: Operation not permitted (fake kernel)' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {"SENTINEL_STACK_PID": str(os.getpid())}
    with running_probe(workdir, ["--bpftrace", str(fake)], env) as run:
        health = run.hub.wait_for(lambda e: e["kind"] == "probe.health")
    assert health["backend"] == "procfs" and health["degraded"]
    # As root the fake bpftrace ran and failed; otherwise eBPF was never tried.
    expected = "Operation not permitted" if os.geteuid() == 0 else "not running as root"
    assert expected in health["reason"]
    required = subprocess.run(
        [sys.executable, "-m", "sentinel_stack.probe", "run", "--backend", "bpftrace",
         "--bpftrace", str(fake), "--events-socket", str(workdir / "none.sock")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert required.returncode == 1
    assert "bpftrace" in required.stderr and "ERROR" in required.stderr
    for name in ("bpftrace", "events.sock", "notify.sock", "probe.log"):
        (workdir / name).unlink(missing_ok=True)
    workdir.rmdir()
