"""Compose output: valid against the Compose specification's JSON schema, and wired as the
stack needs (one network namespace, shared sockets, health-gated start order, a privileged
probe, no secret values).

compose-spec.json is vendored (no network at test time): it is the copy that the
check-jsonschema package ships (check_jsonschema/builtin_schemas/vendor/compose-spec.json,
check-jsonschema 0.39.0), from github.com/compose-spec/compose-spec, Apache-2.0
(LICENSE.compose-spec beside it). Refresh it from a newer check-jsonschema wheel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.export.exports import CONFIGS, export

SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())


def compose(config: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(export("compose", config)["compose.yaml"])
    return document


@pytest.mark.parametrize("config", CONFIGS)
def test_validates_against_the_compose_spec(config: str) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(compose(config))


def test_the_schema_does_reject_a_broken_file() -> None:
    document = compose("default")
    document["services"]["proxy"]["restart"] = ["always"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(document)


def test_one_network_namespace_publishing_the_listeners_as_configured() -> None:
    services = compose("edge")["services"]
    assert services["netns"]["ports"] == ["127.0.0.1:80:80", "8443:8443"]
    for name in ("app", "worker", "denylist", "custom", "proxy"):
        assert services[name]["network_mode"] == "service:netns"
        assert "ports" not in services[name]
    files = export("compose", "edge")
    config = files["config/sentinel-stack.toml"]
    assert 'listen = [\n    "0.0.0.0:80",\n    "0.0.0.0:8443",\n]' in config


def test_agents_and_proxy_share_the_socket_volume() -> None:
    document = compose("full")
    assert set(document["volumes"]) == {"run", "sockets"}
    mount = "sockets:/run/sentinel-stack/default/agents"
    for name in ("denylist", "ratelimit", "waf", "policy", "proxy"):
        assert mount in document["services"][name]["volumes"]


def test_start_order_waits_for_health() -> None:
    services = compose("full")["services"]
    depends = services["proxy"]["depends_on"]
    for agent in ("denylist", "ratelimit", "policy", "waf", "demo"):
        assert depends[agent] == {"condition": "service_healthy"}
        assert services[agent]["healthcheck"]["test"][0] == "CMD"
    assert services["proxy"]["healthcheck"]["test"][-2:] == ["http", "http://127.0.0.1:9090/ready"]
    assert services["denylist"]["healthcheck"]["test"][-2:] == [
        "unix",
        "/run/sentinel-stack/default/agents/denylist.sock",
    ]
    assert services["proxy"]["restart"] == "on-failure:5"


def test_probe_is_privileged_with_sys_read_only_and_watches_the_host() -> None:
    probe = compose("edge")["services"]["probe"]
    assert probe["privileged"] is True and probe["pid"] == "host"
    assert "/sys:/sys:ro" in probe["volumes"] and probe["network_mode"] == "none"
    assert probe["command"][probe["command"].index("--scope") + 1] == "host"
    assert compose("edge")["services"]["app"]["read_only"] is True


def test_the_detector_serves_the_event_hub_in_the_run_volume() -> None:
    services = compose("edge")["services"]
    hub = "/run/sentinel-stack/edge/events.sock"
    detector = services["detector"]
    assert detector["command"][-2:] == ["--serve-events", hub]
    assert detector["healthcheck"]["test"][-2:] == ["unix", hub]
    assert "run:/run/sentinel-stack/edge" in detector["volumes"]
    assert "SENTINEL_EVENTS_SOCKET" not in detector["environment"]
    for name in ("proxy", "denylist", "custom", "probe"):  # the hub's producers
        assert services[name]["environment"]["SENTINEL_EVENTS_SOCKET"] == hub, name
        assert "run:/run/sentinel-stack/edge" in services[name]["volumes"], name
        # A failing detector (a broken rule file) never keeps the data path from starting;
        # the probe feeds only the detector, so it waits for the hub.
        condition = "service_healthy" if name == "probe" else "service_started"
        assert services[name]["depends_on"]["detector"] == {"condition": condition}, name
    assert services["probe"]["network_mode"] == "none"  # the socket needs no network


def test_secrets_come_from_env_files_and_dollars_are_escaped() -> None:
    files = export("compose", "edge")
    assert not any("s3cr3t" in text for text in files.values())
    app = yaml.safe_load(files["compose.yaml"])["services"]["app"]
    assert app["env_file"] == ["env/app.env"] and "API_TOKEN" not in app["environment"]
    assert "API_TOKEN=" in files["env/app.env.example"]
    worker = yaml.safe_load(files["compose.yaml"])["services"]["worker"]
    assert worker["command"][-1] == "echo $$HOME ${QUEUE_TOKEN} 50%; exec sleep infinity"
    assert "QUEUE_TOKEN=" in files[".env.example"]
