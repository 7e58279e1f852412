"""Command line: ``python -m sentinel_stack.probe run | record FILE | replay FILE``.

    run            watch the kernel and publish events (hub socket, or stdout without one)
    record FILE    the same, also writing every event to FILE (JSON lines)
    replay FILE    publish a recording to the hub (or stdout) instead of watching

Exit status: 0 on a clean stop (SIGINT/SIGTERM), 1 when the backend failed, 2 for usage.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

import trio

from sentinel_stack.probe.backend import BackendFailed
from sentinel_stack.probe.config import (
    DEFAULT_SENSITIVE_PATHS,
    DEFAULT_WATCH_PATHS,
    PROGRAM_NAMES,
    PathPattern,
    ProbeConfig,
    default_bpf_dir,
)
from sentinel_stack.probe.hub import HubPublisher, StdoutPublisher
from sentinel_stack.probe.replay import replay
from sentinel_stack.probe.service import run_probe

log = logging.getLogger("sentinel_stack.probe")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    common.add_argument(
        "--events-socket", type=Path, help="event hub socket (default: $SENTINEL_EVENTS_SOCKET)"
    )
    parser = argparse.ArgumentParser(prog="probe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="watch the kernel, publish events")
    record = commands.add_parser("record", parents=[common], help="run, and write events to FILE")
    record.add_argument("file", type=Path)
    for sub in (run, record):
        sub.add_argument("--scope", choices=["stack", "host"], default="stack")
        sub.add_argument("--backend", choices=["auto", "bpftrace", "procfs"], default="auto")
        sub.add_argument(
            "--sensitive-path",
            action="append",
            metavar="P",
            help=f"repeatable; default: {' '.join(DEFAULT_SENSITIVE_PATHS)}",
        )
        sub.add_argument(
            "--watch-path",
            action="append",
            metavar="P",
            help=f"repeatable; default: {' '.join(DEFAULT_WATCH_PATHS)}",
        )
        sub.add_argument("--bpf-dir", type=Path, default=None, help=f"default: {default_bpf_dir()}")
        sub.add_argument("--bpftrace", default="bpftrace", help="the bpftrace binary to run")
        sub.add_argument(
            "--program",
            action="append",
            choices=PROGRAM_NAMES,
            help="only these bpftrace programs (repeatable; default: all)",
        )
    play = commands.add_parser("replay", parents=[common], help="publish a recording")
    play.add_argument("file", type=Path)
    play.add_argument("--speed", type=float, default=0.0, help="1 = as recorded, 0 = flat out")
    play.add_argument("--retime", action="store_true", help="shift event times to now")
    return parser


def config_from_args(args: argparse.Namespace) -> ProbeConfig:
    """Environment first (the launcher contract), then the flags given."""
    config = ProbeConfig.from_environment()
    config = replace(config, scope=args.scope, backend=args.backend, bpftrace=args.bpftrace)
    if args.events_socket is not None:
        config = replace(config, events_socket=args.events_socket)
    if args.bpf_dir is not None:
        config = replace(config, bpf_dir=args.bpf_dir)
    if args.sensitive_path:
        config = replace(config, sensitive=tuple(map(PathPattern.parse, args.sensitive_path)))
    if args.watch_path:
        config = replace(config, watched=tuple(map(PathPattern.parse, args.watch_path)))
    if args.program:
        config = replace(config, programs=tuple(p for p in PROGRAM_NAMES if p in args.program))
    return config


async def _serve(config: ProbeConfig, record: Path | None) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def stop_on_signal() -> None:
                async for signum in signals:
                    log.info("stopping on %s", signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    return

            nursery.start_soon(stop_on_signal)
            if record is None:
                await nursery.start(run_probe, config)
            else:
                handle = record.open("ab", buffering=1 << 16)
                try:
                    await nursery.start(lambda task_status: run_probe(
                        config, recorder=handle, task_status=task_status))  # fmt: skip
                    await trio.sleep_forever()
                finally:
                    handle.close()


async def _replay(args: argparse.Namespace, config: ProbeConfig) -> None:
    sink: HubPublisher | StdoutPublisher
    if config.events_socket is not None:
        try:
            probe_connection = await trio.open_unix_socket(str(config.events_socket))
        except OSError as exc:
            raise ValueError(
                f"cannot reach the event hub at {config.events_socket}: {exc}"
            ) from None
        await probe_connection.aclose()
        sink = HubPublisher(config.events_socket)
    else:
        sink = StdoutPublisher()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(sink.run)
        stats = await replay(args.file, sink, speed=args.speed, retime=args.retime)
        with trio.move_on_after(10):  # let the writer send what is queued
            await sink.drained(stats.replayed)
        nursery.cancel_scope.cancel()
    log.info(
        "replayed %d events from %s (%d lines skipped, %d dropped)",
        stats.replayed,
        args.file,
        stats.skipped,
        sink.dropped,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="probe %(relativeCreated)6.0fms %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    status = 0
    try:
        if args.command == "replay":
            config = ProbeConfig.from_environment()
            if args.events_socket is not None:
                config = replace(config, events_socket=args.events_socket)
            trio.run(_replay, args, config)
        else:
            config = config_from_args(args)
            trio.run(_serve, config, args.file if args.command == "record" else None)
    except* ValueError as usage:
        for error in usage.exceptions:
            log.error("%s", error)  # noqa: TRY400 -- a message for a person, not a traceback
        status = 2
    except* BackendFailed as failure:
        for failed in failure.exceptions:
            log.error("%s", failed)  # noqa: TRY400 -- the message says what failed
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
