"""`sentinel-stack alerts` and `sentinel-stack baseline show|reset|learn`.

``alerts`` lists the running stack's recent alerts (the control API's ``alerts`` op: the
event hub's alert ring) and with ``--follow`` streams new ones (``subscribe`` to
``events:alert``). With no stack running it reads the detector's JSON-lines alert file
(``[detector.alert_file]``, default ``alerts.jsonl`` in the detector's state directory — see
sentinel_stack/statedir.py — rotated files included), and follows that file instead.

``baseline`` works on the detector's baseline file; a running detector notices a removed
or replaced file within a second (see sentinel_stack/detect/baseline_store.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from sentinel_stack.config.loader import LoadedConfig
from sentinel_stack.detect.alert import SEVERITIES, severity_rank
from sentinel_stack.statedir import child_state_dir
from sentinel_stack.tui.format import printable

__all__ = ["ALERT_COMMANDS", "add_alert_verbs", "render_alert"]

EXIT_NOTHING = 1
STATE_DIR_HELP = (
    "the detector's state directory (default: .sentinel-stack/state/<stack>/detector beside "
    "the config, or $XDG_STATE_HOME/sentinel-stack/<stack>/state/detector for the embedded "
    "config)"
)
RING = 1000  # the hub keeps this many alerts
FOLLOW_POLL = 0.25


def add_alert_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``alerts`` and ``baseline`` to the ``sentinel-stack`` subcommands."""
    alerts = verbs.add_parser("alerts", parents=[common], help="list (or follow) recent alerts")
    alerts.add_argument("--json", action="store_true", help="one JSON object per line")
    alerts.add_argument("-f", "--follow", action="store_true", help="keep printing new alerts")
    alerts.add_argument(
        "--severity", choices=SEVERITIES, metavar="S", help="only S and above (info … critical)"
    )
    alerts.add_argument(
        "-n", "--limit", type=int, default=50, metavar="N", help="the newest N (default 50)"
    )
    alerts.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="read this JSON-lines alert file instead of asking the running stack",
    )
    alerts.add_argument("--state-dir", type=Path, metavar="DIR", help=STATE_DIR_HELP)

    baseline = verbs.add_parser("baseline", help="show, reset or learn the detector's baseline")
    actions = baseline.add_subparsers(dest="baseline_action", required=True, metavar="ACTION")
    show = actions.add_parser("show", parents=[common], help="what each executable did so far")
    show.add_argument("--json", action="store_true", help="print the baseline file's JSON")
    reset = actions.add_parser("reset", parents=[common], help="forget everything; learn anew")
    learn = actions.add_parser(
        "learn", parents=[common], help="learn from a probe recording (`probe record FILE`)"
    )
    learn.add_argument("recording", type=Path)
    learn.add_argument("--merge", action="store_true", help="add to the current baseline")
    for action in (show, reset, learn):
        action.add_argument("--state-dir", type=Path, metavar="DIR", help=STATE_DIR_HELP)


# ---- alerts ----------------------------------------------------------------------------------


def cmd_alerts(args: argparse.Namespace) -> int:
    from sentinel_stack.control.client import ControlFailed, NoStack

    wanted = _severity_filter(args.severity)
    emit = _printer(args.json)
    if args.file is None:
        try:
            return _from_stack(args, wanted, emit)
        except (NoStack, ControlFailed):
            pass  # no stack (or one without the `alerts` op): the alert file
    path = args.file or _alert_file(args)
    recent = [a for a in _read_alert_files(path) if wanted(a)]
    for alert in recent[-args.limit :] if args.limit > 0 else []:
        emit(alert)
    if args.follow:
        for alert in _follow_file(path):
            if wanted(alert):
                emit(alert)
    elif not recent:
        print(f"no alerts (no stack answers, and {path} holds none)", file=sys.stderr)
        return EXIT_NOTHING
    return 0


def _from_stack(
    args: argparse.Namespace,
    wanted: Callable[[dict[str, Any]], bool],
    emit: Callable[[dict[str, Any]], None],
) -> int:
    from sentinel_stack.cli.main import control_path
    from sentinel_stack.control.client import ControlClient

    # NoStack from here means: read the alert file instead (the caller's fallback).
    with ControlClient(control_path(args), timeout=None if args.follow else 30.0) as client:
        recent = [a for a in client.request("alerts", lines=RING) if wanted(a)]
        for alert in recent[-args.limit :] if args.limit > 0 else []:
            emit(alert)
        if not args.follow:
            return 0
        # Alerts raised between the listing and the subscription are shown once more
        # at most, never lost: skip those already printed.
        shown = {a.get("id") for a in recent}
        for alert in client.stream("subscribe", topics=["events:alert"]):
            if alert.get("id") not in shown and wanted(alert):
                emit(alert)
    return 0


def _severity_filter(minimum: str | None) -> Callable[[dict[str, Any]], bool]:
    if minimum is None:
        return lambda alert: True
    floor = severity_rank(minimum)
    return lambda alert: severity_rank(str(alert.get("severity", ""))) >= floor


def _printer(as_json: bool) -> Callable[[dict[str, Any]], None]:
    if as_json:
        return lambda alert: print(json.dumps(alert), flush=True)
    return lambda alert: print(render_alert(alert), flush=True)


def render_alert(alert: dict[str, Any]) -> str:
    """One line per alert, then a line per chain step; control characters neutralised."""
    when = alert.get("time")
    stamp = time.strftime("%H:%M:%S", time.localtime(when)) if isinstance(when, float) else "-"
    severity = str(alert.get("severity", "?")).upper()
    count = alert.get("count", 1)
    head = [
        stamp,
        f"{severity:<8}",
        str(alert.get("rule", "?")),
        str(alert.get("technique") or "-"),
        str(alert.get("summary", ""))
        + (f" (×{count})" if isinstance(count, int) and count > 1 else ""),
    ]
    lines = ["  ".join(head)]
    context = [
        f"client {alert['client_ip']}" if alert.get("client_ip") else "",
        f"request {alert['request_id']}" if alert.get("request_id") else "",
        f"chain {alert['chain_id'][:12]}" if alert.get("chain_id") else "",
    ]
    if any(context):
        lines.append("          " + " · ".join(c for c in context if c))
    for n, step in enumerate(alert.get("chain") or [], start=1):
        technique = f"  [{step['technique']}]" if step.get("technique") else ""
        lines.append(f"          {n}. {step.get('summary', '')}{technique}")
    return "\n".join(printable(line) for line in lines)


def _alert_file(args: argparse.Namespace) -> Path:
    from sentinel_stack.cli.main import load

    loaded = load(args)
    detector = loaded.config.detector
    configured = detector.alert_file.path if detector is not None else None
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() else loaded.base_dir / path
    return _detector_state_dir(args, loaded) / "alerts.jsonl"


def _detector_state_dir(args: argparse.Namespace, loaded: LoadedConfig) -> Path:
    """Where `up` tells the detector to keep its baseline and alert file; with an explicit
    ``--run-dir`` that has one, ``<run-dir>/detector``, where a detector started any other
    way (exported services) keeps them."""
    if args.state_dir is not None:
        return Path(args.state_dir)
    if args.run_dir is not None and (Path(args.run_dir) / "detector").is_dir():
        return Path(args.run_dir) / "detector"
    return child_state_dir(loaded.config.stack.name, loaded.path, os.environ, "detector")


def _read_alert_files(path: Path) -> list[dict[str, Any]]:
    """Rotated files first (oldest ``.N`` … ``.1``), then the live one."""
    rotated = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
        key=lambda p: -int(p.suffix[1:]),
    )
    found: list[dict[str, Any]] = []
    for file in [*rotated, path]:
        try:
            found += _parse_lines(file.read_bytes().splitlines())
        except FileNotFoundError:
            continue
    return found


def _parse_lines(lines: Iterable[bytes]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        try:
            value = msgspec.json.decode(line)
        except msgspec.DecodeError:
            continue  # a line cut by a crash, or written by something else
        if isinstance(value, dict) and value.get("kind") == "alert":
            parsed.append(value)
    return parsed


def _follow_file(path: Path) -> Iterator[dict[str, Any]]:
    """New lines of ``path`` as they come, across rotations (a new inode)."""
    inode, offset = _position(path)
    buffer = b""
    while True:
        time.sleep(FOLLOW_POLL)  # a plain file has nothing to wait on portably
        current, size = _position(path)
        if current != inode or size < offset:
            inode, offset, buffer = current, 0, b""
        if size <= offset:
            continue
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(size - offset)
        offset += len(data)
        buffer += data
        *lines, buffer = buffer.split(b"\n")
        yield from _parse_lines(lines)


def _position(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return 0, 0
    return stat.st_ino, stat.st_size


# ---- baseline --------------------------------------------------------------------------------


def cmd_baseline(args: argparse.Namespace) -> int:
    from sentinel_stack.detect.baseline_store import read_baseline

    path, window = _baseline_file(args)
    if args.baseline_action == "reset":
        if not path.exists():
            print(f"no baseline at {path}: nothing to reset")
            return 0
        path.unlink()
        print(f"removed {path}; a running detector starts learning anew within a second")
        return 0
    if args.baseline_action == "learn":
        return _learn(args, path, window)
    try:
        document = read_baseline(path)
    except ValueError as exc:
        print(f"sentinel-stack: {exc}", file=sys.stderr)
        return EXIT_NOTHING
    if document is None:
        print(f"no baseline yet at {path} (the detector writes it while it learns)")
        return EXIT_NOTHING
    if args.json:
        print(json.dumps(msgspec.to_builtins(document), indent=2))
        return 0
    state = (
        "complete"
        if document.complete
        else f"learning: {document.learned_seconds:.0f}s of {document.window:.0f}s"
    )
    print(f"baseline {path}\n{state}; sources: {', '.join(document.sources) or '-'}")
    for exe, profile in document.executables.items():
        print(printable(exe))
        for category in ("children", "connects", "paths"):
            items: list[str] = getattr(profile, category)
            if category in profile.saturated:
                print(f"  {category}: saturated (too varied to judge; never alerts)")
            elif items:
                print(printable(f"  {category} ({len(items)}): {', '.join(items)}"))
    return 0


def _learn(args: argparse.Namespace, path: Path, window: float) -> int:
    from sentinel_stack.detect.baseline_store import (
        from_document,
        learn_recording,
        read_baseline,
        to_document,
        write_baseline,
    )
    from sentinel_stack.detect.baselines import BaselineModel

    if not args.recording.is_file():
        print(f"sentinel-stack: no recording at {args.recording}", file=sys.stderr)
        return EXIT_NOTHING
    current = read_baseline(path) if args.merge else None
    model = from_document(current, window) if current is not None else BaselineModel(window)
    learnt, skipped = learn_recording(model, args.recording.resolve())
    model.learned_seconds = model.window  # a recording is a complete lesson
    write_baseline(path, to_document(model, time.time()))
    print(
        f"learnt {learnt} events from {args.recording} ({skipped} lines skipped): "
        f"{len(model.profiles)} executables in {path}"
    )
    return 0


def _baseline_file(args: argparse.Namespace) -> tuple[Path, float]:
    from sentinel_stack.cli.main import load
    from sentinel_stack.detect.baseline_store import baseline_path

    loaded = load(args)
    detector = loaded.config.detector
    path = baseline_path(detector, loaded.base_dir, _detector_state_dir(args, loaded))
    assert path is not None  # a state dir was given
    return path, detector.baseline_window if detector is not None else 3600.0


ALERT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "alerts": cmd_alerts,
    "baseline": cmd_baseline,
}
