"""Create and remove a simulation run's sandbox (layout: `scenarios.Sandbox`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sentinel_stack.demo.scenarios import Sandbox

__all__ = ["SandboxError", "sandbox"]


class SandboxError(RuntimeError):
    pass


def _own_root(root: Path) -> None:
    """``root`` is a fixed name in a shared tmpdir: refuse one planted by someone else."""
    try:
        root.mkdir(mode=0o755)
    except FileExistsError:
        pass  # checked below
    except OSError as exc:
        raise SandboxError(f"cannot create the sandbox root {root}: {exc.strerror}") from exc
    info = root.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (os.geteuid(), 0):
        raise SandboxError(
            f"{root} is not a directory owned by this user or root; remove it, or pass "
            "--sandbox-root DIR"
        )


@contextlib.contextmanager
def sandbox(root: Path) -> Iterator[Sandbox]:
    """A fresh ``<root>/run-XXXX`` with the mirrored tree and seeded logs; removed (with the
    /dev/shm file of the run) on exit, whatever happened."""
    _own_root(root)
    directory = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    box = Sandbox(directory, directory.name.removeprefix("run-"))
    try:
        for folder in box.directories:
            folder.mkdir(parents=True, exist_ok=True)
        for path, content in box.seeded_files.items():
            # O_EXCL, not O_TRUNC: seeding a log must not look like tampering with one.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as file:
                file.write(content)
        yield box
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        for path in box.outside:
            path.unlink(missing_ok=True)
