"""Nothing outlives the launcher: a cgroup v2 group per stack (when root) and a guardian.

Each child gets its own sub-cgroup ``<stack cgroup>/<child>`` (joined in the forked
child before exec, so not even a fast grandchild escapes) and its own process group.
The guardian process holds the other end of a lifeline pipe and cleans up when it breaks.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sentinel_stack.supervisor import guardian


def cgroup2_mount(mountinfo: str | None = None) -> Path | None:
    """Where the unified (v2) hierarchy is mounted, if anywhere."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ", 1)[0] == "cgroup2":
            return Path(left.split()[4])
    return None


def own_cgroup2_path() -> str:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:]
    except OSError:
        pass
    return "/"


class Containment:
    """Owns the stack's cgroup (if any) and the guardian; use as a context manager."""

    def __init__(self, stack_name: str, *, use_cgroup: bool = True, instance: str = "") -> None:
        """``instance`` (the run directory) tells apart stacks that share a name."""
        self.stack_name = stack_name
        suffix = hashlib.sha256(instance.encode()).hexdigest()[:8] if instance else ""
        self.cgroup_name = f"sentinel-stack.{stack_name}" + (f".{suffix}" if suffix else "")
        self.cgroup: Path | None = None
        self.cgroup_error = ""
        if use_cgroup:
            self.cgroup = self._make_cgroup()
        self._guardian: subprocess.Popen[bytes] | None = None

    def _make_cgroup(self) -> Path | None:
        mount = cgroup2_mount()
        if mount is None:
            self.cgroup_error = "no cgroup v2 hierarchy is mounted"
            return None
        parent = mount / own_cgroup2_path().lstrip("/")
        path = parent / self.cgroup_name
        try:
            if path.exists():  # left by a launcher that died with its guardian
                guardian.kill_cgroup(path, time.monotonic() + 2.0)
            path.mkdir(exist_ok=True)
        except OSError as exc:
            self.cgroup_error = f"cannot create {path}: {exc.strerror}"
            return None
        return path

    def __enter__(self) -> Containment:
        self._guardian = subprocess.Popen(
            [sys.executable, "-I", "-S", guardian.__file__, str(self.cgroup or "")],
            stdin=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def mode(self) -> str:
        return f"cgroup {self.cgroup}" if self.cgroup else "process groups"

    def _tell(self, line: str) -> None:
        if self._guardian is not None and self._guardian.stdin is not None:
            try:
                self._guardian.stdin.write(line.encode() + b"\n")
                self._guardian.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass

    def child_cgroup(self, name: str) -> Path | None:
        if self.cgroup is None:
            return None
        path = self.cgroup / name
        try:
            path.mkdir(exist_ok=True)
        except OSError:
            return None
        return path

    def preexec(self, name: str, listen_fd: int | None) -> Callable[[], None] | None:
        """The function run in the forked child before exec (cgroup join, fd 3 hand-over)."""
        group = self.child_cgroup(name)
        procs = os.fsencode(group / "cgroup.procs") if group else None
        if procs is None and listen_fd is None:
            return None

        def prepare() -> None:
            if procs is not None:
                fd = os.open(procs, os.O_WRONLY)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
            if listen_fd is not None:
                os.dup2(listen_fd, 3)  # LISTEN_FDS starts at 3; dup2 makes it inheritable

        return prepare

    def register(self, pgid: int) -> None:
        self._tell(f"pgid {pgid}")

    def forget(self, pgid: int) -> None:
        self._tell(f"forget {pgid}")

    def kill_child(self, name: str, pgid: int | None) -> None:
        """SIGKILL everything left of one child: its process group and its cgroup."""
        if pgid is not None:
            guardian.kill_groups({pgid})
        if self.cgroup is not None:
            kill_file = self.cgroup / name / "cgroup.kill"
            with contextlib.suppress(OSError):
                kill_file.write_text("1")

    def close(self) -> None:
        """Kill anything left and let the guardian remove the cgroup."""
        if self._guardian is None:
            return
        if self._guardian.stdin is not None:
            self._guardian.stdin.close()
        try:
            self._guardian.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._guardian.send_signal(signal.SIGKILL)
        self._guardian = None
