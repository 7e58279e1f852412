"""Entry points: `sentinel-stack attach`, and `sentinel-stack up` with the TUI.

`up` with the TUI forks before anything runs: the child becomes the launcher, exactly as
`up --no-tui` runs it but in a session of its own, its output going to
`<run-dir>/launcher.log`; the parent becomes a TUI attached to it through the control API.
So the TUI can crash, lag or be closed without touching supervision, and `d` can leave the
stack running. A lifeline pipe ties the stack to the TUI unless the TUI detached: if the TUI
process dies without a word (SIGKILL, a closed terminal), the launcher gets SIGTERM and
shuts down gracefully, as Ctrl-C would have done headless.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from sentinel_stack.tui.app import Outcome, SentinelApp
from sentinel_stack.tui.client import StackControl
from sentinel_stack.tui.feed import ControlFeed

READY_TIMEOUT = 60.0
DETACH = b"detach\n"
EXIT_FAILED = 1


def attach(control: Path, *, read_only: bool = False, refresh_hz: float = 10.0) -> int:
    """Open the TUI on a running stack; the stack is untouched unless the user says so."""
    run_dir = control.parent
    app = SentinelApp(
        ControlFeed(control),
        None if read_only else StackControl(control),
        mode="attach",
        refresh_hz=refresh_hz,
        export_dir=run_dir / "exports",
        handle_signals=True,
    )
    outcome = _run_app(app, run_dir)
    if outcome is None:
        return EXIT_FAILED
    if outcome.action == "down":
        print(f"stack stopped ({run_dir})")
        return 1 if outcome.failure else 0
    if outcome.action == "gone":
        print(f"sentinel-stack: {outcome.message}", file=sys.stderr)
    return 0


def up_with_tui(
    run_dir: Path, stack_name: str, run_launcher: Callable[[], int], *, refresh_hz: float = 10.0
) -> int:
    """Fork the launcher (``run_launcher`` runs it and returns its exit code), show the TUI.

    Returns what `up` returns: the launcher's exit code once it has stopped, or 0 after a
    detach.
    """
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = run_dir / "launcher.log"
    log_start = log_path.stat().st_size if log_path.exists() else 0
    lifeline_read, lifeline_write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the launcher
        os.close(lifeline_write)
        os._exit(_launcher_child(run_launcher, lifeline_read, log_path))
    os.close(lifeline_read)
    control = run_dir / "control.sock"
    try:
        ready = _wait_ready(pid, control)
    except KeyboardInterrupt:  # Ctrl-C before the TUI is up: stop, as headless would
        os.kill(pid, signal.SIGTERM)
        ready = _wait_launcher(pid)
    if ready is not None:  # the launcher ended before it was ready: say why
        os.close(lifeline_write)
        print(_tail(log_path, log_start), end="", file=sys.stderr)
        return ready
    app = SentinelApp(
        ControlFeed(control),
        StackControl(control),
        mode="up",
        refresh_hz=refresh_hz,
        export_dir=run_dir / "exports",
        handle_signals=True,
    )
    outcome = _run_app(app, run_dir)
    if outcome is not None and outcome.action == "detach":
        os.write(lifeline_write, DETACH)
        os.close(lifeline_write)
        print(
            f"detached: stack `{stack_name}` keeps running (launcher pid {pid}).\n"
            f"    `sentinel-stack attach` to watch it again, `sentinel-stack down` to stop it "
            "(same --config/--run-dir as `up`)"
        )
        return 0
    if outcome is not None and outcome.action == "force":
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # the launcher's "second Ctrl-C": kill everything now
    if outcome is None:  # the TUI failed: stop the stack it started, gracefully
        print("stopping the stack…", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    # The lifeline stays open until the launcher is gone: closing it sends SIGTERM, which a
    # launcher already stopping takes as a second interrupt (kill everything now).
    code = _wait_launcher(pid)
    os.close(lifeline_write)
    if outcome is not None:
        print(_tail(log_path, log_start), end="", file=sys.stderr)
        failure = f": {outcome.failure}" if outcome.failure else ""
        print(f"stack `{stack_name}` stopped{failure}")
    return EXIT_FAILED if outcome is None else code


def _launcher_child(run_launcher: Callable[[], int], lifeline: int, log_path: Path) -> int:
    """In the forked child: a session of its own, output to the log, then the launcher."""
    code = EXIT_FAILED
    try:
        os.setsid()  # the terminal's signals (Ctrl-C, hang-up) are the TUI's to handle
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        threading.Thread(target=_hold_lifeline, args=(lifeline,), daemon=True).start()
        code = run_launcher()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else EXIT_FAILED
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    return code


def _hold_lifeline(fd: int) -> None:
    """Block until the TUI process closes its end; unless it detached first, stop the stack."""
    received = b""
    while chunk := os.read(fd, 64):
        received += chunk
    os.close(fd)
    if DETACH not in received:
        os.kill(os.getpid(), signal.SIGTERM)


def _wait_ready(pid: int, control: Path) -> int | None:
    """None once our launcher answers on ``control``; its exit code if it ended first."""
    from sentinel_stack.control.client import ControlClient, NoStack

    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return os.waitstatus_to_exitcode(status)
        with (
            contextlib.suppress(NoStack, OSError, ValueError),
            ControlClient(control, 2.0) as client,
        ):
            # another stack may own this socket until ours notices and exits
            if client.request("status")["stack"]["pid"] == pid:
                return None
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGTERM)
            return _wait_launcher(pid)
        time.sleep(0.05)


def _wait_launcher(pid: int) -> int:
    """Wait for the launcher to exit; Ctrl-C here is the headless "second Ctrl-C"."""
    while True:
        try:
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        except KeyboardInterrupt:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)
        except ChildProcessError:
            return EXIT_FAILED


def _run_app(app: SentinelApp, run_dir: Path) -> Outcome | None:
    """Run the TUI; None if it failed (the traceback goes to `<run-dir>/tui.log`)."""
    try:
        outcome = app.run()
    except Exception:
        app.crash_trace = app.crash_trace or traceback.format_exc()
        outcome = None
    if outcome is None or app.crash_trace:
        log = run_dir / "tui.log"
        with contextlib.suppress(OSError), log.open("a") as f:
            f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} TUI failed\n")
            f.write(app.crash_trace or "the TUI ended without an outcome\n")
        print(f"sentinel-stack: the TUI failed; traceback in {log}", file=sys.stderr)
        return None
    return outcome


def _tail(path: Path, start: int, limit: int = 4000) -> str:
    """What the launcher wrote since ``start`` (errors it printed), at most ``limit`` bytes."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return text[-limit:]
