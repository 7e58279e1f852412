"""The run directory: private (0700), one launcher at a time, stale sockets cleared."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunning(RuntimeError):
    pass


class RunDir:
    def __init__(self, path: Path, stack_name: str) -> None:
        self.path = path
        self.stack_name = stack_name
        self._lock_fd: int | None = None

    @property
    def control(self) -> Path:
        return self.path / "control.sock"

    @property
    def events(self) -> Path:
        return self.path / "events.sock"

    def acquire(self) -> None:
        """Create the directory and take the launcher lock, or raise `AlreadyRunning`."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = self.path.stat()
        if info.st_uid != os.geteuid():
            raise PermissionError(f"{self.path} belongs to uid {info.st_uid}, not to you")
        os.chmod(self.path, 0o700)
        fd = os.open(self.path / "launcher.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"stack `{self.stack_name}` is already running (launcher pid {owner}, "
                f"run dir {self.path}).\n    hint: see it with `sentinel-stack status`, "
                "stop it with `sentinel-stack down`"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        self.clear_stale()

    def clear_stale(self) -> list[Path]:
        """Remove sockets a crashed launcher left behind (we hold the lock: they are dead)."""
        removed = []
        for pattern in ("*.sock", "agents/*.sock", "notify/*.sock"):
            for path in self.path.glob(pattern):
                if path.is_socket():
                    path.unlink(missing_ok=True)
                    removed.append(path)
        return removed

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
