"""`sentinel-stack rules test|lint|fields`: develop detection rules without a running stack.

``rules test FILE.jsonl`` replays recorded events (the probe's `record` output, hub lines,
or control-API stream lines) through the rules exactly as the detector would, with event
times as the clock, and prints what fired. ``rules lint`` loads the rules and reports every
problem with file:line:col, plus rules that can never match. ``rules fields`` lists the
fields a condition may use. The stack's config (``-c``) only supplies the rules directory,
the upstreams and the allowed egress.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["DETECT_COMMANDS", "add_detect_verbs"]

EXIT_FAILED = 1
EXIT_RULES = 2


def add_detect_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``rules test``, ``rules lint`` and ``rules fields``."""
    rules = verbs.add_parser("rules", help="test and lint detection rules")
    actions = rules.add_subparsers(dest="rules_action", required=True, metavar="ACTION")
    test = actions.add_parser("test", parents=[common], help="replay recorded events, print alerts")
    test.add_argument("file", type=Path, help="JSON lines: `probe record` output or hub events")
    lint = actions.add_parser("lint", parents=[common], help="check the rule files")
    for parser in (test, lint):
        parser.add_argument(
            "--rules-dir", type=Path, metavar="DIR", help="default: [detector] rules_dir"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")
    test.add_argument("--dedup", action="store_true", help="fold repeats as the live detector does")
    actions.add_parser("fields", help="list the fields conditions may use")


def _context(args: argparse.Namespace) -> tuple[Path, Any]:
    """(rules dir, StackView) from the flags and, when it loads, the stack's config."""
    from sentinel_stack.cli.main import PACKAGE_ROOT, load
    from sentinel_stack.config.loader import ConfigError
    from sentinel_stack.detect.wiring import view_from_config

    try:
        loaded = load(args)
    except ConfigError as exc:
        print(f"(config not used: {exc.issues[0] if exc.issues else exc})", file=sys.stderr)
        loaded = None
    config = loaded.config if loaded is not None else None
    rules_dir = args.rules_dir
    if rules_dir is None:
        if loaded is not None and config is not None and config.detector is not None:
            rules_dir = Path(config.detector.rules_dir).expanduser()
            rules_dir = rules_dir if rules_dir.is_absolute() else loaded.base_dir / rules_dir
        else:
            rules_dir = PACKAGE_ROOT / "configs" / "rules"
    return rules_dir, view_from_config(config)


def _load(args: argparse.Namespace) -> tuple[Any, Any, Path] | None:
    from sentinel_stack.detect.rules_loader import RulesError, load_rules
    from sentinel_stack.detect.wiring import builtin_lists

    rules_dir, view = _context(args)
    try:
        return load_rules(rules_dir, builtin_lists(view)), view, rules_dir
    except RulesError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "problems": [str(i) for i in exc.issues]}, indent=2))
        else:
            print(exc, file=sys.stderr)
        return None


def _events(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, event or None) for each non-empty line; envelopes are unwrapped."""
    from sentinel_stack.detect.events import decode_event, decode_stream_line

    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            event = decode_event(line)
            if event is None and line.startswith(b'{"id"'):
                event = decode_stream_line(line)
            yield number, event


def cmd_rules_test(args: argparse.Namespace) -> int:
    from sentinel_stack.detect.engine import RuleEngine, describe_event
    from sentinel_stack.detect.folding import AlertFolder

    loaded = _load(args)
    if loaded is None:
        return EXIT_RULES
    ruleset, view, rules_dir = loaded
    folder = AlertFolder() if args.dedup else AlertFolder(window=0.0, per_minute=1e12, burst=10**9)
    engine = RuleEngine(ruleset, view, folder=folder)
    fired: list[Any] = []
    skipped = events = 0
    last_tick = None
    try:
        for number, event in _events(args.file):
            if event is None:
                skipped += 1
                print(f"{args.file}:{number}: not an event; skipped", file=sys.stderr)
                continue
            events += 1
            now = event.time
            for alert in engine.observe(event, now):
                fired.append((number, alert, describe_event(event)))
            if last_tick is None or now - last_tick >= 1.0:
                fired.extend((number, a, "") for a in engine.tick(now))
                last_tick = now
    except OSError as exc:
        print(f"sentinel-stack: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    fired.extend((0, a, "") for a in engine.tick(float("inf")))
    counts = Counter(alert.rule for _, alert, _ in fired)
    if args.json:
        print(
            json.dumps(
                {
                    "events": events,
                    "skipped": skipped,
                    "rules_dir": str(rules_dir),
                    "counts": dict(counts),
                    "alerts": [{"line": n, **json.loads(_encode(a))} for n, a, _ in fired],
                },
                indent=2,
            )
        )
        return 0
    for number, alert, what in fired:
        where = f"line {number}" if number else "end"
        count = f" (x{alert.count})" if alert.count > 1 else ""
        print(f"{where:>10}  {alert.severity:<8} {alert.rule}{count}: {alert.summary}")
        if what:
            print(f"{'':>10}  {'':<8} event: {what}")
    print(f"\n{events} events ({skipped} skipped), {len(fired)} alerts from {rules_dir}")
    for rule_id, times in sorted(counts.items()):
        print(f"  {times:>5}  {rule_id}")
    return 0


def _encode(alert: Any) -> str:
    from sentinel_stack.detect.alert import ALERT_ENCODER

    return ALERT_ENCODER.encode(alert).decode()


def cmd_rules_lint(args: argparse.Namespace) -> int:
    from sentinel_stack.detect.engine import RuleEngine

    loaded = _load(args)
    if loaded is None:
        return EXIT_RULES
    ruleset, view, rules_dir = loaded
    engine = RuleEngine(ruleset, view)
    reach = {rule_id: [k or "other" for k in kinds] for rule_id, kinds in engine.reach.items()}
    never = sorted(rule_id for rule_id, kinds in reach.items() if not kinds)
    enabled = len(ruleset.enabled)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not never,
                    "rules": len(ruleset.rules),
                    "enabled": enabled,
                    "kinds": reach,
                    "never_match": never,
                },
                indent=2,
            )
        )
        return EXIT_FAILED if never else 0
    for rule_id in never:
        rule = ruleset.rule(rule_id)
        print(
            f"{rule.where}: rule {rule_id}: can never match: its condition is false for "
            "every event kind (tests on fields of different kinds joined with `and`?)"
        )
    print(
        f"{'OK' if not never else 'PROBLEMS'}: {len(ruleset.rules)} rules ({enabled} enabled), "
        f"{len(ruleset.lists)} lists, {len(ruleset.macros)} macros in {len(ruleset.files)} files "
        f"({rules_dir})"
    )
    return EXIT_FAILED if never else 0


def cmd_rules_fields(args: argparse.Namespace) -> int:
    from sentinel_stack.detect.expr import FIELDS

    for spec in FIELDS.values():
        print(f"{spec.name:<22} {spec.type:<5} {spec.doc}  [{spec.kinds_text}]")
    return 0


def cmd_rules(args: argparse.Namespace) -> int:
    action: Callable[[argparse.Namespace], int] = {
        "test": cmd_rules_test,
        "lint": cmd_rules_lint,
        "fields": cmd_rules_fields,
    }[args.rules_action]
    return action(args)


DETECT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"rules": cmd_rules}
