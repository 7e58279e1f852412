"""Put an export's files on disk: list first, refuse to clobber, write atomically.

`plan_writes` compares the files with what is already in the output directory (pure apart
from reading it); `apply_writes` writes each changed file to a temporary sibling and
renames it into place, so a reader (or a crash) never sees half a unit file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

__all__ = ["FileWrite", "OverwriteRefused", "apply_writes", "plan_writes", "render_listing"]

Action = Literal["create", "replace", "unchanged"]


class OverwriteRefused(Exception):
    """Files exist with other content and `--force` was not given."""

    def __init__(self, out: Path, paths: list[str]) -> None:
        listed = "\n".join(f"    {out / p}" for p in paths)
        super().__init__(
            f"{len(paths)} file(s) in {out} would be overwritten:\n{listed}\n"
            "    hint: pass --force to replace them, --dry-run to see the whole list, "
            "or choose another --out"
        )
        self.paths = paths


@dataclass(frozen=True)
class FileWrite:
    path: str  # relative to the output directory
    text: str
    action: Action


def plan_writes(files: Mapping[str, str], out: Path) -> list[FileWrite]:
    """What writing ``files`` under ``out`` would do, in path order."""
    writes = []
    for path in sorted(files):
        relative = PurePosixPath(path)
        if relative.is_absolute() or ".." in relative.parts:
            raise ValueError(f"export file path {path!r} must stay inside the output directory")
        target = out / path
        action: Action = "create"
        if target.is_file():
            try:
                same = target.read_text(encoding="utf-8") == files[path]
            except UnicodeDecodeError:
                same = False
            action = "unchanged" if same else "replace"
        elif target.exists():
            action = "replace"
        writes.append(FileWrite(path, files[path], action))
    return writes


def apply_writes(writes: list[FileWrite], out: Path, *, force: bool) -> int:
    """Write every created or replaced file; returns how many were written."""
    refused = [w.path for w in writes if w.action == "replace"]
    if refused and not force:
        raise OverwriteRefused(out, refused)
    written = 0
    for write in writes:
        if write.action == "unchanged":
            continue
        _write_atomically(out / write.path, write.text)
        written += 1
    return written


def render_listing(writes: list[FileWrite], out: Path, *, dry_run: bool) -> str:
    verbs = {
        "create": "would create" if dry_run else "created",
        "replace": "would replace" if dry_run else "replaced",
        "unchanged": "unchanged",
    }
    width = max((len(v) for v in verbs.values()), default=0)
    return "\n".join(
        f"{verbs[w.action]:<{width}}  {out / w.path}  ({len(w.text.encode())} bytes)"
        for w in writes
    )


def _write_atomically(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes 0600; these files are meant to be read
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
