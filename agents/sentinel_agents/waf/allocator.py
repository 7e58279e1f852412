"""Run the WAF agent on jemalloc when the machine has it.

libmodsecurity 3 allocates and frees small C++ objects for every variable of every rule it
evaluates: a quarter of the agent's CPU time is glibc malloc/free (perf, a bare GET through
the CRS). jemalloc (Debian's libjemalloc2) cuts the CPU per request by about a fifth (benign
corpus p99 3.6 → 2.9 ms, docs/waf.md). The allocator must be in place before the process
starts, so the agent re-executes itself once, unchanged (same pid, argv, environment and
inherited fds: socket activation and sd_notify keep working), with ``LD_PRELOAD`` set.

``SENTINEL_WAF_ALLOCATOR=system`` keeps glibc's allocator; ``=jemalloc`` insists on jemalloc.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

ENV = "SENTINEL_WAF_ALLOCATOR"
_MARK = "SENTINEL_WAF_ALLOCATOR_ACTIVE"
_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
)


def find_jemalloc() -> str | None:
    for candidate in _CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = ctypes.util.find_library("jemalloc")
    return found if found and Path(found).is_absolute() else None


def active_allocator() -> str:
    """What this process runs on: ``jemalloc`` or ``system``."""
    return os.environ.get(_MARK, "system")


def reexec_with_jemalloc() -> None:
    """Become this same command with jemalloc preloaded, once; return when that cannot or
    should not happen (already done, opted out, jemalloc absent)."""
    choice = os.environ.get(ENV, "auto")
    if choice == "system" or os.environ.get(_MARK):
        return
    library = find_jemalloc()
    if library is None:
        if choice == "jemalloc":
            print(f"waf: {ENV}=jemalloc but libjemalloc.so.2 is not installed", file=sys.stderr)
        return
    preload = " ".join(p for p in (library, os.environ.get("LD_PRELOAD", "")) if p)
    env = {**os.environ, "LD_PRELOAD": preload, _MARK: "jemalloc"}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)  # noqa: S606 -- our own argv, no shell
