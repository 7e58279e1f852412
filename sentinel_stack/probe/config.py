"""What the probe is asked to watch: one typed configuration built from flags and environment.

The probe is an ordinary program (see docs/probe.md); the launcher passes flags and a few
environment variables, a person running it by hand passes the same flags.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import sentinel_stack

__all__ = [
    "DEFAULT_SENSITIVE_PATHS",
    "DEFAULT_WATCH_PATHS",
    "PROGRAM_NAMES",
    "BackendChoice",
    "PathPattern",
    "ProbeConfig",
    "ScopeChoice",
    "default_bpf_dir",
    "expand_patterns",
    "home_directories",
]

ScopeChoice = Literal["stack", "host"]
BackendChoice = Literal["auto", "bpftrace", "procfs"]

# Paths whose mere reading is interesting. A pattern is a path prefix; "~/" stands for every
# user's home directory (from the password database); a leading "*" matches anywhere in the
# path (a substring: supported, but each costs ~0.5 s of bpftrace start-up per syscall probe).
DEFAULT_SENSITIVE_PATHS: tuple[str, ...] = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/etc/ssh/ssh_host_",
    "~/.ssh/id_",
    "/proc/kcore",
)

# Paths whose modification is interesting: persistence (cron, ssh keys, preload) and logs.
DEFAULT_WATCH_PATHS: tuple[str, ...] = (
    "/etc/cron.d",
    "/etc/crontab",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/var/spool/cron",
    "~/.ssh/authorized_keys",
    "/etc/ld.so.preload",
    "/var/log",
)

# The bpftrace programs in bpf/, in the order they are composed. ready.bt is always added.
PROGRAM_NAMES: tuple[str, ...] = (
    "exec",
    "lifecycle",
    "tcp",
    "open",
    "files",
    "privilege",
    "tamper",
)

# bpftrace string literals cannot carry these safely; str() reads at most STRLEN bytes.
_FORBIDDEN_IN_PATTERN = ('"', "\\", "\n", "\r", "\0")
MAX_PATTERN_LENGTH = 120


@dataclass(frozen=True, slots=True)
class PathPattern:
    """A configured path: a prefix, ``~/...`` under every home, or ``*fragment`` (substring)."""

    text: str
    kind: Literal["prefix", "home", "substring"] = "prefix"

    @property
    def substring(self) -> bool:
        return self.kind == "substring"

    @classmethod
    def parse(cls, raw: str) -> PathPattern:
        """Read one --sensitive-path/--watch-path value; ValueError says what is wrong."""
        kind: Literal["prefix", "home", "substring"] = "prefix"
        text = raw
        if raw.startswith("*"):
            kind, text = "substring", raw[1:]
        elif raw.startswith("~/"):
            kind, text = "home", raw[1:]
        if not text:
            raise ValueError(f"path pattern {raw!r} is empty")
        if kind == "prefix" and not text.startswith("/"):
            raise ValueError(
                f"path pattern {raw!r} must be absolute, start with '~/' (under every home) "
                "or with '*' (anywhere in the path)"
            )
        if not text.isascii() or any(bad in text for bad in _FORBIDDEN_IN_PATTERN):
            raise ValueError(
                f"path pattern {raw!r} must be ASCII without quotes, backslashes or control bytes"
            )
        if len(text) > MAX_PATTERN_LENGTH:
            raise ValueError(f"path pattern {raw!r} is longer than {MAX_PATTERN_LENGTH} bytes")
        return cls(text=text, kind=kind)

    def expand(self, homes: Iterable[str]) -> tuple[PathPattern, ...]:
        """Prefix patterns for a ``~/`` pattern, one per home directory; others unchanged."""
        if self.kind != "home":
            return (self,)
        found = []
        for home in sorted(set(homes)):
            path = home.rstrip("/") + self.text
            if path.isascii() and len(path) <= MAX_PATTERN_LENGTH:
                found.append(PathPattern(text=path))
        return tuple(found)

    def matches(self, path: str) -> bool:
        """The same test the kernel side applies (used by the procfs fallback)."""
        if self.kind == "substring":
            return self.text in path
        if self.kind == "home":
            return self.text in path  # unexpanded: any home
        return path.startswith(self.text)

    def __str__(self) -> str:
        return {"substring": "*", "home": "~", "prefix": ""}[self.kind] + self.text


def home_directories() -> list[str]:
    """Home directories worth watching: root's, human users' (uid >= 1000) and any with .ssh.

    System accounts' homes such as /bin or /usr/sbin would only add patterns (and start-up
    time) for files that cannot exist.
    """
    homes = {"/root"}
    for entry in pwd.getpwall():
        home = entry.pw_dir
        if not home.startswith("/") or home in ("/", "/nonexistent"):
            continue
        if (1000 <= entry.pw_uid < 65534) or (Path(home) / ".ssh").is_dir():
            homes.add(home)
    return sorted(h for h in homes if Path(h).is_dir())


def expand_patterns(
    patterns: Iterable[PathPattern], homes: Iterable[str]
) -> tuple[PathPattern, ...]:
    homes = list(homes)
    return tuple(expanded for p in patterns for expanded in p.expand(homes))


def default_bpf_dir() -> Path:
    """The repository's bpf/ folder, found relative to the installed package."""
    return Path(sentinel_stack.__file__).resolve().parents[1] / "bpf"


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """Everything one probe run needs; built once at start, never mutated."""

    scope: ScopeChoice = "stack"
    backend: BackendChoice = "auto"
    sensitive: tuple[PathPattern, ...] = field(
        default_factory=lambda: tuple(PathPattern.parse(p) for p in DEFAULT_SENSITIVE_PATHS)
    )
    watched: tuple[PathPattern, ...] = field(
        default_factory=lambda: tuple(PathPattern.parse(p) for p in DEFAULT_WATCH_PATHS)
    )
    events_socket: Path | None = None
    bpf_dir: Path = field(default_factory=default_bpf_dir)
    programs: tuple[str, ...] = PROGRAM_NAMES
    source: str = "probe"
    # The stack's cgroup v2 directory (launcher as root) or the launcher's pid otherwise.
    stack_cgroup: Path | None = None
    stack_pid: int | None = None
    bpftrace: str = "bpftrace"
    # Per-CPU perf ring buffer pages for bpftrace (power of two); bigger absorbs longer bursts.
    perf_pages: int = 1024
    poll_interval: float = 0.5
    health_interval: float = 1.0
    batch_max: int = 512
    batch_delay: float = 0.02

    @staticmethod
    def from_environment(env: Mapping[str, str] | None = None) -> ProbeConfig:
        """Defaults plus the launcher contract's environment variables.

        `SENTINEL_EVENTS_SOCKET`, `SENTINEL_STACK_CGROUP`, `SENTINEL_STACK_PID`,
        `SENTINEL_CHILD_NAME`; flags given on the command line override them
        (`dataclasses.replace`).
        """
        environ = os.environ if env is None else env
        stack_pid = None
        if raw_pid := environ.get("SENTINEL_STACK_PID"):
            try:
                stack_pid = int(raw_pid)
            except ValueError:
                raise ValueError(f"SENTINEL_STACK_PID={raw_pid!r} is not a pid") from None
        socket_path = environ.get("SENTINEL_EVENTS_SOCKET")
        cgroup = environ.get("SENTINEL_STACK_CGROUP")
        return ProbeConfig(
            events_socket=Path(socket_path) if socket_path else None,
            stack_cgroup=Path(cgroup) if cgroup else None,
            stack_pid=stack_pid,
            source=environ.get("SENTINEL_CHILD_NAME") or "probe",
        )
