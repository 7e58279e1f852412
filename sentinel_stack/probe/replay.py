"""Replaying a recording (`probe record FILE`) into the event hub, to develop detections.

A recording is the probe's own output: one event per line, the same JSON the hub receives.
Replay validates each line against the schema (a line that is not an event is reported with
its line number and skipped), optionally re-times events to now, and paces them as recorded
(`speed` 1.0), faster, or as fast as possible (`speed` 0).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgspec
import trio

from sentinel_stack.probe import events as ev

__all__ = ["ReplayStats", "read_recording", "replay"]

log = logging.getLogger("sentinel_stack.probe.replay")


class LineSink(Protocol):
    async def put(self, lines: bytes, count: int = 1) -> None: ...


@dataclass(slots=True)
class ReplayStats:
    replayed: int = 0
    skipped: int = 0


def read_recording(path: Path) -> Iterator[tuple[int, ev.AnyEvent | None, str | None]]:
    """(line number, event or None, error or None) for each non-empty line."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, ev.EVENT_DECODER.decode(line), None
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                yield number, None, str(exc)


async def replay(
    path: Path,
    sink: LineSink,
    *,
    speed: float = 0.0,
    retime: bool = False,
    source: str | None = None,
    batch: int = 256,
) -> ReplayStats:
    stats = ReplayStats()
    first_time: float | None = None
    started = time.time()
    pending: list[bytes] = []
    for number, event, error in read_recording(path):
        if event is None:
            stats.skipped += 1
            log.warning("%s:%d: not a probe event (%s); skipped", path, number, error)
            continue
        first_time = event.time if first_time is None else first_time
        offset = event.time - first_time
        if speed > 0:
            due = started + offset / speed
            if due > time.time():
                await _flush(sink, pending)
                # The flush itself takes time: never ask for a negative sleep.
                await trio.sleep(max(0.0, due - time.time()))
        if retime:
            event.time = started + offset
        if source is not None:
            event.source = source
        pending.append(ev.EVENT_ENCODER.encode(event) + b"\n")
        stats.replayed += 1
        if len(pending) >= batch:
            await _flush(sink, pending)
    await _flush(sink, pending)
    return stats


async def _flush(sink: LineSink, pending: list[bytes]) -> None:
    if pending:
        await sink.put(b"".join(pending), len(pending))
        pending.clear()
