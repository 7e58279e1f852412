"""The guardian: kills whatever the launcher leaves behind, even when the launcher is SIGKILLed.

Started by the launcher (with ``python -I -S``, so it imports nothing of ours) in its own
session, with a pipe on stdin. The launcher writes one line per thing to guard:
``pgid N`` / ``forget N`` for process groups, and gives the stack's cgroup as argv[1].
When the pipe closes, for whatever reason the launcher went away, the guardian kills
the cgroup (``cgroup.kill``, which takes every descendant) and each process group still
registered, removes the cgroup directories and exits. A lifeline pipe is used instead
of PR_SET_PDEATHSIG because that signal follows the *thread* that forked, and Trio
spawns from worker threads that come and go.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path


def kill_cgroup(root: Path, deadline: float) -> None:
    if not root.is_dir():
        return
    kill_file = root / "cgroup.kill"
    if kill_file.exists():
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
    else:  # kernels before 5.14: kill member by member
        for procs in root.rglob("cgroup.procs"):
            for pid in procs.read_text().split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
    for directory in [*sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True), root]:
        while True:
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:  # still populated: the kill is being delivered
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)


def kill_groups(pgids: set[int]) -> None:
    for pgid in pgids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    cgroup = Path(argv[1]) if len(argv) > 1 and argv[1] else None
    pgids: set[int] = set()
    for raw in sys.stdin.buffer:
        verb, _, value = raw.decode(errors="replace").strip().partition(" ")
        if verb == "pgid" and value.isdigit():
            pgids.add(int(value))
        elif verb == "forget" and value.isdigit():
            pgids.discard(int(value))
    kill_groups(pgids)
    if cgroup is not None:
        kill_cgroup(cgroup, time.monotonic() + 2.0)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
