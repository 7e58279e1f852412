"""What the bundled agents add to the SDK: their own config file, SIGHUP, background tasks.

`run_program(agent)` accepts every flag of `run_agent` plus ``--config FILE`` (TOML, or JSON
when the name ends in ``.json``), which holds the agent's own configuration, the same table
the stack pushes with ``configure`` from ``[agents.NAME.config]``. Both paths end in
`ProgramAgent.apply_config`, one at a time, so whichever arrives last is in force; a config
that fails validation is refused and the running one stays.

SIGHUP re-reads ``--config`` (subclasses reload more: the policy agent its policies).
Background work (a control socket, a file watcher, an event-hub writer) runs in a nursery
the agent owns from `Agent.on_start` to `Agent.on_stop`: it is up before the agent reports
READY and cancelled after the drain.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from sentinel_stack.agent import Agent, AgentHealth, Configure, run_agent
from sentinel_stack.agent.runner import build_parser
from sentinel_stack.statedir import own_state_dir

__all__ = ["ConfigRejected", "ProgramAgent", "read_config_file", "run_program"]

log = logging.getLogger("sentinel_agents")


class ConfigRejected(ValueError):
    """A configuration the agent refuses; the message names the key and what to do."""


def read_config_file(path: Path) -> dict[str, Any]:
    """The table in ``path``: JSON for ``*.json``, else TOML. Raises `ConfigRejected`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigRejected(f"cannot read {path}: {error.strerror}") from None
    try:
        data: object = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigRejected(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigRejected(f"{path}: the file must hold one table (an object) of settings")
    return data


class ProgramAgent(Agent):
    """An `Agent` with a typed config from two sources, SIGHUP reload and owned background tasks.

    Subclasses implement `apply_config` and may override `prepare`, `run_background` and
    `reload`. Start-up order: ``--config``, `prepare`, background tasks, then READY.
    """

    config_file: Path | None = None
    """``--config FILE``, when the agent runs with its own config file."""
    socket_path: Path | None = None
    """``--socket PATH``, when given: a place for side files when there is no run directory."""

    def __init__(self) -> None:
        self._config_lock = trio.Lock()
        self._background_scope = trio.CancelScope()
        self._background_done = trio.Event()
        self.background_error: str = ""

    # ---- configuration ---------------------------------------------------------------------

    async def apply_config(self, raw: Mapping[str, Any], base_dir: Path | None) -> None:
        """Validate ``raw`` and put it in force atomically; raise to refuse it.

        ``base_dir`` is where relative paths in ``raw`` resolve (the config file's folder),
        None for a config pushed by the proxy (then the working directory).
        """
        raise NotImplementedError

    async def on_configure(self, update: Configure) -> None:
        async with self._config_lock:
            await self.apply_config(update.config, None)

    async def load_config_file(self) -> None:
        """Apply ``--config`` (if any); raises `ConfigRejected` naming the file."""
        path = self.config_file
        if path is None:
            return
        raw = read_config_file(path)
        async with self._config_lock:
            try:
                await self.apply_config(raw, path.resolve().parent)
            except ConfigRejected:
                raise
            except ValueError as error:
                raise ConfigRejected(f"{path}: {error}") from None
        log.info("configuration file applied", extra={"file": str(path)})

    async def reload(self) -> None:
        """What SIGHUP does: re-read ``--config``. Subclasses extend it."""
        await self.load_config_file()

    # ---- background tasks ------------------------------------------------------------------

    async def run_background(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Long-running work of the agent; call ``task_status.started()`` once it is ready."""
        task_status.started()

    async def prepare(self) -> None:
        """After ``--config`` was applied, before background tasks start: fill in defaults."""

    async def on_start(self) -> None:
        await self.load_config_file()
        await self.prepare()
        await self._start_background()

    async def on_stop(self) -> None:
        self._background_scope.cancel()
        await self._background_done.wait()

    def background_health(self, health: AgentHealth) -> AgentHealth:
        """``health`` downgraded to failing when a background task died."""
        if not self.background_error:
            return health
        return AgentHealth(
            "failing",
            f"{health.detail}; background task failed: {self.background_error}".lstrip("; "),
        )

    async def _start_background(self) -> None:
        # The SDK's runner owns the main nursery and gives agents no task of their own, so
        # the background nursery lives in a system task whose scope on_stop cancels.
        started = trio.Event()
        failure: list[BaseException] = []

        async def host() -> None:
            try:
                with self._background_scope:
                    async with trio.open_nursery() as nursery:
                        await nursery.start(self._watch_sighup)
                        await nursery.start(self.run_background)
                        started.set()
            except* Exception as group:
                failure.append(group.exceptions[0])
                self.background_error = repr(group.exceptions[0])
                if started.is_set():
                    log.exception("background task failed; decisions go on without it")
            finally:
                started.set()
                self._background_done.set()

        trio.lowlevel.spawn_system_task(host, name=f"{self.name}-background")
        await started.wait()
        if failure and self._background_done.is_set():
            raise failure[0]

    async def _watch_sighup(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                log.info("SIGHUP: reloading")
                try:
                    await self.reload()
                except ValueError as error:
                    log.warning(
                        "reload refused, the running configuration stays",
                        extra={"error": str(error)},
                    )


def run_program(agent: ProgramAgent, argv: Sequence[str] | None = None) -> int:
    """`run_agent` with ``--config FILE`` added; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    config_help = "the agent's own config (TOML, or JSON for *.json); SIGHUP re-reads it"
    # The SDK's parser with our flag: one --help and one validation for the whole line.
    full = build_parser(agent)
    full.add_argument("--config", type=Path, metavar="FILE", help=config_help)
    parsed = full.parse_args(arguments)
    ours = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ours.add_argument("--config", type=Path)
    _, rest = ours.parse_known_args(arguments)
    agent.config_file = parsed.config
    agent.socket_path = Path(parsed.socket) if parsed.socket else None
    return run_agent(agent, rest)


def side_file(
    agent: ProgramAgent, configured: str | None, under_run_dir: str, *, lasting: bool = False
) -> Path:
    """Where an agent keeps a file of its own: ``configured``, else in the run directory.

    A ``lasting`` file (one that must survive a reboot, unlike a socket) goes to the agent's
    state directory instead when `sentinel-stack up` gave it one (sentinel_stack/statedir.py).
    Without ``$SENTINEL_RUN_DIR`` (running alone) the file goes beside ``--socket``, else in
    the working directory; only the file name of ``under_run_dir`` is kept then.
    """
    if configured:
        return Path(configured).expanduser()
    state = own_state_dir(os.environ) if lasting else None
    if state is not None:
        return state / Path(under_run_dir).name
    run_dir = os.environ.get("SENTINEL_RUN_DIR")
    if run_dir:
        return Path(run_dir) / under_run_dir
    name = Path(under_run_dir).name
    if agent.socket_path is not None:
        return agent.socket_path.parent / name
    return Path(name)
