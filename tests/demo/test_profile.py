"""The demo's config and the `sentinel-stack demo` verb (no stack is started here)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sentinel_stack.cli.main import PACKAGE_ROOT, main
from sentinel_stack.config.loader import load_config_text
from sentinel_stack.config.plan import build_plan
from sentinel_stack.demo.profile import DemoOptions, demo_config, sandbox_root, trusts_loopback
from sentinel_stack.demo.vulnerable import ENABLE_FLAG, PREFIX
from sentinel_stack.probe.config import DEFAULT_WATCH_PATHS


def plan(options: DemoOptions, run_dir: Path):  # type: ignore[no-untyped-def]
    loaded = load_config_text(demo_config(options), "<demo>", base_dir=PACKAGE_ROOT)
    return loaded, build_plan(loaded, run_dir=run_dir)


def test_the_demo_runs_the_whole_product_with_the_vulnerable_routes(short_dir: Path) -> None:
    loaded, stack = plan(DemoOptions(), short_dir / "run")
    names = {c.name for c in stack.children}
    assert {"demo", "proxy", "probe", "detector", "traffic", "waf"} <= names
    assert "attacks" not in names  # only with --attacks
    demo = next(c for c in stack.children if c.name == "demo")
    assert demo.argv[-1] == ENABLE_FLAG and "127.0.0.1:8081" in demo.argv
    config = loaded.config
    assert config.stack.name == "demo"
    assert config.proxy is not None and config.proxy.listen == ["127.0.0.1:8080"]
    assert config.detector is not None
    assert config.probe is not None
    assert config.probe.watch_paths == [*DEFAULT_WATCH_PATHS, str(sandbox_root())]
    vulnerable = config.routes[0]
    assert vulnerable.path_prefix == PREFIX and vulnerable.priority > 0
    assert vulnerable.agents is not None and "waf" not in vulnerable.agents
    assert "waf" in config.proxy.agents  # the rest of the shop keeps its WAF
    assert trusts_loopback(config.proxy.trusted_proxies)


def test_ports_rates_attacks_and_sandbox_are_options(short_dir: Path) -> None:
    options = DemoOptions(
        proxy_port=18080,
        upstream_port=18081,
        admin_port=19090,
        traffic_rate=2.5,
        attack_every=30,
        sandbox=short_dir / "sim",
    )
    loaded, stack = plan(options, short_dir / "run")
    by_name = {c.name: c for c in stack.children}
    assert "--every" in by_name["attacks"].argv and "30" in by_name["attacks"].argv
    assert {"proxy", "probe", "detector"} <= set(by_name["attacks"].depends_on)
    assert "2.5" in by_name["traffic"].argv
    assert "--forwarded-for" in by_name["traffic"].argv
    assert {8080, 8081, 9090}.isdisjoint(by_name["proxy"].ports)
    assert loaded.config.upstreams["demo"].targets == ["127.0.0.1:18081"]
    assert loaded.config.probe is not None
    assert str(short_dir / "sim") in loaded.config.probe.watch_paths
    no_traffic = demo_config(DemoOptions(traffic_rate=0))
    assert "sentinel_stack.demo.traffic" not in no_traffic


def test_trusts_loopback() -> None:
    assert trusts_loopback(["10.0.0.0/8", "127.0.0.0/8"])
    assert not trusts_loopback([])
    assert not trusts_loopback(["10.0.0.0/8", "::1", "not an ip"])


def test_print_config_is_the_valid_commented_demo_config(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--print-config", "--port", "18080", "--attacks"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# sentinel-stack demo configuration")
    assert "DELIBERATELY VULNERABLE" in text
    data = tomllib.loads(text)
    assert data["proxy"]["listen"] == ["127.0.0.1:18080"]
    assert "attacks" in data["processes"]
