"""`sentinel-stack`: run a local security stack, and talk to a running one."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentinel_stack import __version__
from sentinel_stack.cli.agent_commands import AGENT_COMMANDS, add_agent_verbs
from sentinel_stack.cli.alert_commands import ALERT_COMMANDS, add_alert_verbs
from sentinel_stack.cli.audit_commands import AUDIT_COMMANDS, add_audit_verbs
from sentinel_stack.cli.demo_commands import DEMO_COMMANDS, add_demo_verbs
from sentinel_stack.cli.detect_commands import DETECT_COMMANDS, add_detect_verbs
from sentinel_stack.cli.export_commands import EXPORT_COMMANDS, add_export_verbs
from sentinel_stack.cli.probe_commands import PROBE_COMMANDS, add_probe_verbs
from sentinel_stack.config.loader import ConfigError, LoadedConfig, load_config, load_config_text
from sentinel_stack.config.plan import build_plan
from sentinel_stack.config.profiles import PROFILES, embedded_default, render_profile
from sentinel_stack.supervisor.spec import StackPlan

EXIT_CONFIG = 2
EXIT_NO_STACK = 3
DEFAULT_FILE = "sentinel-stack.toml"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _config_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        metavar="FILE",
        help=f"config file (default: $SENTINEL_STACK_CONFIG, ./{DEFAULT_FILE}, "
        "else the embedded default)",
    )
    common.add_argument(
        "--run-dir",
        type=Path,
        metavar="DIR",
        help="run directory (sockets, logs); overrides the config",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _config_options()
    parser = argparse.ArgumentParser(
        prog="sentinel-stack",
        parents=[common],
        description="A local security stack: reverse proxy, agents, eBPF probe, detection.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    up = verbs.add_parser("up", parents=[common], help="start the stack and supervise it")
    up.add_argument(
        "--no-tui",
        action="store_true",
        help="print state changes and logs instead of the TUI (automatic without a TTY)",
    )
    up.add_argument("--json-logs", action="store_true", help="print events as JSON lines")
    up.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="run in the background; return once every child is ready "
        "(output: <run-dir>/launcher.log; then `attach`, `status`, `down`)",
    )
    up.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    pick = up.add_mutually_exclusive_group()
    pick.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only these children (and what they depend on)",
    )
    pick.add_argument(
        "--proxy-only",
        action="store_true",
        help="run the proxy and plain processes (upstreams), no agents",
    )
    pick.add_argument("--agents-only", action="store_true", help="run only the agents")

    validate = verbs.add_parser(
        "validate", parents=[common], help="check the config and print the plan"
    )
    validate.add_argument("--json", action="store_true", help="print the plan as JSON")

    init = verbs.add_parser("init", help="write a commented starter config")
    init.add_argument("path", nargs="?", type=Path, default=Path(DEFAULT_FILE))
    init.add_argument("--profile", choices=PROFILES, default="default")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")

    status = verbs.add_parser("status", parents=[common], help="show the running stack")
    status.add_argument("--json", action="store_true")
    status.add_argument("--watch", type=float, metavar="N", help="refresh every N seconds")

    for verb in ("start", "stop", "restart"):
        child = verbs.add_parser(verb, parents=[common], help=f"{verb} one child")
        child.add_argument("name")

    logs = verbs.add_parser("logs", parents=[common], help="print a child's recent log")
    logs.add_argument("name")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("-n", "--lines", type=int, default=100, help="how many lines (default 100)")

    verbs.add_parser("down", parents=[common], help="stop the running stack")
    attach = verbs.add_parser(
        "attach", parents=[common], help="open the TUI on a running stack (`up --no-tui`)"
    )
    attach.add_argument(
        "--read-only", action="store_true", help="watch only: no start/stop/restart/down"
    )
    verbs.add_parser(
        "reload",
        parents=[common],
        help="reload the config; restart only changed children (like SIGHUP)",
    )
    add_agent_verbs(verbs, common)
    add_alert_verbs(verbs, common)
    add_audit_verbs(verbs, common)
    add_probe_verbs(verbs, common)
    add_demo_verbs(verbs, common)
    add_detect_verbs(verbs, common)
    add_export_verbs(verbs, common)
    return parser


# ---- config ----------------------------------------------------------------------------------


def config_file(args: argparse.Namespace) -> Path | None:
    """The config file a command uses: --config, $SENTINEL_STACK_CONFIG, ./sentinel-stack.toml;
    None for the embedded default."""
    path: Path | None = args.config
    if path is None and os.environ.get("SENTINEL_STACK_CONFIG"):
        path = Path(os.environ["SENTINEL_STACK_CONFIG"])
    if path is None and Path(DEFAULT_FILE).is_file():
        path = Path(DEFAULT_FILE)
    return path


def load(args: argparse.Namespace) -> LoadedConfig:
    path = config_file(args)
    if path is None:
        return load_config_text(embedded_default(), "<embedded default>", base_dir=PACKAGE_ROOT)
    return load_config(path)


def plan_for(args: argparse.Namespace) -> tuple[LoadedConfig, StackPlan]:
    loaded = load(args)
    return loaded, build_plan(loaded, run_dir=args.run_dir)


def control_path(args: argparse.Namespace) -> Path:
    if args.run_dir is not None:
        return Path(args.run_dir) / "control.sock"
    return plan_for(args)[1].run_dir / "control.sock"


# ---- verbs -----------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from sentinel_stack.cli.views import plan_json, render_plan

    loaded, plan = plan_for(args)
    if getattr(args, "json", False):
        print(json.dumps(plan_json(plan), indent=2))
    else:
        print(render_plan(plan, loaded.source, _config_env_keys(loaded)))
        print(f"\nOK: {len(plan.children)} children, config is valid.")
    return 0


def _config_env_keys(loaded: LoadedConfig) -> set[str]:
    keys: set[str] = set()
    config = loaded.config
    for item in [
        *config.processes.values(),
        *config.agents.values(),
        *(c for c in (config.proxy, config.probe, config.detector) if c is not None),
    ]:
        keys.update(item.env)
    return keys


def cmd_init(args: argparse.Namespace) -> int:
    path: Path = args.path
    if path.exists() and not args.force:
        raise CliError(
            f"{path} already exists; not overwriting it.\n"
            "    hint: use --force to replace it, or give another path"
        )
    path.write_text(render_profile(args.profile))
    print(
        f"wrote {path} ({args.profile} profile). Next: `sentinel-stack validate -c {path}`, "
        f"then `sentinel-stack up -c {path}`."
    )
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    loaded, plan = plan_for(args)
    plan = _select(plan, args)
    if args.dry_run:
        from sentinel_stack.cli.views import render_plan

        print(render_plan(plan, loaded.source, _config_env_keys(loaded)))
        return 0

    if args.detach:
        return _detach(args, loaded, plan)

    def reload_plan() -> StackPlan:
        return _select(plan_for(args)[1], args)

    return launch_stack(args, loaded, plan, reload_plan)


def launch_stack(
    args: argparse.Namespace,
    loaded: LoadedConfig,
    plan: StackPlan,
    reload_plan: Callable[[], StackPlan],
) -> int:
    """Run ``plan`` in the foreground: the TUI on a terminal, else headless output. Shared
    by `up` and `demo`; ``args`` needs ``no_tui`` and ``json_logs``."""
    from sentinel_stack.audit.settings import audit_settings
    from sentinel_stack.cli.console import ConsolePrinter
    from sentinel_stack.launcher import Launch, run_up
    from sentinel_stack.rundir import AlreadyRunning

    tui = _use_tui(args, loaded)
    launch = Launch(
        config_text=loaded.text,
        config_path=loaded.path.resolve() if loaded.path else None,
        reload_plan=reload_plan,
        printer=None if tui else ConsolePrinter(json_lines=args.json_logs),
        audit=audit_settings(loaded),
    )
    if tui:  # the launcher in a forked child, the TUI attached to it here: docs/tui.md
        from sentinel_stack.tui.run import up_with_tui

        def launcher() -> int:
            try:
                return run_up(plan, launch)
            except AlreadyRunning as exc:
                print(f"sentinel-stack: {exc}", file=sys.stderr)
                return EXIT_NO_STACK

        return up_with_tui(
            plan.run_dir, plan.name, launcher, refresh_hz=loaded.config.tui.refresh_hz
        )
    try:
        return run_up(plan, launch)
    except AlreadyRunning as exc:
        raise CliError(str(exc), EXIT_NO_STACK) from None


DETACH_TIMEOUT = 120.0


def _detach(args: argparse.Namespace, loaded: LoadedConfig, plan: StackPlan) -> int:
    """`up -d`: the same launcher, headless, in a session of its own; we wait until it says
    every child is ready (or gives up) so a script can run `up -d && curl ...`."""
    import subprocess

    argv = [
        sys.executable,
        "-m",
        "sentinel_stack",
        "up",
        "--no-tui",
        "--run-dir",
        str(plan.run_dir),
    ]
    if loaded.path is not None:
        argv += ["-c", str(loaded.path.resolve())]
    if args.only:
        argv += ["--only", *args.only]
    elif args.proxy_only or args.agents_only:
        argv.append("--proxy-only" if args.proxy_only else "--agents-only")
    plan.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = plan.run_dir / "launcher.log"
    with log_path.open("wb") as log:
        launcher = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if " children ready" in text:
            print(
                f"stack `{plan.name}` is up in the background (launcher pid {launcher.pid}).\n"
                f"    attach: sentinel-stack attach   status: sentinel-stack status   "
                f"stop: sentinel-stack down\n    output: {log_path}"
            )
            return 0
        code = launcher.poll()
        if code is not None:
            print(text, end="", file=sys.stderr)
            raise CliError(f"the launcher exited ({code}) before the stack was ready", code or 1)
        time.sleep(0.05)
    raise CliError(
        f"the stack is not ready after {DETACH_TIMEOUT:.0f}s; it keeps starting in the "
        f"background (pid {launcher.pid}).\n    hint: see {log_path}, or `sentinel-stack status`"
    )


def _use_tui(args: argparse.Namespace, loaded: LoadedConfig) -> bool:
    """The TUI needs a terminal both ways; `--no-tui`, `--json-logs` or `[tui] enabled =
    false` ask for the headless output."""
    if args.no_tui or args.json_logs or not loaded.config.tui.enabled:
        return False
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        return False
    try:
        import sentinel_stack.tui.app  # noqa: F401
    except ImportError as exc:
        print(f"sentinel-stack: no TUI ({exc}); printing events instead", file=sys.stderr)
        return False
    return True


def _select(plan: StackPlan, args: argparse.Namespace) -> StackPlan:
    if args.only:
        unknown = sorted(set(args.only) - set(plan.names))
        if unknown:
            raise CliError(
                f"--only: no child named {', '.join(unknown)}; defined: {', '.join(plan.names)}",
                EXIT_CONFIG,
            )
        return plan.subset(set(args.only), with_dependencies=True)
    if args.proxy_only:
        return plan.subset(
            {s.name for s in plan.children if s.kind in ("proxy", "process")},
            with_dependencies=False,
        )
    if args.agents_only:
        return plan.subset(
            {s.name for s in plan.children if s.kind == "agent"}, with_dependencies=False
        )
    return plan


def _client(args: argparse.Namespace, timeout: float | None = 60.0) -> Any:
    from sentinel_stack.control.client import ControlClient, NoStack

    path = control_path(args)
    try:
        return ControlClient(path, timeout=timeout)
    except NoStack:
        raise CliError(
            f"no stack is running here (nothing answers on {path}).\n"
            "    hint: start one with `sentinel-stack up`, or pass the same "
            "--config/--run-dir the stack was started with",
            EXIT_NO_STACK,
        ) from None


def cmd_status(args: argparse.Namespace) -> int:
    from sentinel_stack.cli.views import render_status

    with _client(args) as client:
        while True:
            status = client.request("status")
            if args.json:
                print(json.dumps(status, indent=2), flush=True)
            else:
                if args.watch and sys.stdout.isatty():
                    print("\x1b[H\x1b[2J", end="")
                print(render_status(status), flush=True)
            if not args.watch:
                return 0
            time.sleep(args.watch)


def cmd_child(args: argparse.Namespace) -> int:
    with _client(args, timeout=None) as client:
        result = client.request(args.verb, name=args.name)
    print(f"{result['child']}: {result['state']}")
    return 0 if result["state"] in ("running", "stopped") else 1


def cmd_logs(args: argparse.Namespace) -> int:
    from sentinel_stack.cli.console import HumanFormat, use_colour
    from sentinel_stack.supervisor.events import LogLine

    form = HumanFormat(use_colour(sys.stdout), supervisor_lines=True)
    with _client(args, timeout=None) as client:
        if args.follow:
            lines = client.stream("logs", name=args.name, lines=args.lines, follow=True)
        else:
            lines = client.request("logs", name=args.name, lines=args.lines)
        for raw in lines:
            print(
                form(LogLine(raw["child"], raw["stream"], raw["time"], raw["line"])),
                flush=args.follow,
            )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from sentinel_stack.control.client import NoStack

    path = control_path(args)
    with _client(args, timeout=None) as client:
        client.request("down")
        try:  # the launcher closes the socket once it has stopped everything
            while client.sock.recv(4096):
                pass
        except (ConnectionResetError, NoStack):
            pass
    print(f"stack stopped ({path.parent})")
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    with _client(args, timeout=None) as client:
        result = client.request("reload")
    changes = result["changes"]
    print("reloaded: " + (", ".join(changes) if changes else "nothing changed"))
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    from sentinel_stack.tui.run import attach

    path = control_path(args)
    _client(args).close()  # says "no stack is running here" when none is
    try:
        refresh_hz = load(args).config.tui.refresh_hz
    except ConfigError:
        refresh_hz = 10.0
    return attach(path, read_only=args.read_only, refresh_hz=refresh_hz)


COMMANDS = {
    "up": cmd_up,
    "attach": cmd_attach,
    "validate": cmd_validate,
    "init": cmd_init,
    "status": cmd_status,
    "start": cmd_child,
    "stop": cmd_child,
    "restart": cmd_child,
    "logs": cmd_logs,
    "down": cmd_down,
    "reload": cmd_reload,
    **AGENT_COMMANDS,
    **ALERT_COMMANDS,
    **AUDIT_COMMANDS,
    **PROBE_COMMANDS,
    **DEMO_COMMANDS,
    **DETECT_COMMANDS,
    **EXPORT_COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.verb](args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    except CliError as exc:
        print(f"sentinel-stack: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
