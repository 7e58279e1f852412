"""Denylist persistence: round trip, expired entries dropped on reload, atomic replace."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sentinel_agents.denylist import (
    Denylist,
    DenyRequest,
    dump_entries,
    load_denylist,
    parse_entries,
    save_denylist,
)

T0 = 1_700_000_000.0


def populated() -> Denylist:
    dl = Denylist()
    dl.add("ip", "203.0.113.0/24", now=T0, ttl=3600, reason="scanner")
    dl.add("ip", "2001:db8::1", now=T0)
    dl.add("path_prefix", "/wp-admin", now=T0, ttl=60)
    dl.add("user_agent", "sqlmap", now=T0, reason="tool ☠")
    dl.add("header", "k1", header="x-api-key", now=T0, ttl=10)
    return dl


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "denylist.jsonl"
    save_denylist(path, populated(), now=T0)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 5
    loaded, report = load_denylist(path, now=T0 + 1)
    assert report.problems == [] and report.expired == 0
    assert [x.entry for x in loaded.entries(T0 + 1)] == [
        x.entry for x in populated().entries(T0 + 1)
    ]
    hit = loaded.match(DenyRequest(client_ip="203.0.113.9", path="/"), T0 + 1)
    assert hit is not None and hit.entry.reason == "scanner"


def test_reload_drops_entries_that_expired_while_down(tmp_path: Path) -> None:
    path = tmp_path / "denylist.jsonl"
    save_denylist(path, populated(), now=T0)
    loaded, report = load_denylist(path, now=T0 + 120)
    assert report.expired == 2  # the 60 s path and the 10 s header
    assert {x.entry.kind for x in loaded.entries(T0 + 120)} == {"ip", "user_agent"}
    (scanner,) = [x for x in loaded.entries(T0 + 120) if x.entry.reason == "scanner"]
    assert scanner.remaining_ttl == 3600 - 120


def test_save_leaves_out_expired_entries(tmp_path: Path) -> None:
    path = tmp_path / "denylist.jsonl"
    save_denylist(path, populated(), now=T0 + 100)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 3


def test_missing_file_is_an_empty_denylist(tmp_path: Path) -> None:
    loaded, report = load_denylist(tmp_path / "absent.jsonl", now=T0)
    assert len(loaded) == 0 and report.problems == []


def test_bad_lines_are_reported_with_file_and_line_and_skipped() -> None:
    good = dump_entries([populated().entries(T0)[0].entry]).strip()
    text = "\n".join(
        [
            good,
            "{not json",
            json.dumps({"kind": "ip", "value": "999.1.1.1"}),
            json.dumps({"kind": "ip"}),
            json.dumps(["ip", "1.2.3.4"]),
            json.dumps({"v": 99, "kind": "ip", "value": "1.2.3.4"}),
            json.dumps({"kind": "ip", "value": "1.2.3.4", "expires_at": "soon"}),
            "",
        ]
    )
    report = parse_entries(text, now=T0, source="deny.jsonl")
    assert len(report.entries) == 1
    assert [p.split(":")[1] for p in report.problems] == ["2", "3", "4", "5", "6", "7"]
    assert all(p.startswith("deny.jsonl:") for p in report.problems)
    assert "not an IP address" in report.problems[1]
    assert "version" in report.problems[4]


def test_atomic_replace_keeps_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "denylist.jsonl"
    save_denylist(path, populated(), now=T0)
    before = path.read_text(encoding="utf-8")

    def failing_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("sentinel_agents.denylist.store.os.fsync", failing_fsync)
    empty = Denylist()
    with pytest.raises(OSError, match="disk full"):
        save_denylist(path, empty, now=T0)
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["denylist.jsonl"]


def test_save_replaces_by_rename(tmp_path: Path) -> None:
    path = tmp_path / "denylist.jsonl"
    save_denylist(path, populated(), now=T0)
    inode_before = os.stat(path).st_ino
    save_denylist(path, Denylist(), now=T0)
    assert os.stat(path).st_ino != inode_before
    assert path.read_text(encoding="utf-8") == ""
