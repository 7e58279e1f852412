"""Command line: ``python -m sentinel_stack.detect --rules-dir DIR``.

Run by the launcher as the `[detector]` child: it subscribes to the stack's events through
`$SENTINEL_RUN_DIR/control.sock`, writes alerts to `$SENTINEL_EVENTS_SOCKET`, reads the stack
config from `$SENTINEL_CONFIG`, and reports READY=1 on `$NOTIFY_SOCKET`. SIGHUP reloads the
rules (a broken file keeps the last good rules and raises `rules_reload_failed`).

Standalone (no launcher: systemd, Compose, Kubernetes): with `--serve-events PATH`, an
inherited socket-activated listener named `events`, or when no launcher answers, it serves
the event hub itself and sends alerts to its sinks and its log (docs/detection.md).

Exit status: 0 on SIGINT/SIGTERM, 2 for usage or rule errors (each printed with file:line:col).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path

import trio

from sentinel_stack.child.activation import listen_sockets
from sentinel_stack.detect.rules_loader import RulesError, bundled_rules_dir
from sentinel_stack.detect.service import DetectorSettings
from sentinel_stack.detect.standalone import EVENTS_FD_NAME, run_detector_auto

log = logging.getLogger("sentinel_stack.detect")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detect", description=__doc__.splitlines()[0])
    parser.add_argument("--rules-dir", type=Path, required=True, help="directory of *.toml rules")
    parser.add_argument(
        "--control-socket", type=Path, help="default: $SENTINEL_RUN_DIR/control.sock"
    )
    parser.add_argument("--events-socket", type=Path, help="default: $SENTINEL_EVENTS_SOCKET")
    parser.add_argument("--config", type=Path, help="the stack config (default: $SENTINEL_CONFIG)")
    parser.add_argument(
        "--serve-events",
        type=Path,
        metavar="PATH",
        help="standalone: serve the event hub at PATH (an inherited `events` socket wins)",
    )
    parser.add_argument(
        "--alert-file",
        type=Path,
        metavar="PATH",
        help="append alerts to PATH as JSON lines (overrides [detector.alert_file] path)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser


async def _serve(settings: DetectorSettings, listener: socket.socket | None) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_detector_auto, settings, listener)
            async for signum in signals:
                log.info("stopping on %s", signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                return


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="detect %(relativeCreated)6.0fms %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    rules_dir = args.rules_dir
    if not rules_dir.is_dir():
        rules_dir = bundled_rules_dir()
        log.warning(
            "no rules directory at %s; using the bundled rules in %s", args.rules_dir, rules_dir
        )
    settings = DetectorSettings.from_environment(rules_dir, os.environ)
    for flag, key in (
        ("control_socket", "control_socket"),
        ("events_socket", "events_socket"),
        ("config", "config_path"),
        ("serve_events", "serve_events"),
        ("alert_file", "alert_file"),
    ):
        if getattr(args, flag) is not None:
            settings = replace(settings, **{key: getattr(args, flag)})
    inherited = listen_sockets()
    listener = inherited.pop(EVENTS_FD_NAME, None)
    for name, unused in inherited.items():
        log.warning(
            "ignoring inherited socket %r: only one named %r is served", name, EVENTS_FD_NAME
        )
        unused.close()
    status = 0
    try:
        trio.run(_serve, settings, listener)
    except* RulesError as failed:
        for error in failed.exceptions:
            log.error("%s", error)  # noqa: TRY400 -- every problem, with file:line:col
        status = 2
    except* ValueError as usage:
        for problem in usage.exceptions:
            log.error("%s", problem)  # noqa: TRY400
        status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
