"""Where the audit log and its key live, from `[audit]` and the environment.

The log must outlive runs and reboots, so it never defaults into the run directory
(``$XDG_RUNTIME_DIR`` is a tmpfs emptied at logout and boot). Defaults:

- log: ``<config dir>/.sentinel-stack/audit/<stack>`` when the config is a file (the log
  follows the deployment, like the run dir's own fallback); for the embedded default
  config ``$XDG_STATE_HOME/sentinel-stack/<stack>/audit`` (``~/.local/state`` when unset);
- key: ``$XDG_CONFIG_HOME/sentinel-stack/<stack>-audit.key`` (``~/.config`` when unset) —
  outside the log directory by design.

A service deployment (systemd, containers) sets both explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sentinel_stack.audit.chain import CheckpointPolicy
from sentinel_stack.audit.writer import LogSettings
from sentinel_stack.config.loader import LoadedConfig
from sentinel_stack.statedir import stack_state_dir


@dataclass(frozen=True)
class AuditSettings:
    log: LogSettings
    queue: int = 10_000


def default_key_file(stack: str, environ: Mapping[str, str]) -> Path:
    if environ.get("XDG_CONFIG_HOME"):
        base = Path(environ["XDG_CONFIG_HOME"])
    else:
        base = Path(environ.get("HOME") or Path.home()) / ".config"
    return base / "sentinel-stack" / f"{stack}-audit.key"


def default_audit_dir(stack: str, config_path: Path | None, environ: Mapping[str, str]) -> Path:
    return stack_state_dir(stack, config_path, environ, "audit")


def audit_settings(
    loaded: LoadedConfig, environ: Mapping[str, str] | None = None
) -> AuditSettings | None:
    """The log's settings, or None when `[audit] enabled = false`."""
    env = os.environ if environ is None else environ
    config = loaded.config.audit
    if not config.enabled:
        return None
    stack = loaded.config.stack.name
    directory = (
        _resolve(loaded.base_dir, config.dir)
        if config.dir
        else default_audit_dir(stack, loaded.path, env)
    )
    key_file = (
        _resolve(loaded.base_dir, config.key_file)
        if config.key_file
        else default_key_file(stack, env)
    )
    policy = CheckpointPolicy(config.checkpoint_records, config.checkpoint_interval)
    log = LogSettings(directory, key_file, stack, policy, config.max_file_bytes)
    return AuditSettings(log, config.queue)


def _resolve(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
