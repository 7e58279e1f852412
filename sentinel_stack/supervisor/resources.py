"""Per-child resource figures from psutil (CPU %, RSS, threads, open fds)."""

from __future__ import annotations

import msgspec
import psutil


class Resources(msgspec.Struct, frozen=True):
    cpu_percent: float = 0.0
    rss: int = 0
    threads: int = 0
    fds: int = 0


class ResourceSampler:
    """Keeps one psutil.Process per pid so CPU % is measured between two calls."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    def sample(self, pid: int | None) -> Resources | None:
        if pid is None:
            return None
        process = self._processes.get(pid)
        try:
            if process is None:
                process = self._processes[pid] = psutil.Process(pid)
            with process.oneshot():
                return Resources(
                    cpu_percent=process.cpu_percent(None),
                    rss=process.memory_info().rss,
                    threads=process.num_threads(),
                    fds=process.num_fds(),
                )
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._processes.pop(pid, None)
            return None

    def forget_others(self, live: set[int]) -> None:
        for pid in set(self._processes) - live:
            del self._processes[pid]
