"""The config `sentinel-stack demo` runs: the default profile plus probe, detector, the
vulnerable routes and the traffic/attack generators as supervised children.

Pure: `demo_config` returns the TOML text for the options given (ports, rates, sandbox root),
so it can be printed (`demo --print-config`), tested and diffed.
"""

from __future__ import annotations

import copy
import ipaddress
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from sentinel_stack.config.plan import default_run_dir
from sentinel_stack.config.profiles import profile_sections
from sentinel_stack.demo.vulnerable import ENABLE_FLAG, PREFIX
from sentinel_stack.probe.config import DEFAULT_WATCH_PATHS

__all__ = [
    "DEMO_STACK_NAME",
    "DemoOptions",
    "demo_config",
    "demo_run_dir",
    "sandbox_root",
    "trusts_loopback",
]

DEMO_STACK_NAME = "demo"
_PYTHON = "${SENTINEL_PYTHON}"


def sandbox_root() -> Path:
    """Where simulation sandboxes live (``<tmpdir>/sentinel-sim``); the demo's probe watches
    writes below it, so the cron/authorized_keys/log scenarios are seen."""
    return Path(tempfile.gettempdir()) / "sentinel-sim"


def demo_run_dir(base: Path, environ: Mapping[str, str]) -> Path:
    return default_run_dir(DEMO_STACK_NAME, base, environ)


def trusts_loopback(trusted_proxies: Iterable[str]) -> bool:
    """Does the proxy take X-Forwarded-For from a loopback peer (127.0.0.1)?"""
    ip = ipaddress.ip_address("127.0.0.1")
    for cidr in trusted_proxies:
        try:
            if ip in ipaddress.ip_network(cidr.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


@dataclass(frozen=True, slots=True)
class DemoOptions:
    proxy_port: int = 8080
    upstream_port: int = 8081
    admin_port: int = 9090
    traffic_rate: float = 5.0  # benign requests per second; 0: no traffic generator
    attack_every: float | None = None  # seconds between attack rounds; None: no attacks
    sandbox: Path | None = None  # default: sandbox_root()


def demo_config(options: DemoOptions = DemoOptions()) -> str:
    data: dict[str, Any] = {}
    for _comment, section in profile_sections("default"):
        for key, value in copy.deepcopy(section).items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
    upstream = f"127.0.0.1:{options.upstream_port}"
    proxy_url = f"http://127.0.0.1:{options.proxy_port}"
    data["stack"]["name"] = DEMO_STACK_NAME
    demo = data["processes"]["demo"]
    demo["command"] = [_PYTHON, "-m", "sentinel_stack.demo.upstream", "--bind", upstream]
    demo["command"].append(ENABLE_FLAG)  # the only place it is ever passed
    demo["ports"] = [options.upstream_port]
    data["upstreams"]["demo"]["targets"] = [upstream]
    proxy = data["proxy"]
    proxy["listen"] = [f"127.0.0.1:{options.proxy_port}"]
    proxy["admin"] = f"127.0.0.1:{options.admin_port}"
    # The traffic generator speaks for many clients through X-Forwarded-For; the proxy only
    # listens on loopback, so trusting loopback lets nobody new in.
    proxy["trusted_proxies"] = ["127.0.0.1/32"]
    # The vulnerable routes skip the WAF on purpose: they stand for the attack the WAF
    # missed, and the point of the demo is that the kernel side still sees it.
    chain = [a for a in proxy["agents"] if a != "waf"]
    data["routes"].insert(
        0,
        {
            "id": "demo-vulnerable",
            "path_prefix": PREFIX,
            "upstream": "demo",
            "agents": chain,
            "priority": 10,
        },
    )
    sandbox = options.sandbox or sandbox_root()
    probe = data.setdefault("probe", {})
    probe.update(scope="stack", watch_paths=[*DEFAULT_WATCH_PATHS, str(sandbox)])
    data["detector"] = {"rules_dir": "configs/rules"}
    if options.traffic_rate > 0:
        data["processes"]["traffic"] = {
            "command": [
                *(_PYTHON, "-m", "sentinel_stack.demo.traffic", "--target", proxy_url),
                *("--rate", f"{options.traffic_rate:g}", "--forwarded-for"),
            ],
            # After the probe: a child appearing while it attaches restarts its bpftrace.
            "depends_on": ["proxy", "probe"],
            "restart_policy": "on-failure",
        }
    if options.attack_every is not None:
        data["processes"]["attacks"] = {
            "command": [
                *(_PYTHON, "-m", "sentinel_stack.demo.attacks", "--proxy", proxy_url),
                *("--every", f"{options.attack_every:g}", "--sandbox-root", str(sandbox)),
            ],
            "depends_on": ["proxy", "probe", "detector"],
            "restart_policy": "on-failure",
        }
    header = (
        "# sentinel-stack demo configuration (`sentinel-stack demo --print-config`).\n"
        "# WARNING: the demo upstream serves DELIBERATELY VULNERABLE routes under "
        f"{PREFIX} (a web shell,\n# a path traversal, an SSRF) to loopback clients. "
        "Run it on a throwaway machine only.\n"
    )
    return header + tomli_w.dumps(data)
