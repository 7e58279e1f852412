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


def _agent(module: str) -> list[str]:
    return ["${SENTINEL_PYTHON}", "-m", f"sentinel_agents.{module}"]


def _agents(profile: str) -> list[Section]:
    """The bundled security agents (docs/agents.md): none in `minimal`, policy only in `full`."""
    if profile == "minimal":
        return []
    sections: list[Section] = [
        (
            "The denylist agent refuses denied IPs/CIDRs, path prefixes, user agents and header\n"
            "values (403). Change it while the stack runs: `sentinel-stack deny add 203.0.113.7\n"
            "--ttl 10m`, `deny remove 203.0.113.7`, `deny list`. Entries are kept in the\n"
            "stack's state dir under `up` (it survives reboots), else in the run dir; the\n"
            "config key `file` names another place.",
            {
                "agents": {
                    "denylist": {
                        "command": _agent("denylist"),
                        "timeout": "100ms",
                        "failure_mode": "open",
                        "config": {"status": 403},
                    }
                }
            },
        ),
        (
            "The rate-limit agent: GCRA rules, the first that matches decides; a refusal is 429\n"
            "with Retry-After and RateLimit-* headers. `dry_run = true` only counts.\n"
            "Rule keys: name, rate, period, burst, key (client_ip, path, route, method, global,\n"
            "header:<name>), match (route, path_prefix, method, header).",
            {
                "agents": {
                    "ratelimit": {
                        "command": _agent("ratelimit"),
                        "timeout": "100ms",
                        "failure_mode": "open",
                        "config": {
                            "dry_run": False,
                            "rules": [
                                {
                                    "name": "per-client",
                                    "rate": 100,
                                    "period": "1s",
                                    "burst": 200,
                                    "key": ["client_ip"],
                                }
                            ],
                        },
                    }
                }
            },
        ),
        (
            "The WAF agent: ModSecurity v3 with the OWASP CRS, or a pure-Python fallback when\n"
            'libmodsecurity is missing (its health says which, and why). `mode = "detect"`\n'
            "only reports; request bodies are inspected on routes with `inspect_body = true`.",
            {
                "agents": {
                    "waf": {
                        "command": _agent("waf"),
                        "timeout": "250ms",
                        "failure_mode": "open",
                        "config": {"mode": "block", "paranoia_level": 1, "anomaly_threshold": 5},
                    }
                }
            },
        ),
    ]
    if profile == "full":
        sections.append(
            (
                "The policy agent: Rego policies decide every request (default: configs/policies,\n"
                "else the bundled example). Edits are picked up within a second; a broken edit\n"
                "keeps the last good policy and raises an alert. Decisions are logged to the\n"
                "event hub. `sentinel-stack policy test` runs the policy's own tests.",
                {
                    "agents": {
                        "policy": {
                            "command": _agent("policy"),
                            "timeout": "250ms",
                            "failure_mode": "open",
                            "config": {"decision_log": "all", "watch_interval": 1.0},
                        }
                    }
                },
            )
        )
    return sections


def _agent_chain(profile: str) -> list[str]:
    return {
        "minimal": [],
        "default": ["denylist", "ratelimit", "waf"],
        "full": ["denylist", "ratelimit", "policy", "waf"],
    }[profile]


def _detector(profile: str) -> list[Section]:
    """The detection engine (docs/detection.md): not in `minimal`."""
    if profile == "minimal":
        return []
    return [
        (
            "The detector: rules (configs/rules/*.toml; the bundled set when the directory is\n"
            "missing) over the probe's kernel events, the proxy's access records and the\n"
            "stack's restarts; alerts go to the event hub (TUI, `sentinel-stack alerts`).\n"
            "`allowed_egress` (and each upstream's `allowed_destinations`) lists where\n"
            'upstreams may connect, e.g. "10.0.0.5:5432"; anything else is upstream_ssrf.\n'
            "`sentinel-stack rules lint` checks the rules, `rules test FILE` replays a recording.",
            {"detector": {"rules_dir": "configs/rules", "allowed_egress": []}},
        )
    ]


def profile_sections(profile: str) -> list[Section]:
    """The sections of a profile; no two sections share a table (agents share `agents`,
    each with its own `[agents.NAME]`)."""
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
        *_agents(profile),
        (
            "The reverse proxy: clients talk to `listen`; /health, /ready, /status and\n"
            "/metrics are on the admin listener (loopback only). `agents` is the default\n"
            "chain consulted on every request (a route may name its own).",
            {
                "proxy": {
                    "listen": ["127.0.0.1:8080"],
                    "admin": "127.0.0.1:9090",
                    "agents": _agent_chain(profile),
                    "limits": {"max_body": 10 * 1024 * 1024, "request_timeout": "60s"},
                }
            },
        ),
        *_detector(profile),
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
            "Routes pick an upstream by host, path (exact, prefix, regex), method, headers.\n"
            "`inspect_body = true` lets agents that ask (the WAF) see request bodies.",
            {
                "routes": [
                    {
                        "id": "demo",
                        "path_prefix": "/",
                        "upstream": "demo",
                        **({"inspect_body": True} if profile != "minimal" else {}),
                    }
                ]
            },
        ),
        *_probe(profile),
    ]


def _probe(profile: str) -> list[Section]:
    """The eBPF probe (docs/probe.md): kernel events of the stack's own processes."""
    if profile == "minimal":
        return []
    return [
        (
            "The eBPF probe: bpftrace programs (bpf/) report exec, connect, sensitive opens,\n"
            'privilege changes... of the stack\'s own processes (`scope = "host"`: all).\n'
            "Without root or bpftrace it polls /proc instead and says so (`sentinel-stack\n"
            "doctor` tells what is missing).",
            {"probe": {"scope": "stack", "backend": "auto"}},
        )
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
