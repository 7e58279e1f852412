"""Text renderings for the CLI: the plan (`validate`, `up --dry-run`) and `status`."""

from __future__ import annotations

import re
import time
from typing import Any

from sentinel_stack.supervisor.spec import ChildSpec, StackPlan

_SECRET_KEY = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|API_?KEY|PRIVATE|CREDENTIAL)", re.I)


def mask(key: str, value: str) -> str:
    """Values of secret-looking variables never reach a terminal or a log."""
    return "******" if _SECRET_KEY.search(key) else value


def _ready_text(spec: ChildSpec) -> str:
    check = spec.readiness
    target = " ".join(check.target) if isinstance(check.target, tuple) else check.target
    return {
        "none": "as soon as it is spawned",
        "notify": "sd_notify READY=1",
        "tcp": f"TCP {target} accepts",
        "unix": f"Unix socket {target} accepts",
        "http": f"HTTP GET {target} answers 2xx",
        "exec": f"`{target}` exits 0",
    }[check.kind] + ("" if check.kind == "none" else f" (within {check.timeout:g}s)")


def _restart_text(spec: ChildSpec) -> str:
    r = spec.restart
    if r.mode == "never":
        return "never"
    return (
        f"{r.mode}, backoff {r.initial:g}s→{r.maximum:g}s ×{r.multiplier:g} ±{r.jitter:.0%}, "
        f"reset after {r.stable_after:g}s up, fatal after {r.max_restarts} restarts "
        f"in {r.window:g}s"
    )


def render_plan(plan: StackPlan, source: str, config_env: set[str] | None = None) -> str:
    lines = [
        f"config:   {source}",
        f"stack:    {plan.name}",
        f"run dir:  {plan.run_dir}",
        f"sockets:  {plan.run_dir / 'control.sock'} (control), "
        f"{plan.run_dir / 'events.sock'} (events)",
        f"shutdown: reverse order, {plan.shutdown_timeout:g}s per child then SIGKILL",
        "",
        "start order (each level starts once the previous one is ready):",
    ]
    levels = plan.levels()
    if not plan.children:
        lines.append("  (no children: add [processes.NAME] tables)")
    number = 0
    for depth, names in enumerate(levels):
        for name in names:
            number += 1
            spec = plan.child(name)
            flags = " critical" if spec.critical else ""
            lines.append(f"  {number}. {name} ({spec.kind}{flags}) — level {depth}")
            lines.append(f"       command:    {' '.join(spec.argv)}")
            if spec.cwd:
                lines.append(f"       cwd:        {spec.cwd}")
            if spec.depends_on:
                lines.append(f"       after:      {', '.join(spec.depends_on)}")
            lines.append(f"       ready when: {_ready_text(spec)}")
            lines.append(f"       restart:    {_restart_text(spec)}")
            lines.append(
                f"       stop:       {spec.stop_signal}, SIGKILL after {spec.stop_timeout:g}s"
            )
            if spec.watchdog:
                lines.append(f"       watchdog:   WATCHDOG=1 every {spec.watchdog:g}s")
            if spec.ports:
                lines.append(f"       ports:      {', '.join(map(str, spec.ports))}")
            if spec.socket:
                how = "inherited fd 3 (LISTEN_FDS)" if spec.socket_activation else "path"
                lines.append(f"       socket:     {spec.socket} ({how})")
            own_env = sorted(k for k in spec.env if config_env is None or k in config_env)
            if own_env:
                env = ", ".join(f"{k}={mask(k, spec.env[k])}" for k in own_env)
                lines.append(f"       env:        {env}")
    lines += ["", "dependency graph:"]
    for spec in plan.children:
        arrow = f" ← {', '.join(spec.depends_on)}" if spec.depends_on else ""
        lines.append(f"  {spec.name}{arrow}")
    return "\n".join(lines)


def plan_json(plan: StackPlan) -> dict[str, Any]:
    return {
        "stack": plan.name,
        "run_dir": str(plan.run_dir),
        "levels": plan.levels(),
        "children": [
            {
                "name": s.name,
                "kind": s.kind,
                "argv": list(s.argv),
                "cwd": s.cwd,
                "depends_on": list(s.depends_on),
                "readiness": s.readiness.kind,
                "restart_policy": s.restart.mode,
                "critical": s.critical,
                "ports": list(s.ports),
                "socket": str(s.socket) if s.socket else None,
                "env": {k: mask(k, v) for k, v in s.env.items()},
            }
            for s in plan.children
        ],
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if value < 1024:
            return f"{value:.0f}{unit}"
        value = int(value / 1024)
    return f"{value}T"


def render_status(status: dict[str, Any]) -> str:
    stack = status["stack"]
    header = (
        f"stack {stack['name']} — launcher pid {stack['pid']}, up {_duration(stack['uptime'])}, "
        f"{stack['containment']}"
    )
    rows = [
        (
            "NAME",
            "KIND",
            "STATE",
            "PID",
            "UPTIME",
            "RESTARTS",
            "CPU%",
            "RSS",
            "THR",
            "FDS",
            "LAST EXIT / STATUS",
        )
    ]
    for child in status["children"]:
        detail = child["status"] or child["reason"] or (child["last_exit"] or "")
        rows.append(
            (
                child["name"],
                child["kind"],
                child["state"],
                str(child["pid"] or "-"),
                _duration(child["uptime"]),
                str(child["restarts"]),
                "-" if child["cpu_percent"] is None else f"{child['cpu_percent']:.1f}",
                _bytes(child["rss"]),
                str(child["threads"] or "-"),
                str(child["fds"] or "-"),
                detail[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    table = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines = [header, *table]
    if stack.get("failure"):
        lines.append(f"failure: {stack['failure']}")
    events = status.get("events") or {}
    if events.get("received"):
        lines.append(
            f"events: {events['received']} received, {events.get('dropped', 0)} dropped, "
            f"{events.get('malformed', 0)} malformed"
        )
    lines.append(f"as of {time.strftime('%H:%M:%S')}")
    return "\n".join(lines)
