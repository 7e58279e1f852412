"""The tampering suite: every way of changing a closed log that docs/audit.md lists is
caught, and the report names the first bad record. (The table in the docs names these
tests; keep them in step.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sentinel_stack.audit.keys import public_pem
from sentinel_stack.audit.record import AuditRecord, seal
from tests.audit.logkit import T0, LogKit, alert, parse, rewrite_all


@pytest.fixture
def kit(tmp_path: Path) -> LogKit:
    kit = LogKit(tmp_path)
    kit.write(30)
    assert len(kit.files()) >= 4, "the suite needs rotated files"
    report = kit.verify()
    assert report.ok, report.problems
    return kit


def middle_alert(kit: LogKit) -> tuple[Path, int, AuditRecord]:
    """An alert record in the second file, not its first line."""
    path = kit.files()[1]
    for index, line in enumerate(kit.lines(path)):
        record = parse(line)
        if index > 0 and record.type == "alert":
            return path, index, record
    raise AssertionError("no alert in the second file")


def kinds(kit: LogKit, **kw: object) -> list[str]:
    return [p.kind for p in kit.verify(**kw).problems]


def first(kit: LogKit, **kw: object) -> tuple[str, int, str]:
    report = kit.verify(**kw)
    assert not report.ok
    bad = report.problems[0]
    return bad.file, bad.line, bad.kind


def test_edit_a_field(kit: LogKit) -> None:
    path, index, _ = middle_alert(kit)
    lines = kit.lines(path)
    lines[index] = lines[index].replace(b"nginx spawned", b"nginx spawnex")
    kit.set_lines(path, lines)
    assert first(kit) == (path.name, index + 1, "edited")


def test_edit_whitespace_only(kit: LogKit) -> None:
    path, index, _ = middle_alert(kit)
    lines = kit.lines(path)
    lines[index] = lines[index].replace(b'{"data":', b'{ "data":')
    kit.set_lines(path, lines)
    assert first(kit) == (path.name, index + 1, "edited")


def test_edit_a_field_and_its_own_hash(kit: LogKit) -> None:
    path, index, record = middle_alert(kit)
    forged = seal(
        seq=record.seq,
        time=record.time,
        type=record.type,
        data={**record.data, "client_ip": "10.9.9.9"},
        prev=record.prev,
    )
    lines = kit.lines(path)
    lines[index] = forged.line()
    kit.set_lines(path, lines)
    assert first(kit) == (path.name, index + 2, "link")  # the next record no longer links


def test_edit_with_recomputed_chain(kit: LogKit) -> None:
    _, _, victim = middle_alert(kit)

    def change(records: list[AuditRecord]) -> list[AuditRecord]:
        return [
            seal(seq=r.seq, time=r.time, type=r.type, data={**r.data, "summary": "benign"},
                 prev=r.prev) if r.seq == victim.seq else r
            for r in records
        ]  # fmt: skip

    rewrite_all(kit, change)
    report = kit.verify()
    bad = report.problems[0]
    assert bad.kind == "signature"
    assert bad.seq is not None and bad.seq > victim.seq  # the next checkpoint gives it away
    assert "not authenticated" in bad.message


def test_delete_a_record(kit: LogKit) -> None:
    path, index, record = middle_alert(kit)
    lines = kit.lines(path)
    del lines[index]
    kit.set_lines(path, lines)
    report = kit.verify()
    bad = report.problems[0]
    assert (bad.file, bad.line, bad.kind) == (path.name, index + 1, "sequence")
    assert f"record {record.seq} is missing" in bad.message


def test_delete_a_record_and_renumber_the_chain(kit: LogKit) -> None:
    _, _, victim = middle_alert(kit)
    rewrite_all(kit, lambda records: [r for r in records if r.seq != victim.seq])
    assert kinds(kit)[0] == "signature"


def test_swap_two_records(kit: LogKit) -> None:
    path, index, _ = middle_alert(kit)
    lines = kit.lines(path)
    lines[index], lines[index + 1] = lines[index + 1], lines[index]
    kit.set_lines(path, lines)
    assert first(kit) == (path.name, index + 1, "sequence")


def test_insert_a_forged_record(kit: LogKit) -> None:
    path, index, record = middle_alert(kit)
    forged = seal(seq=record.seq, time=record.time, type="alert", data=alert(99), prev=record.prev)
    lines = kit.lines(path)
    lines.insert(index, forged.line())
    kit.set_lines(path, lines)
    # The forged line itself links; the genuine record after it is where the chain breaks.
    assert first(kit) == (path.name, index + 2, "sequence")


def test_insert_a_forged_record_with_recomputed_chain(kit: LogKit) -> None:
    _, _, victim = middle_alert(kit)

    def insert(records: list[AuditRecord]) -> list[AuditRecord]:
        at = next(i for i, r in enumerate(records) if r.seq == victim.seq)
        fake = seal(seq=0, time=victim.time, type="alert", data=alert(99), prev="0" * 64)
        return [*records[:at], fake, *records[at:]]

    rewrite_all(kit, insert)
    report = kit.verify()
    assert report.problems[0].kind == "signature"


def test_forge_a_checkpoint(kit: LogKit) -> None:
    last = kit.files()[-1]
    head = parse(kit.lines(last)[-1])
    extra = seal(seq=head.seq + 1, time=head.time, type="alert", data=alert(1), prev=head.hash)
    fake = seal(
        seq=extra.seq + 1,
        time=head.time,
        type="checkpoint",
        data={**head.data, "signature": "00" * 64},
        prev=extra.hash,
    )
    kit.set_lines(last, [*kit.lines(last), extra.line(), fake.line()])
    assert first(kit) == (last.name, len(kit.lines(last)), "signature")


def test_forge_a_checkpoint_with_another_key(kit: LogKit) -> None:
    mallory = Ed25519PrivateKey.generate()
    rewrite_all(kit, lambda records: records, signer=mallory)
    assert kinds(kit)[0] == "signature"


def test_replace_the_public_key(kit: LogKit, tmp_path: Path) -> None:
    original = tmp_path / "out-of-band.pub"
    shutil.copy(kit.dir / "audit.pub", original)
    mallory = Ed25519PrivateKey.generate()
    rewrite_all(kit, lambda records: records[:-5] + records[-3:], signer=mallory)
    (kit.dir / "audit.pub").write_bytes(public_pem(mallory.public_key()))
    # Caught with the out-of-band copy, and with the signing key on this machine …
    assert kinds(kit, public_keys=[original], key_file=None, head_file=None)[0] == "signature"
    assert kinds(kit)[0] == "signature"
    # … while the key beside the log proves nothing, and the report says so.
    beside = kit.verify(key_file=None)
    assert "NOT independent" in beside.keys


def test_truncate_the_tail(kit: LogKit) -> None:
    last = kit.files()[-1]
    kit.set_lines(last, kit.lines(last)[:-3])  # the stop checkpoint and two records
    assert "truncated" in kinds(kit)  # the head witness beside the key
    assert first(kit, key_file=None, public_keys=[kit.dir / "audit.pub"])[2] == "unsealed"


def test_truncate_back_to_an_earlier_run(kit: LogKit) -> None:
    sizes = {p: p.stat().st_size for p in kit.files()}
    kit.write(10, at=T0 + 500)  # a second run appends and closes cleanly
    assert kit.verify().ok
    for path in kit.files():
        if path not in sizes:
            path.unlink()
        else:
            path.write_bytes(path.read_bytes()[: sizes[path]])
    report = kit.verify()
    assert [p.kind for p in report.problems] == ["truncated"]  # sealed, yet the witness knows
    without_witness = kit.verify(key_file=None, public_keys=[kit.dir / "audit.pub"])
    assert without_witness.ok  # the documented limit: a sealed shorter log on its own


def test_truncate_in_the_middle_of_a_line(kit: LogKit) -> None:
    last = kit.files()[-1]
    data = last.read_bytes()
    last.write_bytes(data[:-40])
    assert first(kit)[2] == "torn"


def test_delete_the_first_file(kit: LogKit) -> None:
    kit.files()[0].unlink()
    file, line, kind = first(kit)
    assert (file, line, kind) == (kit.files()[0].name, 1, "sequence")


def test_delete_a_middle_file(kit: LogKit) -> None:
    gone = kit.files()[2]
    gone.unlink()
    assert first(kit)[:3] == (kit.files()[2].name, 1, "missing-file")


def test_delete_the_last_file(kit: LogKit) -> None:
    kit.files()[-1].unlink()
    assert set(kinds(kit)) == {"unsealed", "truncated"}


def test_delete_every_file(kit: LogKit) -> None:
    for path in kit.files():
        path.unlink()
    assert kinds(kit) == ["empty"]


def test_swap_two_files(kit: LogKit) -> None:
    a, b = kit.files()[1], kit.files()[2]
    tmp = a.with_suffix(".tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    assert first(kit)[:2] == (a.name, 1)


def test_forge_a_recovery_for_a_cut_line(kit: LogKit) -> None:
    """Cut the last record short, then 'explain' it like a crash would have been."""
    import hashlib

    last = kit.files()[-1]
    lines = kit.lines(last)
    keep, cut = b"".join(lines[:-2]), lines[-2][:50]
    last.write_bytes(keep + cut)
    head = parse(lines[-3])
    lost = {"file": last.name, "offset": len(keep), "length": len(cut),
            "sha256": hashlib.sha256(cut).hexdigest(), "preview": ""}  # fmt: skip
    recovery = seal(
        seq=head.seq + 1, time=head.time, type="recovery", prev=head.hash,
        data={"damaged": False, "reason": "crash", "lost": [lost]},
    )  # fmt: skip
    stop = parse(lines[-1])
    fake_stop = seal(seq=recovery.seq + 1, time=head.time, type="checkpoint",
                     data=stop.data, prev=recovery.hash)  # fmt: skip
    nxt = kit.dir / f"audit-{int(last.name[6:12]) + 1:06d}.jsonl"
    nxt.write_bytes(recovery.line() + fake_stop.line())
    assert "signature" in kinds(kit)


def test_damage_stays_visible_after_a_restart(kit: LogKit) -> None:
    last = kit.files()[-1]
    kit.set_lines(last, kit.lines(last)[:-3])
    log = kit.open(at=T0 + 900)  # the writer notices the witness is ahead of the log
    assert any("DAMAGED" in n for n in log.notices)
    log.close(T0 + 901)
    report = kit.verify()
    assert [p.kind for p in report.problems] == ["damaged"]  # the confession stays
    assert "cut off" in report.problems[0].message


def test_first_bad_record_is_named(kit: LogKit) -> None:
    path, index, _record = middle_alert(kit)
    lines = kit.lines(path)
    lines[index] = lines[index].replace(b'"severity":"high"', b'"severity":"info"')
    kit.set_lines(path, lines)
    bad = kit.verify().first_bad
    assert bad is not None
    assert str(bad).startswith(f"{path.name}:{index + 1}")


def test_truncate_under_a_running_writer(tmp_path: Path) -> None:
    """Cut while the stack runs: the writer's next record links to what was cut."""
    kit = LogKit(tmp_path)
    log = kit.write(7, close=False)
    last = kit.files()[-1]
    kit.set_lines(last, kit.lines(last)[:-2])  # the two records after the last checkpoint
    assert kit.verify(now=T0 + 10).ok  # the documented window: not visible yet …
    log.append("alert", alert(8), T0 + 11)
    log.flush()
    assert kinds(kit, now=T0 + 12) == ["sequence"]  # … until the writer writes again
    log.close(T0 + 13)


def test_cut_a_middle_file_mid_line(kit: LogKit) -> None:
    middle = kit.files()[1]
    middle.write_bytes(middle.read_bytes()[:-60])
    report = kit.verify()
    bad = report.problems[0]
    assert (bad.file, bad.kind) == (middle.name, "torn")
    assert bad.line == len(kit.lines(middle))  # the cut line itself
