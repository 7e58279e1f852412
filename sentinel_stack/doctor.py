"""`sentinel-stack doctor`: can this machine run the whole stack, and if not, what to do.

Each check looks at one thing the stack needs (privileges, bpftrace, tracefs, BTF, the
tracepoints the programs in `bpf/` attach to, cgroup v2, libmodsecurity and the OWASP CRS,
free ports) and says ok, warn or fail with the fix. A *fail* means some part would run
degraded (the probe on its procfs fallback, the WAF on its fallback engine) or not at all;
a *warn* is worth knowing but costs nothing. ``--fix`` applies the fixes that are safe to
automate (apt packages, mounting tracefs) and checks again.
"""

from __future__ import annotations

import ctypes.util
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sentinel_stack.supervisor.containment import cgroup2_mount

Status = Literal["ok", "warn", "fail"]

CAP_PERFMON = 38
CAP_BPF = 39
MIN_BPFTRACE = (0, 16)
TRACEFS = Path("/sys/kernel/tracing")
BTF = Path("/sys/kernel/btf/vmlinux")
CRS_RULES = Path("/usr/share/modsecurity-crs/rules")
APT_PACKAGES = {"bpftrace": "bpftrace", "modsecurity": "libmodsecurity3", "crs": "modsecurity-crs"}
_TRACEPOINT = re.compile(r"\btracepoint:(\w+):(\w+)")


@dataclass(frozen=True)
class Fix:
    """A remedy the doctor can apply itself: an argv to run (never through a shell)."""

    describe: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    hint: str = ""
    fix: Fix | None = None


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def full(self) -> bool:
        """True when nothing would run degraded."""
        return all(check.status != "fail" for check in self.checks)


def capabilities(status_text: str) -> int:
    """The effective capability mask from the text of /proc/<pid>/status."""
    match = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", status_text, re.MULTILINE)
    return int(match.group(1), 16) if match else 0


def check_privileges(euid: int, cap_mask: int) -> Check:
    if euid == 0:
        return Check("privileges", "ok", "running as root")
    wanted = {"CAP_BPF": CAP_BPF, "CAP_PERFMON": CAP_PERFMON}
    missing = [name for name, bit in wanted.items() if not cap_mask & (1 << bit)]
    if not missing:
        return Check("privileges", "ok", "CAP_BPF and CAP_PERFMON are effective")
    return Check(
        "privileges",
        "fail",
        f"not root and missing {' '.join(missing)}: the probe falls back to procfs polling",
        "run as root, or grant the capabilities: "
        "sudo setcap cap_bpf,cap_perfmon+ep $(command -v bpftrace)",
    )


def parse_bpftrace_version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part) for part in match.groups() if part is not None) if match else None


def check_bpftrace(path: str | None, version_text: str) -> Check:
    fix = Fix("apt-get install bpftrace", _apt(APT_PACKAGES["bpftrace"]))
    if path is None:
        return Check(
            "bpftrace", "fail", "bpftrace not found on PATH", "apt-get install bpftrace", fix
        )
    version = parse_bpftrace_version(version_text)
    if version is None:
        return Check("bpftrace", "warn", f"{path}: could not read its version ({version_text!r})")
    shown = ".".join(map(str, version))
    if version[:2] < MIN_BPFTRACE:
        return Check(
            "bpftrace",
            "fail",
            f"{path} is v{shown}; the programs need v{'.'.join(map(str, MIN_BPFTRACE))} or later",
            "install a newer bpftrace (Debian 12 ships 0.17)",
            fix,
        )
    return Check("bpftrace", "ok", f"{path} v{shown}")


def check_tracefs(tracefs: Path, euid: int) -> Check:
    if (tracefs / "events").is_dir():
        return Check("tracefs", "ok", f"mounted at {tracefs}")
    fix = Fix(f"mount tracefs at {tracefs}", ("mount", "-t", "tracefs", "nodev", str(tracefs)))
    return Check(
        "tracefs",
        "fail" if euid == 0 else "warn",
        f"tracefs is not mounted at {tracefs}",
        f"mount -t tracefs nodev {tracefs} (the probe also mounts it when it starts as root)",
        fix,
    )


def check_btf(btf: Path) -> Check:
    if btf.exists():
        return Check("kernel BTF", "ok", str(btf))
    return Check(
        "kernel BTF",
        "fail",
        f"{btf} is missing: the kernel was built without CONFIG_DEBUG_INFO_BTF",
        "use a distribution kernel with BTF (Debian 11+, Ubuntu 20.10+)",
    )


def tracepoints_used(bpf_dir: Path) -> list[tuple[str, str]]:
    """Every tracepoint the bpftrace programs attach to, in order of first use."""
    found: dict[tuple[str, str], None] = {}
    for program in sorted(bpf_dir.glob("*.bt")):
        for match in _TRACEPOINT.finditer(program.read_text()):
            found[(match.group(1), match.group(2))] = None
    return list(found)


def check_tracepoints(tracefs: Path, wanted: Iterable[tuple[str, str]]) -> Check:
    wanted = list(wanted)
    if not (tracefs / "events").is_dir():
        return Check("tracepoints", "warn", "not checked: tracefs is not mounted")
    missing = [f"{c}:{n}" for c, n in wanted if not (tracefs / "events" / c / n).is_dir()]
    if missing:
        return Check(
            "tracepoints",
            "fail",
            f"{len(missing)} of {len(wanted)} missing: {' '.join(missing[:5])}",
            "the kernel lacks these tracepoints (CONFIG_FTRACE_SYSCALLS); the programs that "
            "use them cannot attach",
        )
    return Check("tracepoints", "ok", f"all {len(wanted)} used by bpf/*.bt are present")


def check_cgroup_v2(mount: Path | None) -> Check:
    if mount is not None:
        return Check("cgroup v2", "ok", f"mounted at {mount}")
    return Check(
        "cgroup v2",
        "warn",
        "no cgroup v2 hierarchy is mounted: children are contained by process group only, "
        "and the probe scopes the stack by process tree",
        "mount -t cgroup2 none /sys/fs/cgroup/unified, or boot with "
        "systemd.unified_cgroup_hierarchy=1",
    )


def check_modsecurity(found: str | None) -> Check:
    if found:
        return Check("libmodsecurity", "ok", found)
    return Check(
        "libmodsecurity",
        "fail",
        "libmodsecurity v3 not found: the WAF agent uses its RE2 fallback engine",
        "apt-get install libmodsecurity3",
        Fix("apt-get install libmodsecurity3", _apt(APT_PACKAGES["modsecurity"])),
    )


def check_crs(rules: Path) -> Check:
    if rules.is_dir() and any(rules.glob("*.conf")):
        return Check("OWASP CRS", "ok", str(rules))
    return Check(
        "OWASP CRS",
        "fail",
        f"no CRS rules in {rules}: the WAF agent uses its fallback rule set",
        "apt-get install modsecurity-crs",
        Fix("apt-get install modsecurity-crs", _apt(APT_PACKAGES["crs"])),
    )


def check_port(address: str, stack_running: bool) -> Check:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            if stack_running:
                return Check(f"port {address}", "ok", "held by the running stack")
            return Check(
                f"port {address}",
                "fail",
                f"cannot listen on {address}: {exc.strerror}",
                f"free it (`ss -ltnp 'sport = :{port}'` shows who holds it) or change the "
                "config's listen address",
            )
    return Check(f"port {address}", "ok", "free")


def _apt(package: str) -> tuple[str, ...]:
    return ("apt-get", "install", "-y", "-q", "--no-install-recommends", package)


def _bpftrace_version(path: str | None) -> str:
    if path is None:
        return ""
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return (done.stdout or done.stderr).strip()


def _modsecurity_library() -> str | None:
    name = ctypes.util.find_library("modsecurity")
    if name:
        return name
    for candidate in ("libmodsecurity.so.3", "libmodsecurity.so"):
        try:
            ctypes.CDLL(candidate)
        except OSError:
            continue
        return candidate
    return None


def examine(bpf_dir: Path, ports: Iterable[str], stack_running: bool = False) -> Report:
    """Run every check against this machine."""
    euid = os.geteuid()
    try:
        caps = capabilities(Path("/proc/self/status").read_text())
    except OSError:
        caps = 0
    bpftrace = shutil.which("bpftrace")
    checks = [
        check_privileges(euid, caps),
        check_bpftrace(bpftrace, _bpftrace_version(bpftrace)),
        check_tracefs(TRACEFS, euid),
        check_btf(BTF),
        check_tracepoints(TRACEFS, tracepoints_used(bpf_dir)),
        check_cgroup_v2(cgroup2_mount()),
        check_modsecurity(_modsecurity_library()),
        check_crs(CRS_RULES),
        *(check_port(address, stack_running) for address in ports),
    ]
    return Report(checks)


def apply_fixes(
    report: Report,
    say: Callable[[str], None],
    run: Callable[[tuple[str, ...]], int] | None = None,
) -> int:
    """Apply each failing check's fix; apt fixes are batched into one install. Returns the
    number of fixes that failed. Only root may fix: the caller checks."""
    run = run or _run
    apt: list[str] = []
    others: list[Fix] = []
    for check in report.checks:
        if check.status == "ok" or check.fix is None:
            continue
        if check.fix.argv[0] == "apt-get":
            apt.append(check.fix.argv[-1])
        else:
            others.append(check.fix)
    failures = 0
    if apt:
        packages = sorted(set(apt))
        say(f"installing {' '.join(packages)} with apt-get")
        install = (*_apt(packages[0])[:-1], *packages)
        if run(("apt-get", "update", "-q")) != 0 or run(install) != 0:
            failures += 1
    for fix in others:
        say(fix.describe)
        if run(fix.argv) != 0:
            failures += 1
    return failures


def _run(argv: tuple[str, ...]) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(argv, env=env, check=False).returncode
