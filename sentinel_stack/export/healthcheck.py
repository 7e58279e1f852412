"""``python -m sentinel_stack.export.healthcheck [--wait S] {tcp|unix|http|exec} TARGET…``

The readiness checks of the launcher (supervisor/readiness.py) as a command, for the tiers
that run without it: Compose and Kubernetes health checks, and systemd's ExecStartPost= for
children whose readiness is not sd_notify. Exit 0 when the check passes; 1 when it fails
(at once, or when ``--wait`` seconds pass without it passing); 2 for usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import trio

from sentinel_stack.supervisor.readiness import probe_once, wait_ready
from sentinel_stack.supervisor.spec import ReadinessCheck

KINDS = ("tcp", "unix", "http", "exec")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="S",
        help="retry until the check passes or S seconds pass (default: one try)",
    )
    parser.add_argument("--interval", type=float, default=0.1, metavar="S", help=argparse.SUPPRESS)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("target", nargs="+", help="HOST:PORT, socket path, URL, or a command")
    args = parser.parse_args(argv)
    target: str | tuple[str, ...] = tuple(args.target) if args.kind == "exec" else args.target[0]
    check = ReadinessCheck(args.kind, target, args.wait, args.interval)
    passed = trio.run(_run, check)
    if not passed:
        print(f"healthcheck: {args.kind} {' '.join(args.target)}: not ready", file=sys.stderr)
    return 0 if passed else 1


async def _run(check: ReadinessCheck) -> bool:
    if check.timeout <= 0:
        return await probe_once(check)
    with trio.move_on_after(check.timeout):
        await wait_ready(check)
        return True
    return False


if __name__ == "__main__":
    sys.exit(main())
