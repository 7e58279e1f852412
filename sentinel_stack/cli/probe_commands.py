"""`sentinel-stack doctor` and `sentinel-stack probe record|replay`.

`probe record FILE` records the kernel events of the running stack (what its probe sends to
the event hub) into a JSON-lines file; with no stack running it runs a probe of its own.
`probe replay FILE` sends a recording to the running stack's event hub, where the detector
and the TUI see it as if the kernel had just produced it (or prints it when no stack runs).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

__all__ = ["PROBE_COMMANDS", "add_probe_verbs"]

EXIT_DEGRADED = 1
RECORDED_KINDS = ("events:kernel.", "events:probe.")


def add_probe_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    doctor = verbs.add_parser(
        "doctor",
        parents=[common],
        help="check that this machine can run the whole stack (eBPF, WAF, ports)",
    )
    doctor.add_argument(
        "--fix", action="store_true", help="install what apt can and mount tracefs (root)"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable report")

    probe = verbs.add_parser("probe", help="record kernel events, or replay a recording")
    actions = probe.add_subparsers(dest="probe_action", required=True, metavar="ACTION")
    record = actions.add_parser(
        "record", parents=[common], help="write the stack's kernel events to FILE (JSON lines)"
    )
    record.add_argument("file", type=Path)
    record.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    record.add_argument(
        "--standalone",
        action="store_true",
        help="run a probe of our own (root) even when a stack is running",
    )
    replay = actions.add_parser(
        "replay", parents=[common], help="send a recording to the running stack's event hub"
    )
    replay.add_argument("file", type=Path)
    replay.add_argument(
        "--speed", type=float, default=0.0, help="1 = as recorded, 0 = as fast as possible"
    )
    replay.add_argument("--retime", action="store_true", help="shift event times to now")
    replay.add_argument(
        "--stdout", action="store_true", help="print the events instead of sending them"
    )


# ---- doctor ----------------------------------------------------------------------------------

_MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


def cmd_doctor(args: argparse.Namespace) -> int:
    from sentinel_stack import doctor

    bpf_dir, ports, running = _doctor_inputs(args)
    report = doctor.examine(bpf_dir, ports, running)
    if args.fix and not report.full:
        if os.geteuid() != 0:
            print("doctor: --fix needs root (apt-get, mount); showing the checks only")
        else:
            failures = doctor.apply_fixes(report, _say)
            if failures:
                print(f"doctor: {failures} fix(es) failed; see above")
            report = doctor.examine(bpf_dir, ports, running)
    if args.json:
        print(
            json.dumps(
                {
                    "full": report.full,
                    "checks": [
                        {
                            "name": c.name,
                            "status": c.status,
                            "detail": c.detail,
                            "hint": c.hint,
                            "fixable": c.fix is not None,
                        }
                        for c in report.checks
                    ],
                },
                indent=2,
            )
        )
    else:
        for check in report.checks:
            print(f"[{_MARK[check.status]}] {check.name:<16} {check.detail}")
            if check.status != "ok" and check.hint:
                print(f"{'':24}fix: {check.hint}")
        fixable = any(c.fix is not None and c.status != "ok" for c in report.checks)
        if report.full:
            print("\nThis machine can run the whole stack.")
        else:
            print(
                "\nSome parts would run degraded."
                + (" `sentinel-stack doctor --fix` (as root) fixes some of it." if fixable else "")
            )
    return 0 if report.full else EXIT_DEGRADED


def _doctor_inputs(args: argparse.Namespace) -> tuple[Path, list[str], bool]:
    from sentinel_stack.cli.main import PACKAGE_ROOT, plan_for
    from sentinel_stack.probe.config import default_bpf_dir

    loaded, plan = plan_for(args)
    proxy = loaded.config.proxy
    ports: list[str] = []
    if proxy is not None:
        ports = [*proxy.listen, proxy.admin]
        if proxy.tls is not None:
            ports += proxy.tls.listen
    bpf_dir = default_bpf_dir()
    if not bpf_dir.is_dir():
        bpf_dir = PACKAGE_ROOT / "bpf"
    return bpf_dir, ports, _stack_running(plan.run_dir)


def _stack_running(run_dir: Path) -> bool:
    from sentinel_stack.control.client import ControlClient, NoStack

    try:
        with ControlClient(run_dir / "control.sock", timeout=5):
            return True
    except (NoStack, OSError):
        return False


def _say(message: str) -> None:
    print(f"doctor: {message}", flush=True)


# ---- probe record / replay -------------------------------------------------------------------


def cmd_probe(args: argparse.Namespace) -> int:
    from sentinel_stack.cli.main import plan_for

    run_dir = Path(args.run_dir) if args.run_dir is not None else plan_for(args)[1].run_dir
    running = _stack_running(run_dir)
    if args.probe_action == "record":
        if running and not args.standalone:
            return _record_from_stack(run_dir, args.file, args.duration)
        return _record_standalone(args.file, args.duration, running)
    return _replay(args, run_dir if running and not args.stdout else None)


def _record_from_stack(run_dir: Path, file: Path, duration: float | None) -> int:
    from sentinel_stack.control.client import ControlClient

    until = None if duration is None else time.monotonic() + duration
    progress = _progress_printer()
    count = 0
    print(
        f"recording the stack's kernel events to {file}"
        + (f" for {duration:g} s" if duration else "; Ctrl-C stops"),
        file=sys.stderr,
    )
    # Unbuffered: the file is complete at every moment, whatever ends the recording.
    with (
        ControlClient(run_dir / "control.sock", timeout=None) as client,
        file.open("ab", buffering=0) as out,
        _sigterm_as_interrupt(),
    ):
        try:
            for event in client.stream("subscribe", until=until, topics=list(RECORDED_KINDS)):
                out.write(msgspec.json.encode(event) + b"\n")
                count += 1
                progress(count)
        except KeyboardInterrupt:
            pass
    print(f"\nrecorded {count} events to {file}", file=sys.stderr)
    return 0


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a recording as Ctrl-C does: with the summary, not a traceback."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _record_standalone(file: Path, duration: float | None, running: bool) -> int:
    """No stack to listen to: become a probe that records (host scope, it has no stack)."""
    if os.geteuid() != 0:
        print(
            "probe record: no stack is running and a probe of our own needs root.\n"
            "    hint: start the stack (`sentinel-stack up`), or run this as root",
            file=sys.stderr,
        )
        return EXIT_DEGRADED
    note = "" if running else "no stack is running: "
    print(f"{note}running a host-scope probe, recording to {file}", file=sys.stderr)
    argv = [sys.executable, "-m", "sentinel_stack.probe", "record", str(file), "--scope", "host"]
    if duration is not None:
        argv = ["timeout", "--signal=INT", f"{duration:g}", *argv]
    os.execvp(argv[0], argv)  # noqa: S606 -- argv, no shell; becoming the probe


def _replay(args: argparse.Namespace, run_dir: Path | None) -> int:
    from sentinel_stack.probe.__main__ import main as probe_main

    if not args.file.is_file():
        print(f"probe replay: {args.file}: no such file", file=sys.stderr)
        return 2
    argv = ["replay", str(args.file), "--speed", str(args.speed)]
    if args.retime:
        argv.append("--retime")
    if run_dir is not None:
        argv += ["--events-socket", str(run_dir / "events.sock")]
    elif not args.stdout:
        print("no stack is running: printing the events instead", file=sys.stderr)
    return probe_main(argv)


def _progress_printer() -> Callable[[int], None]:
    """A once-a-second count on stderr when it is a terminal; silence otherwise."""
    if not sys.stderr.isatty():
        return lambda _count: None
    last = [0.0]

    def show(count: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            print(f"\r{count} events", end="", file=sys.stderr, flush=True)

    return show


PROBE_COMMANDS = {"doctor": cmd_doctor, "probe": cmd_probe}
