"""Where a stack keeps what must outlive runs and reboots (the audit log; each child's own
files: the detector's baseline and alert file, the denylist's entries), as opposed to the
run directory, which is a tmpfs (``$XDG_RUNTIME_DIR``, ``/run``) emptied at logout and boot.

- a stack started from a config file: ``<config dir>/.sentinel-stack/<part>/<stack>`` (the
  state follows the deployment, like the run directory's own fallback);
- the embedded default config: ``$XDG_STATE_HOME/sentinel-stack/<stack>/<part>``
  (``~/.local/state`` when unset).

``<part>`` is ``audit`` for the audit log and ``state`` for the children's files:
`sentinel-stack up` sets ``$SENTINEL_STATE_DIR`` to the latter for every child, and a child
keeps its files in ``$SENTINEL_STATE_DIR/<child name>``. A child started another way (the
services `sentinel-stack export` writes, an agent run alone) has no such variable and keeps
its files where it did before, in the run directory, unless its config names them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

STATE_ENV = "SENTINEL_STATE_DIR"


def stack_state_dir(
    stack: str, config_path: Path | None, environ: Mapping[str, str], part: str
) -> Path:
    """The directory for ``part`` (``audit``, ``state``) of ``stack``."""
    if config_path is not None:
        return config_path.resolve().parent / ".sentinel-stack" / part / stack
    if environ.get("XDG_STATE_HOME"):
        base = Path(environ["XDG_STATE_HOME"])
    else:
        base = Path(environ.get("HOME") or Path.home()) / ".local" / "state"
    return base / "sentinel-stack" / stack / part


def state_root(stack: str, config_path: Path | None, environ: Mapping[str, str]) -> Path:
    """What `up` sets ``$SENTINEL_STATE_DIR`` to: the parent of every child's own directory."""
    return stack_state_dir(stack, config_path, environ, "state")


def child_state_dir(
    stack: str, config_path: Path | None, environ: Mapping[str, str], child: str
) -> Path:
    """Where `up` lets ``child`` keep its files (``$SENTINEL_STATE_DIR/<child>``)."""
    return state_root(stack, config_path, environ) / child


def own_state_dir(environ: Mapping[str, str]) -> Path | None:
    """In a child: its state directory, when `up` started it; else None."""
    root, name = environ.get(STATE_ENV), environ.get("SENTINEL_CHILD_NAME")
    return Path(root) / name if root and name else None
