"""Export the test configs: the `default` and `full` profiles and configs/edge.toml.

Policies and rules come from fixture_root/ (small stand-ins), so the golden files do not
change when the bundled example policy or rules do.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from sentinel_stack.config.profiles import PROFILES, render_profile
from sentinel_stack.export.assets import read_assets
from sentinel_stack.export.compose import export_compose
from sentinel_stack.export.deployment import Deployment, ExportOptions, prepare
from sentinel_stack.export.kubernetes import export_kubernetes
from sentinel_stack.export.systemd import export_systemd
from sentinel_stack.export.writer import apply_writes, plan_writes

HERE = Path(__file__).resolve().parent
FIXTURE_ROOT = HERE / "fixture_root"
GOLDEN = HERE / "golden"
CONFIGS = ("default", "full", "edge")
TARGETS = ("systemd", "compose", "kubernetes")
EXPORTERS: dict[str, Callable[[Deployment], dict[str, str]]] = {
    "systemd": export_systemd,
    "compose": export_compose,
    "kubernetes": export_kubernetes,
}


def config_text(name: str) -> str:
    if name in PROFILES:
        return render_profile(name)
    return (HERE / "configs" / f"{name}.toml").read_text()


def deployment(name: str, **options: object) -> Deployment:
    text = config_text(name)
    chosen = ExportOptions(**options)  # type: ignore[arg-type]
    first = prepare(text, f"{name}.toml", chosen)
    return prepare(text, f"{name}.toml", chosen, read_assets(first.config, FIXTURE_ROOT))


def export(target: str, name: str, **options: object) -> dict[str, str]:
    return EXPORTERS[target](deployment(name, **options))


def write(files: dict[str, str], out: Path) -> Path:
    apply_writes(plan_writes(files, out), out, force=True)
    return out


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
