"""Starter configs: the embedded default (`up` with no file) and `init --profile`.

Each profile is a list of sections, each with a comment and its data; tomli-w writes
the data, we write the comments, so the file is valid TOML a person can read.
"""

from __future__ import annotations

from typing import Any

import tomli_w

Section = tuple[str, dict[str, Any]]
PROFILES = ("minimal", "default", "full")

_HEADER = """\
# sentinel-stack configuration ({profile} profile).
# Reference: README.md ("Configuration"). Check it with `sentinel-stack validate`.
# Durations take units: "250ms", "10s", "5m". Strings may use ${{VAR}} or ${{VAR:-default}}.
"""


def _demo_upstream() -> Section:
    return (
        "The demo upstream: a small JSON API and page on 127.0.0.1:8081. Replace it with\n"
        "your own services; any program works (command, args, env, cwd, depends_on, ...).\n"
        "${SENTINEL_PYTHON} is the Python that runs sentinel-stack.",
        {
            "processes": {
                "demo": {
                    "command": [
                        "${SENTINEL_PYTHON}",
                        "-m",
                        "sentinel_stack.demo.upstream",
                        "--bind",
                        "127.0.0.1:8081",
                    ],
                    "readiness": {"notify": True, "timeout": "10s"},
                    "restart_policy": "on-failure",
                    "backoff": {"initial": "250ms", "max": "30s", "multiplier": 2.0, "jitter": 0.2},
                    "stable_after": "10s",
                    "max_restarts": 5,
                    "restart_window": "60s",
                    "ports": [8081],
                }
            }
        },
    )


def profile_sections(profile: str) -> list[Section]:
    """The sections of a profile; no two sections share a top-level table."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    stack: dict[str, Any] = {"name": "default", "shutdown_timeout": "10s"}
    if profile == "full":
        stack.update(
            log_max_bytes=10 * 1024 * 1024, log_backups=3, log_ring_lines=2000, cgroup=True
        )
    return [
        (
            "The stack's name keys its run directory (sockets, logs) and its cgroup.",
            {"stack": stack},
        ),
        _demo_upstream(),
        (
            "The reverse proxy: clients talk to `listen`; /health, /ready, /status and\n"
            "/metrics are on the admin listener (loopback only). `agents` is the default\n"
            "chain consulted on every request (a route may name its own).",
            {
                "proxy": {
                    "listen": ["127.0.0.1:8080"],
                    "admin": "127.0.0.1:9090",
                    "agents": [],
                    "limits": {"max_body": 10 * 1024 * 1024, "request_timeout": "60s"},
                }
            },
        ),
        (
            "Where requests go: an upstream is a set of targets with load balancing and\n"
            "health checks; `process` names the child serving it (started first).",
            {
                "upstreams": {
                    "demo": {
                        "targets": ["127.0.0.1:8081"],
                        "balance": "round_robin",
                        "process": "demo",
                        "health_check": {"kind": "http", "path": "/healthz", "interval": "5s"},
                        "retries": 1,
                    }
                }
            },
        ),
        (
            "Routes pick an upstream by host, path (exact, prefix, regex), method, headers.",
            {"routes": [{"id": "demo", "path_prefix": "/", "upstream": "demo"}]},
        ),
    ]


def render_profile(profile: str) -> str:
    """The profile as commented TOML."""
    parts = [_HEADER.format(profile=profile)]
    for comment, data in profile_sections(profile):
        parts.append("\n".join(f"# {line}" if line else "#" for line in comment.splitlines()))
        parts.append(_dump(data))
    return "\n".join(parts)


def _dump(data: dict[str, Any]) -> str:
    """TOML for one section. Arrays of tables are written as ``[[name]]`` blocks: tomli-w
    writes them inline, which would put them inside whatever table came before."""
    parts: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            parts.extend(f"[[{key}]]\n{tomli_w.dumps(item)}" for item in value)
        else:
            parts.append(tomli_w.dumps({key: value}))
    return "\n".join(parts)


def embedded_default() -> str:
    return render_profile("default")
