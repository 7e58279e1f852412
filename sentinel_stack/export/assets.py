"""Read the files a config points at (policies, detection rules) so the export ships them.

The only part of the exporters that reads this machine's files besides the config itself.
Paths are kept as the config writes them: relative ones land under the target's config
directory, where the children (started there) find them as they do under `up`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from sentinel_stack.config.schema import StackConfig
from sentinel_stack.export.deployment import Asset, ExportError

__all__ = ["asset_paths", "read_assets"]

_SKIPPED_PARTS = ("__pycache__", ".git")


def asset_paths(config: StackConfig) -> dict[str, str]:
    """The directories (or files) to ship, as the config names them, and their kind."""
    paths = {config.policy.dir: "policies"}
    for agent in config.agents.values():
        policies = agent.config.get("policies")
        if agent.enabled and isinstance(policies, str):
            paths.setdefault(policies, "policies")
    if config.detector is not None and config.detector.enabled:
        paths.setdefault(config.detector.rules_dir, "rules")
    return paths


def read_assets(config: StackConfig, base_dir: Path) -> tuple[Asset, ...]:
    """Every text file under `asset_paths` that exists, relative paths resolved against
    ``base_dir`` (the config's folder); a missing one is skipped (the children fall back to
    their bundled defaults, as under `up`)."""
    assets: dict[str, Asset] = {}
    for written, kind in asset_paths(config).items():
        source = Path(written).expanduser()
        root = source if source.is_absolute() else base_dir / source
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = sorted(
                p
                for p in root.rglob("*")
                if p.is_file() and not any(part in _SKIPPED_PARTS for part in p.parts)
            )
        else:
            continue
        for file in files:
            relative = file.relative_to(root).as_posix() if file != root else ""
            target = str(PurePosixPath(written) / relative) if relative else written
            try:
                text = file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ExportError(
                    f"{file} is not a text file; exports ship policies and rules as text "
                    "(unpack an OPA bundle into a directory, or put the file in the image)"
                ) from None
            assets.setdefault(target, Asset(target, text, kind))
    return tuple(assets.values())
