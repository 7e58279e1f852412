"""Saving the denylist to a JSON-lines file and reading it back at start.

One entry per line, so the file diffs and greps well and a damaged line costs one entry, not
the list. Saving is atomic (temporary file in the same directory, fsync, rename, fsync of
the directory): a crash or power loss leaves either the old file or the new one, never a
half-written denylist. Reading drops entries that expired while the agent was down.

The text codec (`dump_entries`, `parse_entries`) is pure; only `save_denylist` and
`load_denylist` touch the filesystem.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sentinel_agents.denylist.denylist import Denylist
from sentinel_agents.denylist.model import DenyEntry, DenylistError, normalise_entry

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What reading a saved denylist found.

    ``problems`` are lines that could not be read, each as ``file:line: why``; they are
    skipped rather than fatal so one bad line cannot leave the service without a denylist,
    and the wrapper reports them.
    """

    entries: list[DenyEntry]
    expired: int = 0
    problems: list[str] = field(default_factory=list)


def dump_entries(entries: Iterable[DenyEntry]) -> str:
    """JSON lines, one entry per line, in a stable key order."""
    lines = []
    for entry in entries:
        record: dict[str, object] = {"v": FORMAT_VERSION, "kind": entry.kind, "value": entry.value}
        if entry.header:
            record["header"] = entry.header
        if entry.reason:
            record["reason"] = entry.reason
        record["created_at"] = entry.created_at
        record["expires_at"] = entry.expires_at
        lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))
    return "".join(line + "\n" for line in lines)


def parse_entries(text: str, *, now: float, source: str = "<denylist>") -> LoadReport:
    """Entries from JSON-lines text, leaving out those expired at ``now``."""
    entries: list[DenyEntry] = []
    problems: list[str] = []
    expired = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = _entry_from_line(line)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(f"{source}:{number}: {exc}")
            continue
        if entry.expired(now):
            expired += 1
        else:
            entries.append(entry)
    return LoadReport(entries, expired, problems)


def save_denylist(path: Path, denylist: Denylist, *, now: float) -> None:
    """Atomically replace ``path`` with the live entries at ``now``."""
    text = dump_entries(listed.entry for listed in denylist.entries(now))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_denylist(path: Path, *, now: float) -> tuple[Denylist, LoadReport]:
    """A denylist from ``path`` (empty when the file does not exist yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    report = parse_entries(text, now=now, source=str(path))
    denylist = Denylist()
    for entry in report.entries:
        denylist.put(entry)
    return denylist, report


def _entry_from_line(line: str) -> DenyEntry:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise TypeError("expected a JSON object")
    version = record.get("v", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"unsupported format version {version!r} (this agent reads {FORMAT_VERSION})"
        )
    kind, value = record["kind"], record["value"]
    header, reason = record.get("header", ""), record.get("reason", "")
    created_at, expires_at = record.get("created_at", 0.0), record.get("expires_at")
    if not all(isinstance(v, str) for v in (kind, value, header, reason)):
        raise ValueError("kind, value, header and reason must be strings")
    if not _is_number(created_at) or not (expires_at is None or _is_number(expires_at)):
        raise ValueError("created_at and expires_at must be numbers (expires_at may be null)")
    try:
        return normalise_entry(
            kind,
            value,
            header=header,
            reason=reason,
            created_at=float(created_at),
            expires_at=None if expires_at is None else float(expires_at),
        )
    except DenylistError as exc:
        raise ValueError(str(exc)) from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
