"""Where a stack keeps what must outlive runs and reboots (the audit log, the detector's
baseline and alert file), as opposed to the run directory, which is a tmpfs
(``$XDG_RUNTIME_DIR``, ``/run``) emptied at logout and boot.

- a stack started from a config file: ``<config dir>/.sentinel-stack/<part>/<stack>`` (the
  state follows the deployment, like the run directory's own fallback);
- the embedded default config: ``$XDG_STATE_HOME/sentinel-stack/<stack>/<part>``
  (``~/.local/state`` when unset).

Only `sentinel-stack up` hands the detector its state directory; a detector started another
way (the services `sentinel-stack export` writes) keeps ``<run-dir>/detector`` unless the
config sets ``baseline_file`` and ``alert_file.path``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

DETECTOR_STATE_ENV = "SENTINEL_DETECTOR_STATE_DIR"


def stack_state_dir(
    stack: str, config_path: Path | None, environ: Mapping[str, str], part: str
) -> Path:
    """The directory for ``part`` (``audit``, ``detector``) of ``stack``."""
    if config_path is not None:
        return config_path.resolve().parent / ".sentinel-stack" / part / stack
    if environ.get("XDG_STATE_HOME"):
        base = Path(environ["XDG_STATE_HOME"])
    else:
        base = Path(environ.get("HOME") or Path.home()) / ".local" / "state"
    return base / "sentinel-stack" / stack / part
