"""From the stack's config and `status` to the `StackView` and built-in lists rules use.

Shared by the detector child and `sentinel-stack rules test|lint`, so a rule behaves the
same live and on a recording.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sentinel_stack.config.plan import BUILTIN_MODULES
from sentinel_stack.config.schema import StackConfig
from sentinel_stack.detect.context import EgressRule, StackView, command_key, parse_egress

__all__ = ["BUILTIN_LISTS", "apply_status", "builtin_lists", "view_from_config"]

log = logging.getLogger("sentinel_stack.detect")

BUILTIN_LISTS = ("stack_upstreams", "stack_agents", "stack_children")


def _egress(entries: list[str], where: str) -> tuple[EgressRule, ...]:
    rules = []
    for entry in entries:
        try:
            rules.append(parse_egress(entry))
        except ValueError as exc:
            log.warning("%s: %s (entry ignored)", where, exc)
    return tuple(rules)


def view_from_config(config: StackConfig | None, launcher_pid: int | None = None) -> StackView:
    """Children, their kinds, which serve upstreams, and where each may connect."""
    view = StackView(launcher_pid=launcher_pid)
    if config is None:
        return view
    view.stack_name = config.stack.name
    kinds = {name: "process" for name, p in config.processes.items() if p.enabled}
    kinds.update({name: "agent" for name, a in config.agents.items() if a.enabled})
    commands = {command_key(p.command): n for n, p in config.processes.items() if p.enabled}
    commands.update({command_key(a.command): n for n, a in config.agents.items() if a.enabled})
    modules: dict[str, str] = {}
    for name in ("proxy", "probe", "detector"):
        component = getattr(config, name)
        if component is not None and component.enabled:
            kinds[name] = name
            if component.command:
                commands[command_key(component.command)] = name
            else:
                modules[BUILTIN_MODULES[name]] = name
    view.kinds = kinds
    view.commands = {key: name for key, name in commands.items() if key[0]}
    view.modules = modules
    upstream_process: dict[str, str] = {}
    child_egress: dict[str, tuple[EgressRule, ...]] = {}
    for name, upstream in config.upstreams.items():
        if upstream.process:
            upstream_process[name] = upstream.process
            rules = _egress(upstream.allowed_destinations, f"upstreams.{name}.allowed_destinations")
            child_egress[upstream.process] = child_egress.get(upstream.process, ()) + rules
    view.upstream_process = upstream_process
    view.upstreams = frozenset(upstream_process.values())
    view.child_egress = child_egress
    if config.detector is not None:
        view.egress = _egress(config.detector.allowed_egress, "detector.allowed_egress")
    return view


def apply_status(view: StackView, status: Mapping[str, Any]) -> None:
    """Learn the launcher's pid and each child's kind and pid from a control `status`."""
    stack = status.get("stack") or {}
    if isinstance(stack.get("pid"), int):
        view.launcher_pid = stack["pid"]
    for child in status.get("children") or ():
        name, pid, state = child.get("name"), child.get("pid"), child.get("state", "")
        if not isinstance(name, str):
            continue
        if isinstance(child.get("kind"), str):
            view.kinds[name] = child["kind"]
        if isinstance(pid, int) and state in ("starting", "running", "stopping"):
            view.child_started(name, pid)


def builtin_lists(view: StackView) -> dict[str, list[str]]:
    return {
        "stack_upstreams": sorted(view.upstreams),
        "stack_agents": sorted(n for n, k in view.kinds.items() if k == "agent"),
        "stack_children": sorted(view.kinds),
    }
