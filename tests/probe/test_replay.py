"""Recording files replayed to a sink, line numbers reported for bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.replay import read_recording, replay


class Sink:
    def __init__(self) -> None:
        self.lines: list[dict[str, object]] = []

    async def put(self, lines: bytes, count: int = 1) -> None:
        decoded = [json.loads(x) for x in lines.splitlines()]
        assert len(decoded) == count
        self.lines.extend(decoded)


def write_recording(path: Path) -> None:
    events = [
        ev.ExecEvent(time=100.0, pid=1, comm="sh", filename="/bin/sh", argv=["sh"]),
        ev.OpenEvent(time=100.5, pid=1, comm="sh", path="/etc/shadow", reasons=["sensitive"]),
        ev.ProbeHealth(time=101.0, backend="bpftrace"),
    ]
    with path.open("wb") as handle:
        handle.write(ev.EVENT_ENCODER.encode(events[0]) + b"\n")
        handle.write(b'{"kind": "kernel.exec", "time": "yesterday"}\n')
        handle.write(b"\n")
        for event in events[1:]:
            handle.write(ev.EVENT_ENCODER.encode(event) + b"\n")


def test_read_recording_reports_bad_lines_by_number(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(path)
    rows = list(read_recording(path))
    assert [n for n, _, _ in rows] == [1, 2, 4, 5]
    assert rows[1][1] is None and "time" in (rows[1][2] or "")


async def test_replay_as_fast_as_possible_keeps_times(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(path)
    sink = Sink()
    stats = await replay(path, sink)
    assert (stats.replayed, stats.skipped) == (3, 1)
    assert [e["kind"] for e in sink.lines] == ["kernel.exec", "kernel.open", "probe.health"]
    assert [e["time"] for e in sink.lines] == [100.0, 100.5, 101.0]


async def test_replay_retimed_and_paced(tmp_path: Path, autojump_clock: object) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(path)
    sink = Sink()
    await replay(path, sink, speed=1000.0, retime=True, source="replayed")
    times = [e["time"] for e in sink.lines]
    assert times[1] - times[0] == pytest.approx(0.5)
    assert {e["source"] for e in sink.lines} == {"replayed"}
