"""Verbs that talk to agents rather than to the launcher.

``sentinel-stack deny add|remove|list`` is a client of the denylist agent's own control
socket (``<run-dir>/agents/denylist.ctl``: JSON lines, see
``sentinel_agents/denylist/control.py``); ``sentinel-stack policy test [DIR]`` runs a
policy's own Rego tests. Both need the stack's config only to find things (the run
directory, the policy directory), never a running launcher.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["AGENT_COMMANDS", "add_agent_verbs"]

EXIT_FAILED = 1
EXIT_NO_AGENT = 3
ENTRY_KINDS = ("ip", "path_prefix", "user_agent", "header")
CONTROL_TIMEOUT = 10.0


def add_agent_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``deny`` and ``policy`` to the ``sentinel-stack`` subcommands."""
    deny = verbs.add_parser("deny", help="add, remove or list denylist entries while it runs")
    actions = deny.add_subparsers(dest="deny_action", required=True, metavar="ACTION")

    def target(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--agent", default="denylist", help="the denylist agent's name (default %(default)s)"
        )
        parser.add_argument(
            "--socket",
            type=Path,
            metavar="PATH",
            help="its control socket (default: <run-dir>/agents/<agent>.ctl)",
        )

    def entry(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("value", help="an IP or CIDR, a path prefix, a user-agent fragment…")
        parser.add_argument("--kind", choices=ENTRY_KINDS, default="ip", help="(default: ip)")
        parser.add_argument("--header", default="", metavar="NAME", help="for --kind header")
        target(parser)

    add = actions.add_parser("add", parents=[common], help="deny a value (optionally for a TTL)")
    entry(add)
    add.add_argument("--ttl", help='how long: "30s", "10m", "1h30m", "2d" (default: until removed)')
    add.add_argument("--reason", default="", help="why, for logs and audit records")
    remove = actions.add_parser("remove", parents=[common], help="stop denying a value")
    entry(remove)
    listing = actions.add_parser("list", parents=[common], help="print the live entries")
    listing.add_argument("--json", action="store_true", help="print the entries as JSON")
    target(listing)

    policy = verbs.add_parser("policy", help="work with the policy agent's Rego policies")
    policy_actions = policy.add_subparsers(dest="policy_action", required=True, metavar="ACTION")
    test = policy_actions.add_parser(
        "test", parents=[common], help="run the policy's own tests (exit 1 if any fails)"
    )
    test.add_argument(
        "dir",
        nargs="?",
        type=Path,
        help="policy directory or bundle (default: [agents.policy.config] policies, "
        "else [policy] dir of the config)",
    )
    test.add_argument("--agent", default="policy", help="the policy agent's name")


# ---- deny ------------------------------------------------------------------------------------


def cmd_deny(args: argparse.Namespace) -> int:
    path = _control_socket(args)
    request: dict[str, Any] = {"id": 1, "op": args.deny_action}
    if args.deny_action in ("add", "remove"):
        request.update(kind=args.kind, value=args.value, header=args.header)
    if args.deny_action == "add":
        request.update(ttl=args.ttl, reason=args.reason)
    try:
        reply = _ask(path, request)
    except OSError as error:
        _say(
            f"no denylist agent answers on {path} ({error.strerror or error}).\n"
            "    hint: is the stack up with an [agents.denylist] table? Pass the same "
            "--config/--run-dir it was started with, or --socket PATH"
        )
        return EXIT_NO_AGENT
    if not reply.get("ok"):
        refusal = reply.get("error") or {}
        _say(f"the denylist agent refused: {refusal.get('message', reply)}")
        return EXIT_FAILED
    result = reply.get("result") or {}
    if result.get("saved") is False:
        _say("warning: the change is in force but was not saved (see the agent's log)")
    return _DENY_OUTPUT[args.deny_action](args, result)


def _print_added(args: argparse.Namespace, result: dict[str, Any]) -> int:
    entry = result["entry"]
    ttl = entry.get("remaining_ttl")
    until = f"for {_duration(ttl)}" if ttl is not None else "until removed"
    reason = f" ({entry['reason']})" if entry.get("reason") else ""
    print(f"denied {_describe(entry)} {until}{reason}")
    return 0


def _print_removed(args: argparse.Namespace, result: dict[str, Any]) -> int:
    if not result.get("removed"):
        header = f"{args.header}=" if args.kind == "header" else ""
        _say(f"not in the denylist: {args.kind} {header}{args.value}")
        return EXIT_FAILED
    print(f"removed {_describe(result['entry'])}")
    return 0


def _print_listing(args: argparse.Namespace, result: dict[str, Any]) -> int:
    entries: list[dict[str, Any]] = result.get("entries", [])
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    if not entries:
        print("the denylist is empty")
        return 0
    rows = [
        (
            entry["kind"],
            f"{entry['header']}={entry['value']}" if entry.get("header") else entry["value"],
            "never" if entry.get("remaining_ttl") is None else _duration(entry["remaining_ttl"]),
            entry.get("reason", ""),
        )
        for entry in entries
    ]
    titles = ("KIND", "VALUE", "EXPIRES IN", "REASON")
    widths = [max(len(row[i]) for row in [titles, *rows]) for i in range(3)]
    for row in [titles, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]).rstrip())
    return 0


_DENY_OUTPUT: dict[str, Callable[[argparse.Namespace, dict[str, Any]], int]] = {
    "add": _print_added,
    "remove": _print_removed,
    "list": _print_listing,
}


def _control_socket(args: argparse.Namespace) -> Path:
    if args.socket is not None:
        return Path(args.socket)
    from sentinel_stack.cli.main import load, plan_for

    agent = load(args).config.agents.get(args.agent)
    configured = agent.config.get("control_socket") if agent is not None else None
    if isinstance(configured, str) and Path(configured).is_absolute():
        return Path(configured)
    run_dir = Path(args.run_dir) if args.run_dir is not None else plan_for(args)[1].run_dir
    return run_dir / "agents" / f"{args.agent}.ctl"


def _ask(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """One request, one answer line, over the agent's control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(CONTROL_TIMEOUT)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data.strip():
        raise ConnectionResetError("the agent closed the connection without an answer")
    reply = json.loads(data)
    if not isinstance(reply, dict):
        raise ConnectionResetError("the agent's answer is not a JSON object")
    return reply


def _describe(entry: dict[str, Any]) -> str:
    if entry.get("header"):
        return f"header {entry['header']}={entry['value']}"
    return f"{entry['kind']} {entry['value']}"


def _duration(seconds: float) -> str:
    """``1h2m3s``, rounded up to the second."""
    total = max(0, math.ceil(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


# ---- policy ----------------------------------------------------------------------------------


def cmd_policy(args: argparse.Namespace) -> int:
    from sentinel_agents.policy import run_policy_tests

    path = args.dir if args.dir is not None else _policy_dir(args)
    print(f"testing the policy in {path}")
    report = run_policy_tests(path)
    if report.error is not None:
        _say(f"the policy's tests could not run: {report.error}")
        return EXIT_FAILED
    for result in report.results:
        verdict = "PASS" if result.passed else "FAIL"
        problem = f": {result.error}" if result.error else ""
        print(f"{verdict}  {result.name} ({result.duration_ms:.1f} ms){problem}")
    passed, failed = report.counts
    if not report.results:
        _say(f"no tests found in {path} (test rules are named test_* in *_test.rego files)")
        return EXIT_FAILED
    print(f"{passed} passed, {failed} failed")
    return 0 if report.passed else EXIT_FAILED


def _policy_dir(args: argparse.Namespace) -> Path:
    from sentinel_stack.cli.main import load

    loaded = load(args)
    agent = loaded.config.agents.get(args.agent)
    configured = agent.config.get("policies") if agent is not None else None
    if not isinstance(configured, str):
        configured = loaded.config.policy.dir
    path = Path(configured).expanduser()
    return path if path.is_absolute() else loaded.base_dir / path


def _say(message: str) -> None:
    print(f"sentinel-stack: {message}", file=sys.stderr)


AGENT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "deny": cmd_deny,
    "policy": cmd_policy,
}
