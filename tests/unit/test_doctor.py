"""`sentinel-stack doctor`: each check's verdict and fix, and the fixer (no real apt runs)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from sentinel_stack import doctor

ROOT = Path(__file__).resolve().parents[2]


def test_privileges_root_or_both_capabilities():
    assert doctor.check_privileges(0, 0).status == "ok"
    both = (1 << doctor.CAP_BPF) | (1 << doctor.CAP_PERFMON)
    assert doctor.check_privileges(1000, both).status == "ok"
    only_bpf = doctor.check_privileges(1000, 1 << doctor.CAP_BPF)
    assert only_bpf.status == "fail"
    assert "CAP_PERFMON" in only_bpf.detail and "CAP_BPF " not in only_bpf.detail + " "
    assert "setcap" in only_bpf.hint


def test_capability_mask_from_proc_status():
    text = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000000c000000000\n"
    mask = doctor.capabilities(text)
    assert mask & (1 << doctor.CAP_BPF) and mask & (1 << doctor.CAP_PERFMON)
    assert doctor.capabilities("no caps here") == 0


def test_bpftrace_missing_old_or_fine():
    missing = doctor.check_bpftrace(None, "")
    assert missing.status == "fail" and missing.fix is not None
    assert missing.fix.argv[:2] == ("apt-get", "install")
    assert doctor.check_bpftrace("/usr/bin/bpftrace", "bpftrace v0.14.1").status == "fail"
    fine = doctor.check_bpftrace("/usr/bin/bpftrace", "bpftrace v0.17.0")
    assert fine.status == "ok" and "0.17.0" in fine.detail
    assert doctor.check_bpftrace("/x", "garbage").status == "warn"


def test_tracefs_and_tracepoints(tmp_path):
    unmounted = doctor.check_tracefs(tmp_path, euid=0)
    assert unmounted.status == "fail"
    assert unmounted.fix is not None and unmounted.fix.argv[:3] == ("mount", "-t", "tracefs")
    assert doctor.check_tracefs(tmp_path, euid=1000).status == "warn"
    (tmp_path / "events" / "syscalls" / "sys_enter_openat").mkdir(parents=True)
    assert doctor.check_tracefs(tmp_path, euid=0).status == "ok"
    wanted = [("syscalls", "sys_enter_openat"), ("sched", "sched_process_exec")]
    missing = doctor.check_tracepoints(tmp_path, wanted)
    assert missing.status == "fail" and "sched:sched_process_exec" in missing.detail
    assert doctor.check_tracepoints(tmp_path, wanted[:1]).status == "ok"


def test_tracepoints_used_reads_the_shipped_programs():
    used = doctor.tracepoints_used(ROOT / "bpf")
    assert ("sched", "sched_process_exec") in used
    assert ("syscalls", "sys_enter_memfd_create") in used
    assert len(used) == len(set(used))


def test_btf_cgroup_modsecurity_crs(tmp_path):
    assert doctor.check_btf(tmp_path / "vmlinux").status == "fail"
    assert doctor.check_cgroup_v2(None).status == "warn"
    assert doctor.check_cgroup_v2(Path("/sys/fs/cgroup")).status == "ok"
    assert doctor.check_modsecurity(None).status == "fail"
    assert doctor.check_crs(tmp_path).status == "fail"
    (tmp_path / "REQUEST-901-INITIALIZATION.conf").write_text("")
    assert doctor.check_crs(tmp_path).status == "ok"


def test_port_in_use_fails_unless_our_stack_holds_it():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        address = f"127.0.0.1:{held.getsockname()[1]}"
        busy = doctor.check_port(address, stack_running=False)
        assert busy.status == "fail" and "ss -ltnp" in busy.hint
        assert doctor.check_port(address, stack_running=True).status == "ok"
    assert doctor.check_port("127.0.0.1:0", stack_running=False).status == "ok"


def test_fixes_batch_apt_and_report_failures():
    report = doctor.Report(
        [
            doctor.check_bpftrace(None, ""),
            doctor.check_modsecurity(None),
            doctor.check_tracefs(Path("/nonexistent-tracefs"), euid=0),
            doctor.check_btf(Path("/nonexistent")),  # not fixable: skipped
        ]
    )
    ran: list[tuple[str, ...]] = []

    def run(argv: tuple[str, ...]) -> int:
        ran.append(argv)
        return 1 if argv[0] == "mount" else 0

    said: list[str] = []
    assert doctor.apply_fixes(report, said.append, run) == 1
    assert ran[0] == ("apt-get", "update", "-q")
    assert ran[1][-2:] == ("bpftrace", "libmodsecurity3")
    assert ran[2][0] == "mount"
    assert len(ran) == 3 and len(said) == 2


def test_doctor_command_reports_and_exit_code_says_if_the_stack_runs_fully(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "sentinel_stack", "doctor", "--json", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    import json

    report = json.loads(done.stdout)
    names = [check["name"] for check in report["checks"]]
    assert names[:8] == [
        "privileges", "bpftrace", "tracefs", "kernel BTF", "tracepoints", "cgroup v2",
        "libmodsecurity", "OWASP CRS",
    ]  # fmt: skip
    assert any(name.startswith("port ") for name in names)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert report["full"] is (not failed)
    assert done.returncode == (0 if report["full"] else 1)
