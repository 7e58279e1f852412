"""``sentinel-stack export {systemd,compose,kubernetes} --out DIR``: the stack for other tiers.

The config is found as `up` finds it, but read without this shell's environment: a
``${VAR}`` stays a reference for the target to fill in at run time (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["EXPORT_COMMANDS", "add_export_verbs"]

TARGETS = ("systemd", "compose", "kubernetes")
EXIT_REFUSED = 1


def add_export_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``export`` to the ``sentinel-stack`` subcommands."""
    export = verbs.add_parser(
        "export",
        parents=[common],
        help="write the stack as systemd units, a Compose project or Kubernetes manifests",
        description="Write the stack as systemd units, a Compose project or Kubernetes "
        "manifests, from the same config (docs/deploy.md). --run-dir sets the run "
        "directory on the target (default /run/sentinel-stack/<stack>).",
    )
    export.add_argument("target", choices=TARGETS)
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="where to write")
    export.add_argument("--dry-run", action="store_true", help="list what would be written")
    export.add_argument("--force", action="store_true", help="replace files that differ")
    export.add_argument(
        "--prefix",
        default="/opt/sentinel-stack",
        metavar="DIR",
        help="virtualenv holding sentinel-stack on the target, or in the image "
        "(default %(default)s)",
    )
    export.add_argument(
        "--config-dir",
        metavar="DIR",
        help="where the config, policies and rules live on the target "
        "(default /etc/sentinel-stack/<stack>)",
    )
    export.add_argument(
        "--image",
        default="sentinel-stack:latest",
        help="container image for compose and kubernetes (default %(default)s)",
    )
    export.add_argument(
        "--replicas", type=int, default=2, help="kubernetes: stack pods (default %(default)s)"
    )
    export.add_argument(
        "--systemd-version",
        type=int,
        default=252,
        metavar="N",
        help="systemd: the oldest systemd to support; 254+ adds exponential restart "
        "backoff (default %(default)s, Debian 12)",
    )


def cmd_export(args: argparse.Namespace) -> int:
    from sentinel_stack.cli.main import CliError
    from sentinel_stack.export.assets import read_assets
    from sentinel_stack.export.deployment import ExportError, ExportOptions, prepare
    from sentinel_stack.export.writer import (
        OverwriteRefused,
        apply_writes,
        plan_writes,
        render_listing,
    )

    text, source, base_dir = _config_text(args)
    try:
        options = ExportOptions(
            prefix=args.prefix,
            config_dir=args.config_dir,
            run_dir=str(args.run_dir) if args.run_dir is not None else None,
            image=args.image,
            replicas=args.replicas,
            systemd_version=args.systemd_version,
        )
        deployment = prepare(text, source, options)
        deployment = prepare(text, source, options, read_assets(deployment.config, base_dir))
        files = _exporter(args.target)(deployment)
        writes = plan_writes(files, args.out)
    except ExportError as error:
        raise CliError(f"cannot export: {error}") from None
    print(render_listing(writes, args.out, dry_run=args.dry_run))
    for note in deployment.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.dry_run:
        return 0
    try:
        written = apply_writes(writes, args.out, force=args.force)
    except OverwriteRefused as refused:
        raise CliError(str(refused), EXIT_REFUSED) from None
    guide = {"systemd": "INSTALL.md", "compose": "compose.yaml", "kubernetes": "kustomization.yaml"}
    print(
        f"{written} file(s) written to {args.out} ({len(writes) - written} unchanged); "
        f"next: {args.out / guide[args.target]} (docs/deploy.md)"
    )
    return 0


def _exporter(target: str) -> Callable[..., dict[str, str]]:
    if target == "systemd":
        from sentinel_stack.export.systemd import export_systemd

        return export_systemd
    if target == "compose":
        from sentinel_stack.export.compose import export_compose

        return export_compose
    from sentinel_stack.export.kubernetes import export_kubernetes

    return export_kubernetes


def _config_text(args: argparse.Namespace) -> tuple[str, str, Path]:
    """The config `up` would use, as text: (text, source name, folder for relative paths)."""
    from sentinel_stack.cli.main import PACKAGE_ROOT, CliError, config_file
    from sentinel_stack.config.profiles import embedded_default

    path = config_file(args)
    if path is None:
        return embedded_default(), "<embedded default>", PACKAGE_ROOT
    try:
        return path.read_text(encoding="utf-8"), str(path), path.parent.resolve()
    except OSError as error:
        raise CliError(
            f"cannot read the config {path}: {error.strerror}\n"
            "    hint: check the path, or run `sentinel-stack init` to write one",
            2,
        ) from None


EXPORT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"export": cmd_export}
