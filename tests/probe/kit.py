"""Test helpers for the probe: a stand-in event hub, an sd_notify listener, a probe process.

Threads, not Trio, so one probe (whose start-up costs seconds) can serve a module of tests
through a module-scoped fixture. Waits are deadline-bounded waits on a condition.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Event = dict[str, Any]


class EventCollector:
    """A tiny event hub: accepts connections on a Unix socket and keeps every JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen(8)
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        pending = b""
        with conn:
            while True:
                try:
                    chunk = conn.recv(1 << 20)
                except OSError:
                    return
                if not chunk:
                    return
                *lines, pending = (pending + chunk).split(b"\n")
                decoded = [json.loads(line) for line in lines if line.strip()]
                with self._cond:
                    self._events.extend(decoded)
                    self._cond.notify_all()

    def events(self, kind: str | None = None) -> list[Event]:
        with self._cond:
            return [e for e in self._events if kind is None or e.get("kind") == kind]

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 5.0) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            start = 0
            while True:
                for event in self._events[start:]:
                    if predicate(event):
                        return event
                start = len(self._events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching event within {timeout}s")
                self._cond.wait(left)

    def close(self) -> None:
        self._closed = True
        self._sock.close()


class NotifyListener:
    """Receives sd_notify datagrams like a supervisor would."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[str] = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            with self._cond:
                self.messages.extend(data.decode().split("\n"))
                self._cond.notify_all()

    def wait_for(self, field: str, timeout: float, alive: Callable[[], bool]) -> float:
        deadline = time.monotonic() + timeout
        with self._cond:
            while field not in self.messages:
                left = deadline - time.monotonic()
                if left <= 0 or not alive():
                    raise AssertionError(f"{field} not received (messages: {self.messages})")
                self._cond.wait(min(left, 0.2))
        return time.monotonic()

    def close(self) -> None:
        self._sock.close()


class ProbeRun:
    """A probe process wired to a collector and a notify listener."""

    def __init__(self, proc: subprocess.Popen[bytes], hub: EventCollector, log: Path) -> None:
        self.proc = proc
        self.hub = hub
        self.log = log

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_probe(
    workdir: Path,
    args: list[str],
    env: dict[str, str],
    ready_timeout: float = 30.0,
) -> Iterator[ProbeRun]:
    """Start ``python -m sentinel_stack.probe run ...`` and wait for READY=1."""
    hub = EventCollector(workdir / "events.sock")
    notify = NotifyListener(workdir / "notify.sock")
    log = workdir / "probe.log"
    full_env = {
        **os.environ,
        **env,
        "SENTINEL_EVENTS_SOCKET": str(hub.path),
        "NOTIFY_SOCKET": str(notify.path),
        "SENTINEL_CHILD_NAME": "probe-under-test",
    }
    with log.open("wb") as log_handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sentinel_stack.probe", "run", *args],
            env=full_env,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
        )
    run = ProbeRun(proc, hub, log)
    try:
        try:
            notify.wait_for("READY=1", ready_timeout, alive=lambda: proc.poll() is None)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- probe log ---\n{run.stderr()}") from None
        yield run
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        hub.close()
        notify.close()
