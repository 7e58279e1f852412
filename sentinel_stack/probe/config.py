"""What the probe is asked to watch: one typed configuration built from flags and environment.

The probe is an ordinary program (see docs/probe.md); the launcher passes flags and a few
environment variables, a person running it by hand passes the same flags.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
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
]

ScopeChoice = Literal["stack", "host"]
BackendChoice = Literal["auto", "bpftrace", "procfs"]

# Paths whose mere reading is interesting. A leading "*" makes a pattern match anywhere in
# the path (substring) instead of as a prefix.
DEFAULT_SENSITIVE_PATHS: tuple[str, ...] = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/root/.ssh",
    "/etc/ssh/ssh_host_",
    "*/.ssh/id_",
    "/proc/kcore",
)

# Paths whose modification is interesting: persistence (cron, ssh keys) and log tampering.
DEFAULT_WATCH_PATHS: tuple[str, ...] = (
    "/etc/cron.d",
    "/etc/crontab",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/var/spool/cron",
    "*authorized_keys",
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
    """A configured path: a prefix (``/etc/shadow``) or, written ``*fragment``, a substring."""

    text: str
    substring: bool

    @classmethod
    def parse(cls, raw: str) -> PathPattern:
        """Read one --sensitive-path/--watch-path value; ValueError says what is wrong."""
        substring = raw.startswith("*")
        text = raw[1:] if substring else raw
        if not text:
            raise ValueError(f"path pattern {raw!r} is empty")
        if not substring and not text.startswith("/"):
            raise ValueError(
                f"path pattern {raw!r} must be absolute, or start with '*' to match anywhere"
            )
        if any(bad in text for bad in _FORBIDDEN_IN_PATTERN):
            raise ValueError(f"path pattern {raw!r} contains a quote, backslash or control byte")
        if len(text.encode()) > MAX_PATTERN_LENGTH:
            raise ValueError(f"path pattern {raw!r} is longer than {MAX_PATTERN_LENGTH} bytes")
        return cls(text=text, substring=substring)

    def matches(self, path: str) -> bool:
        """The same test the kernel side applies (used by the procfs fallback)."""
        return self.text in path if self.substring else path.startswith(self.text)

    def __str__(self) -> str:
        return f"*{self.text}" if self.substring else self.text


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
    perf_pages: int = 256
    poll_interval: float = 0.5
    health_interval: float = 1.0
    batch_max: int = 512
    batch_delay: float = 0.02

    @staticmethod
    def from_environment(env: Mapping[str, str] | None = None, **overrides: object) -> ProbeConfig:
        """Fill the launcher contract's environment variables, then apply explicit overrides."""
        environ = os.environ if env is None else env
        values: dict[str, object] = {}
        if socket_path := environ.get("SENTINEL_EVENTS_SOCKET"):
            values["events_socket"] = Path(socket_path)
        if cgroup := environ.get("SENTINEL_STACK_CGROUP"):
            values["stack_cgroup"] = Path(cgroup)
        if pid := environ.get("SENTINEL_STACK_PID"):
            try:
                values["stack_pid"] = int(pid)
            except ValueError:
                raise ValueError(f"SENTINEL_STACK_PID={pid!r} is not a pid") from None
        if name := environ.get("SENTINEL_CHILD_NAME"):
            values["source"] = name
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(ProbeConfig.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown probe settings: {sorted(unknown)}")
        for name in values.get("programs", ()):  # type: ignore[attr-defined]
            if name not in PROGRAM_NAMES:
                raise ValueError(f"unknown program {name!r}; known: {', '.join(PROGRAM_NAMES)}")
        return ProbeConfig(**values)  # type: ignore[arg-type]
