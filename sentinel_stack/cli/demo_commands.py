"""`sentinel-stack demo`: the whole product on one machine, with something to look at.

It runs the demo config (`sentinel_stack.demo.profile`): the default profile plus the probe
and the detector, the demo upstream with its DELIBERATELY VULNERABLE ``/_vuln/`` routes
turned on (loopback only), a benign traffic generator and, with ``--attacks``, the attack
scenarios of `scripts/simulate-attacks` every N seconds. The TUI shows it on a terminal,
exactly as `up` does (same code path). Only an explicit ``-c FILE`` replaces the demo config
(run as is; write one with ``--print-config``). docs/simulations.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentinel_stack.demo.profile import DemoOptions

__all__ = ["DEMO_COMMANDS", "add_demo_verbs"]

BANNER = (
    "sentinel-stack demo: the demo upstream serves DELIBERATELY VULNERABLE routes under "
    "/_vuln/\n    (a web shell, a path traversal, an SSRF) to loopback clients. Run the demo "
    "on a throwaway machine only."
)


def add_demo_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``demo`` to the ``sentinel-stack`` subcommands."""
    demo = verbs.add_parser(
        "demo",
        parents=[common],
        help="run the demo stack (vulnerable demo routes, traffic, optional attacks); "
        "a throwaway machine only",
        description=__doc__,
    )
    demo.add_argument(
        "--attacks",
        action="store_true",
        help="also run the attack scenarios (scripts/simulate-attacks) every --attack-every s",
    )
    demo.add_argument(
        "--attack-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="pause between attack rounds (default %(default)g)",
    )
    demo.add_argument(
        "--traffic-rate",
        type=float,
        default=5.0,
        metavar="N",
        help="benign requests per second (default %(default)g; 0: no traffic generator)",
    )
    demo.add_argument("--port", type=int, default=8080, help="proxy port (default %(default)s)")
    demo.add_argument("--upstream-port", type=int, default=8081, help="(default %(default)s)")
    demo.add_argument("--admin-port", type=int, default=9090, help="(default %(default)s)")
    demo.add_argument("--no-tui", action="store_true", help="print events instead of the TUI")
    demo.add_argument("--json-logs", action="store_true", help="print events as JSON lines")
    demo.add_argument(
        "--print-config",
        action="store_true",
        help="print the demo's config and exit (edit it, then `demo -c FILE` runs it as is)",
    )


def _options(args: argparse.Namespace) -> DemoOptions:
    from sentinel_stack.demo.profile import DemoOptions

    return DemoOptions(
        proxy_port=args.port,
        upstream_port=args.upstream_port,
        admin_port=args.admin_port,
        traffic_rate=max(args.traffic_rate, 0.0),
        attack_every=args.attack_every if args.attacks else None,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    # Imported here: main imports this module to register the verb.
    from sentinel_stack.cli.main import PACKAGE_ROOT, launch_stack
    from sentinel_stack.config.loader import LoadedConfig, load_config, load_config_text
    from sentinel_stack.config.plan import build_plan
    from sentinel_stack.demo.profile import demo_config
    from sentinel_stack.supervisor.spec import StackPlan

    config_file: Path | None = args.config
    options = _options(args)

    def load() -> LoadedConfig:
        if config_file is not None:
            return load_config(config_file)
        return load_config_text(demo_config(options), "<demo>", base_dir=PACKAGE_ROOT)

    loaded = load()
    if args.print_config:
        print(loaded.text, end="" if loaded.text.endswith("\n") else "\n")
        return 0
    plan = build_plan(loaded, run_dir=args.run_dir)
    print(BANNER, file=sys.stderr, flush=True)

    def reload_plan() -> StackPlan:
        return build_plan(load(), run_dir=args.run_dir)

    return launch_stack(args, loaded, plan, reload_plan)


DEMO_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"demo": cmd_demo}
