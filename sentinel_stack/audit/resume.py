"""Where a new writer picks the chain up, and what it must confess first.

Read from the newest file backwards: the last record that parses and links to the one
before it is the head. What lies after it decides the rest:

- nothing: append to that file (or to the file its rotation checkpoint names);
- only a torn final line (a crash mid-write): the bytes stay where they are — an audit
  writer does not erase — and a new file starts with a ``recovery`` record naming them
  (file, offset, length, SHA-256, a preview). `verify` accepts a torn line only when the
  next file's first record names exactly those bytes;
- anything else (whole lines that do not parse, a broken link, a file emptied, the head
  witness ahead of the log): the log was damaged or tampered with. The writer still
  records — in a new file, after a ``recovery`` record with ``"damaged": true`` — and
  `verify` keeps failing on both the damage and that confession: it cannot be healed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel_stack.audit.keys import HeadWitness
from sentinel_stack.audit.layout import FileLines, file_name, file_number
from sentinel_stack.audit.record import GENESIS_PREV, AuditRecord

PREVIEW = 160


@dataclass
class Resume:
    """The writer's starting point; ``log_id`` None means a new log (genesis)."""

    log_id: str | None
    next_seq: int
    head_hash: str
    write_file: str
    last_checkpoint_seq: int | None = None
    last_checkpoint_time: float | None = None
    since_checkpoint: int = 0
    clean: bool = True
    previous_key_id: str | None = None
    recovery: dict[str, Any] | None = None
    notices: list[str] = field(default_factory=list)


def new_log_id() -> str:
    return uuid.uuid4().hex


def plan_resume(
    paths: list[Path],
    load: Callable[[Path], FileLines],
    witness: Callable[[str], HeadWitness | None] = lambda _log_id: None,
) -> Resume:
    """How to continue the log in ``paths`` (oldest first); ``load`` reads one file."""
    if not paths:
        return Resume(None, 0, GENESIS_PREV, file_name(1))
    loaded: dict[int, FileLines] = {}

    def get(index: int) -> FileLines:
        if index not in loaded:
            loaded[index] = load(paths[index])
        return loaded[index]

    found = _last_record(paths, get)
    last_number = file_number(paths[-1].name) or len(paths)
    if found is None:
        return _damaged_without_head(paths, get, last_number)
    index, position = found
    head = get(index).lines[position].record
    assert head is not None
    damage: list[str] = []
    lost = _lost_after(paths, get, index, position)
    torn = len(lost) == 1 and lost[0].pop("torn", False)
    if lost and not torn:
        damage.append(f"{_region_text(lost)} after seq {head.seq} cannot be read as records")
    broken = _broken_link(paths, get, index, position)
    if broken:
        damage.append(broken)

    walk = _walk_back(paths, get, index, position)
    log_id, checkpoint, since, hashes = _scan_back(walk)
    if log_id is None:
        damage.append("no record names the log's id (the genesis record is gone)")
        log_id = new_log_id()
    seen = witness(log_id)
    if seen is not None:
        damage.extend(_witness_damage(seen, head, hashes, walk))

    resume = Resume(log_id, head.seq + 1, head.hash, paths[index].name)
    if checkpoint is not None:
        resume.last_checkpoint_seq, resume.last_checkpoint_time = checkpoint.seq, checkpoint.time
        kid = checkpoint.data.get("key_id")
        resume.previous_key_id = kid if isinstance(kid, str) else None
    resume.since_checkpoint = since
    resume.clean = head.type == "checkpoint" and head.data.get("reason") == "stop"
    if damage or lost:
        newest_empty = get(len(paths) - 1).size == 0 and len(paths) - 1 > index
        resume.write_file = paths[-1].name if newest_empty else file_name(last_number + 1)
        resume.recovery = {
            "damaged": bool(damage),
            "reason": "; ".join(damage) if damage else "the final line was cut short (crash?)",
            "lost": lost,
            "resumed_after": {"seq": head.seq, "hash": head.hash, "file": paths[index].name},
        }
        resume.notices.append(
            f"audit log {'DAMAGED' if damage else 'recovered a torn final line'}: "
            f"{resume.recovery['reason']}; continuing in {resume.write_file}"
        )
    elif head.type == "checkpoint" and head.data.get("reason") == "rotate":
        resume.write_file = str(head.data.get("next_file") or file_name(last_number + 1))
    return resume


def _last_record(paths: list[Path], get: Callable[[int], FileLines]) -> tuple[int, int] | None:
    for index in range(len(paths) - 1, -1, -1):
        lines = get(index).lines
        for position in range(len(lines) - 1, -1, -1):
            if lines[position].record is not None:
                return index, position
    return None


def _lost_after(
    paths: list[Path], get: Callable[[int], FileLines], index: int, position: int
) -> list[dict[str, Any]]:
    """Unreadable bytes after the head: bad lines and a torn fragment in its file, and
    whole later files. Empty files hold nothing and are not counted (a crash between
    creating a file and writing to it leaves one)."""
    regions: list[dict[str, Any]] = []
    lines = get(index)
    after = lines.lines[position + 1 :]
    if after or lines.fragment is not None:
        start = after[0].offset if after else lines.fragment.offset  # type: ignore[union-attr]
        region = _region(lines.path.name, _tail_bytes(lines, start), start)
        if not after:
            region["torn"] = True
        regions.append(region)
    for later in range(index + 1, len(paths)):
        if get(later).size:
            regions.append(_region(paths[later].name, paths[later].read_bytes(), 0))
    return regions


def _tail_bytes(lines: FileLines, start: int) -> bytes:
    parts = [ln.raw + b"\n" for ln in lines.lines if ln.offset >= start]
    if lines.fragment is not None:
        parts.append(lines.fragment.raw)
    return b"".join(parts)


def _region(name: str, raw: bytes, offset: int) -> dict[str, Any]:
    return {
        "file": name,
        "offset": offset,
        "length": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "preview": raw[:PREVIEW].decode("utf-8", errors="backslashreplace"),
    }


def _region_text(regions: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['length']} bytes at {r['file']}:{r['offset']}" for r in regions)


def _broken_link(
    paths: list[Path], get: Callable[[int], FileLines], index: int, position: int
) -> str:
    head = get(index).lines[position].record
    assert head is not None
    previous = next(_walk_back(paths, get, index, position - 1, strict=True), None)
    if head.seq == 0:
        return "" if head.prev == GENESIS_PREV and previous is None else "a second genesis record"
    after = head.data.get("resumed_after")
    if head.type == "recovery" and isinstance(after, dict) and after.get("hash") == head.prev:
        return ""  # a recovery record chains over the damage it names
    if previous is None or previous.hash != head.prev or previous.seq + 1 != head.seq:
        return f"the last record (seq {head.seq}) does not link to the line before it"
    return ""


def _walk_back(
    paths: list[Path],
    get: Callable[[int], FileLines],
    index: int,
    position: int,
    strict: bool = False,
) -> Iterator[AuditRecord]:
    """Records backwards from (index, position); ``strict`` stops at the first bad line."""
    while index >= 0:
        lines = get(index).lines
        for pos in range(min(position, len(lines) - 1), -1, -1):
            record = lines[pos].record
            if record is None:
                if strict:
                    yield from ()
                    return
                continue
            yield record
            if strict:
                return
        index -= 1
        position = 1 << 62


def _scan_back(
    walk: Iterator[AuditRecord],
) -> tuple[str | None, AuditRecord | None, int, dict[int, str]]:
    """The log id, the newest checkpoint and how many records follow it, and the hashes
    seen on the way (for the witness)."""
    log_id: str | None = None
    checkpoint: AuditRecord | None = None
    since = 0
    hashes: dict[int, str] = {}
    for record in walk:
        hashes[record.seq] = record.hash
        if checkpoint is None:
            if record.type == "checkpoint":
                checkpoint = record
            else:
                since += 1
        if log_id is None and isinstance(record.data.get("log_id"), str):
            log_id = record.data["log_id"]
        if log_id is not None and checkpoint is not None:
            break
    return log_id, checkpoint, since, hashes


def _witness_damage(
    seen: HeadWitness, head: AuditRecord, hashes: dict[int, str], walk: Iterator[AuditRecord]
) -> list[str]:
    if seen.seq > head.seq:
        return [
            f"the head witness records checkpoint seq {seen.seq} ({seen.file}) "
            f"but the log ends at seq {head.seq}: its tail was cut off"
        ]
    if seen.seq not in hashes:
        for record in walk:
            hashes[record.seq] = record.hash
            if record.seq <= seen.seq:
                break
    if hashes.get(seen.seq, seen.hash) != seen.hash:
        return [f"checkpoint seq {seen.seq} differs from the one the head witness records"]
    return []


def _damaged_without_head(
    paths: list[Path], get: Callable[[int], FileLines], last_number: int
) -> Resume:
    """Files exist but not one record parses: start a new log beside the wreckage."""
    lost = [_region(p.name, p.read_bytes(), 0) for p in paths]
    resume = Resume(None, 0, GENESIS_PREV, file_name(last_number + 1))
    resume.recovery = {
        "damaged": True,
        "reason": f"no readable record in {len(paths)} existing file(s)",
        "lost": lost,
    }
    resume.notices.append(
        f"audit log DAMAGED: no readable record in {len(paths)} file(s); "
        f"a new chain starts in {resume.write_file}"
    )
    return resume
