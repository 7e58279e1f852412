"""The writer: rotation, resuming after a restart or a crash, keys, locking, checkpoints."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from sentinel_stack.audit.keys import AuditKeyError
from sentinel_stack.audit.layout import LogBusy, read_lines
from sentinel_stack.audit.writer import AuditLog, AuditSetupError, LogSettings
from tests.audit.logkit import T0, LogKit, alert, parse


@pytest.fixture
def kit(tmp_path: Path) -> LogKit:
    return LogKit(tmp_path)


def crash(log: AuditLog) -> None:
    """What kill -9 leaves: written lines on disk, no stop checkpoint, the lock gone."""
    log.flush()
    log._close_file()
    assert log._lock_fd is not None
    os.close(log._lock_fd)
    log._lock_fd = None


def records(kit: LogKit) -> list:  # type: ignore[type-arg]
    return [parse(line) for p in kit.files() for line in kit.lines(p)]


def test_a_new_log_starts_with_genesis_open_and_a_signed_checkpoint(kit: LogKit) -> None:
    kit.write(0)
    types = [r.type for r in records(kit)]
    assert types == ["genesis", "open", "checkpoint", "checkpoint"]
    assert records(kit)[-1].data["reason"] == "stop"
    assert (kit.dir / "audit.pub").exists()


def test_rotation_keeps_the_chain_across_files(kit: LogKit) -> None:
    kit.write(40)
    files = kit.files()
    assert [p.name for p in files][:2] == ["audit-000001.jsonl", "audit-000002.jsonl"]
    for before, after in itertools.pairwise(files):
        last, first = parse(kit.lines(before)[-1]), parse(kit.lines(after)[0])
        assert last.type == "checkpoint" and last.data["reason"] == "rotate"
        assert last.data["next_file"] == after.name
        assert first.prev == last.hash and first.seq == last.seq + 1
    assert kit.verify().ok


def test_checkpoints_every_n_records_and_every_interval(kit: LogKit) -> None:
    log = kit.open(records=3, max_bytes=1 << 20)
    for i in range(7):
        log.append("alert", alert(i), T0 + i)
    assert log.chain.head.since_checkpoint == 1  # checkpoints after records 3 and 6
    assert not log.tick(T0 + 30)
    assert log.tick(T0 + 5 + 60)  # 60 s after the last one, even with nothing new
    assert log.chain.head.since_checkpoint == 0
    log.close(T0 + 62)


def test_resume_after_a_clean_restart(kit: LogKit) -> None:
    kit.write(5)
    log = kit.open(at=T0 + 100)
    head = log.status()
    log.append("alert", alert(9), T0 + 101)
    log.close(T0 + 102)
    opened = [r for r in records(kit) if r.type == "open"]
    assert len(opened) == 2 and opened[1].data["previous_closed"] is True
    assert head.written == 0 and head.seq == opened[1].seq + 1  # open + its checkpoint
    report = kit.verify()
    assert report.ok and report.sealed and not report.notes[:-1]


def test_resume_after_a_crash_notes_the_unsigned_records(kit: LogKit) -> None:
    log = kit.write(7, close=False)  # checkpoints at 5 records: two unsigned after it
    crash(log)
    assert [p.kind for p in kit.verify().problems] == ["unsealed"]
    kit.open(at=T0 + 100).close(T0 + 101)
    report = kit.verify()
    assert report.ok, report.problems
    opened = [r for r in records(kit) if r.type == "open"][-1]
    assert opened.data["previous_closed"] is False and opened.data["unsigned_records"] == 2
    assert any("never signed" in note for note in report.notes)


def test_a_crash_torn_line_is_kept_and_explained(kit: LogKit) -> None:
    log = kit.write(3, close=False)
    crash(log)
    last = kit.files()[-1]
    torn = b'{"data":{"kind":"alert","rule":"web_ser'
    with last.open("ab") as f:
        f.write(torn)
    assert kit.verify().problems[0].kind == "torn"
    log = kit.open(at=T0 + 100)
    assert any("torn final line" in n for n in log.notices)
    log.close(T0 + 101)
    assert last.read_bytes().endswith(torn)  # the evidence stays where it was
    recovery = parse(kit.lines(kit.files()[-1])[0])
    assert recovery.type == "recovery" and recovery.data["damaged"] is False
    lost = recovery.data["lost"][0]
    assert (lost["file"], lost["length"]) == (last.name, len(torn))
    assert lost["preview"].startswith('{"data"')
    report = kit.verify()
    assert report.ok, report.problems
    assert report.recoveries[0]["reason"].startswith("the final line was cut short")


def test_garbage_after_the_head_is_damage_not_a_crash(kit: LogKit) -> None:
    log = kit.write(3, close=False)
    crash(log)
    with kit.files()[-1].open("ab") as f:
        f.write(b'{"not": "a record"}\n')
    log = kit.open(at=T0 + 100)
    assert any("DAMAGED" in n for n in log.notices)
    log.close(T0 + 101)
    assert [p.kind for p in kit.verify().problems] == ["malformed", "damaged"]


def test_an_empty_successor_after_a_rotation_crash_is_reused(kit: LogKit) -> None:
    log = kit.open()
    while len(kit.files()) < 2:
        log.append("alert", alert(1), T0)
    crash(log)  # the rotation opened audit-000002 and then the process died
    assert kit.files()[-1].stat().st_size == 0
    kit.open(at=T0 + 5).close(T0 + 6)
    assert len(kit.files()) == 2
    assert kit.verify().ok


def test_one_writer_per_log(kit: LogKit) -> None:
    log = kit.open()
    with pytest.raises(LogBusy, match="another launcher"):
        kit.open()
    log.close(T0 + 1)
    kit.open(at=T0 + 2).close(T0 + 3)


def test_the_key_is_created_private_and_outside_the_log(kit: LogKit) -> None:
    kit.write(1)
    assert kit.key_file.stat().st_mode & 0o777 == 0o600
    inside = LogSettings(kit.dir, kit.dir / "k.key", "t")
    with pytest.raises(AuditSetupError, match="inside the audit dir"):
        AuditLog.open(inside, T0, 1)


def test_a_key_others_can_read_is_refused(kit: LogKit) -> None:
    kit.write(1)
    kit.key_file.chmod(0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        kit.open()


def test_a_live_writer_is_checked_for_staleness(kit: LogKit) -> None:
    log = kit.write(7, close=False)
    fresh = kit.verify(now=T0 + 10)
    assert fresh.ok and fresh.live and fresh.unsigned_tail == 2
    stale = kit.verify(now=T0 + 3600)
    assert [p.kind for p in stale.problems] == ["stale"]
    log.close(T0 + 11)


def test_a_line_being_written_is_not_damage_while_the_writer_runs(kit: LogKit) -> None:
    log = kit.write(2, close=False)
    log.flush()
    with kit.files()[-1].open("ab") as f:
        f.write(b'{"data":')
    report = kit.verify(now=T0 + 5)
    assert report.ok and "being written" in report.notes[0]
    crash(log)


def test_lines_keep_their_offsets(kit: LogKit) -> None:
    kit.write(2)
    lines = read_lines(kit.files()[0])
    assert lines.lines[1].offset == len(lines.lines[0].raw) + 1
    assert lines.fragment is None


def test_a_new_key_is_announced_and_old_checkpoints_need_the_old_key(
    kit: LogKit, tmp_path: Path
) -> None:
    kit.write(3)
    old = tmp_path / "old.pub"
    old.write_bytes((kit.dir / "audit.pub").read_bytes())
    kit.key_file.unlink()  # lost, or replaced on purpose
    log = kit.open(at=T0 + 100)
    assert any("signing key changed" in n for n in log.notices)
    log.close(T0 + 101)
    assert kit.verify().problems[0].kind == "signature"  # the new key alone cannot vouch
    both = kit.verify(public_keys=[old, kit.key_file])
    assert both.ok, both.problems
