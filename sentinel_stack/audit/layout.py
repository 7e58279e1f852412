"""The audit directory: numbered files, the writer's lock, lines as they lie on disk.

<dir>/audit-000001.jsonl   records, oldest first; rotation opens the next number
<dir>/audit-000002.jsonl
<dir>/audit.pub            public key(s) for verifiers
<dir>/writer.lock          flock held by the running writer
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from sentinel_stack.audit.record import AuditRecord, BadRecord, parse_line

LOCK_FILE = "writer.lock"
_NAME = re.compile(r"^audit-(\d{6,})\.jsonl$")


class LogBusy(RuntimeError):
    pass


def file_name(number: int) -> str:
    return f"audit-{number:06d}.jsonl"


def file_number(name: str) -> int | None:
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def log_files(directory: Path) -> list[Path]:
    """The log's files, oldest first (by number, not by name or time)."""
    found = [(file_number(p.name), p) for p in directory.glob("audit-*.jsonl")]
    return [p for n, p in sorted((n, p) for n, p in found if n is not None)]


def acquire_lock(directory: Path) -> int:
    """Take the writer lock (one writer per log); the fd holds it until closed."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise LogBusy(
            f"the audit log {directory} is being written by another launcher (pid {owner}); "
            "give each stack its own [audit] dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def writer_running(directory: Path) -> bool:
    """Whether a writer holds the lock now (a shared lock would be refused)."""
    try:
        fd = os.open(directory / LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return False


@dataclass(frozen=True)
class Line:
    """One complete line of a file: 1-based ``number``, byte ``offset``, parse result."""

    number: int
    offset: int
    raw: bytes
    record: AuditRecord | None
    error: str = ""
    seq_hint: int | None = None  # a bad line's seq, when it still reads as one
    error_kind: str = ""


@dataclass(frozen=True)
class Fragment:
    """Bytes after the last newline: a line whose writing never finished."""

    offset: int
    raw: bytes


@dataclass(frozen=True)
class FileLines:
    path: Path
    lines: list[Line]
    fragment: Fragment | None
    size: int

    @property
    def fragment_line(self) -> int:
        return len(self.lines) + 1


def read_lines(path: Path, data: bytes | None = None) -> FileLines:
    """Every line of ``path`` parsed (bad ones keep their error), plus a torn fragment."""
    if data is None:
        data = path.read_bytes()
    lines: list[Line] = []
    offset = 0
    for number, raw in enumerate(_complete_lines(data), start=1):
        try:
            lines.append(Line(number, offset, raw, parse_line(raw)))
        except BadRecord as exc:
            lines.append(Line(number, offset, raw, None, str(exc), _seq_hint(raw), exc.kind))
        offset += len(raw) + 1
    fragment = Fragment(offset, data[offset:]) if offset < len(data) else None
    return FileLines(path, lines, fragment, len(data))


def _seq_hint(raw: bytes) -> int | None:
    try:
        seq = msgspec.json.decode(raw, type=dict[str, Any]).get("seq")
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _complete_lines(data: bytes) -> Iterator[bytes]:
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            return
        yield data[start:end]
        start = end + 1


def iter_records(paths: list[Path]) -> Iterator[AuditRecord]:
    """Records that parse, in file order (export's reader; `verify` is the checker)."""
    for path in paths:
        for line in read_lines(path).lines:
            if line.record is not None:
                yield line.record
