"""Kubernetes output: every manifest validates (strict) against the Kubernetes schemas that
kubernetes-validate ships (offline), the kustomization lists them all (and renders with
`kubectl kustomize` where kubectl exists), and the pod is wired as the stack needs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sentinel_stack.export.deployment import prepare
from sentinel_stack.export.kubernetes import export_kubernetes
from tests.export.exports import CONFIGS, config_text, export, run, write

# Native sidecars (init containers with restartPolicy: Always) are stable from 1.29 (beta
# and on by default from 1.29; GA in 1.33); validate against the oldest version they need.
KUBERNETES = "1.29"
KUBECTL = shutil.which("kubectl")


def manifests(config: str) -> dict[str, dict[str, Any]]:
    files = export("kubernetes", config)
    return {path: yaml.safe_load(text) for path, text in files.items() if path.endswith(".yaml")}


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    for item in [*pod.get("initContainers", []), *pod["containers"]]:
        if item["name"] == name:
            return item  # type: ignore[no-any-return]
    raise KeyError(name)


@pytest.mark.parametrize("config", CONFIGS)
def test_manifests_validate_against_the_kubernetes_schemas(config: str) -> None:
    documents = manifests(config)
    kustomization = documents.pop("kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(documents)
    for path, document in documents.items():
        try:
            kubernetes_validate.validate(document, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path}: {error.message} at {list(error.absolute_path)}")


def test_strict_validation_does_reject_a_broken_manifest() -> None:
    deployment = manifests("default")["deployment.yaml"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl missing (it carries kustomize)")
def test_kustomization_renders(tmp_path: Path) -> None:
    out = write(export("kubernetes", "full"), tmp_path)
    result = run(KUBECTL, "kustomize", str(out))  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(result.stdout)]
    assert sorted(kinds) == sorted(
        ["ConfigMap"] * 3
        + ["DaemonSet", "Deployment", "NetworkPolicy", "NetworkPolicy"]
        + ["PodDisruptionBudget", "Service"]
    )


def test_agents_are_sidecars_sharing_an_empty_dir_socket_volume() -> None:
    pod = manifests("full")["deployment.yaml"]["spec"]["template"]["spec"]
    sidecars = [c["name"] for c in pod["initContainers"]]
    # start order: the detector serves the event hub the others write to
    assert sidecars == ["detector", "demo", "denylist", "ratelimit", "waf", "policy"]
    assert all(c["restartPolicy"] == "Always" for c in pod["initContainers"])
    assert [c["name"] for c in pod["containers"]] == ["proxy"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["sockets"]
    for name in (*sidecars, "proxy"):
        mounts = {m["name"]: m["mountPath"] for m in container(pod, name)["volumeMounts"]}
        assert mounts["sockets"] == "/run/sentinel-stack/default/agents"
        assert container(pod, name)["resources"]["limits"]["memory"]


def test_proxy_probes_hit_the_admin_endpoints() -> None:
    pod = manifests("full")["deployment.yaml"]["spec"]["template"]["spec"]
    proxy = container(pod, "proxy")
    assert proxy["readinessProbe"]["exec"]["command"][-1] == "http://127.0.0.1:9090/ready"
    assert proxy["livenessProbe"]["exec"]["command"][-1] == "http://127.0.0.1:9090/health"
    assert proxy["startupProbe"]["exec"]["command"][-1] == "http://127.0.0.1:9090/ready"
    assert proxy["ports"] == [{"name": "listen-0", "containerPort": 8080, "protocol": "TCP"}]


def test_probe_is_a_privileged_daemonset() -> None:
    daemonset = manifests("edge")["daemonset-probe.yaml"]
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    probe = pod["containers"][0]
    assert probe["securityContext"]["privileged"] is True
    assert probe["volumeMounts"] == [
        {"name": "sys", "mountPath": "/sys", "readOnly": True},
        {"name": "run", "mountPath": "/run/sentinel-stack/edge"},
    ]


def test_detectors_serve_the_event_hub_in_the_stack_pod_and_beside_the_probe() -> None:
    documents = manifests("edge")
    hub = "/run/sentinel-stack/edge/events.sock"
    for document, writers in (
        (documents["deployment.yaml"], ("proxy", "denylist", "custom")),
        (documents["daemonset-probe.yaml"], ("probe",)),
    ):
        pod = document["spec"]["template"]["spec"]
        detector = pod["initContainers"][0]  # first: the others write to it
        assert detector["name"] == "detector" and detector["restartPolicy"] == "Always"
        assert detector["command"][-2:] == ["--serve-events", hub]
        assert detector["livenessProbe"]["exec"]["command"][-2:] == ["unix", hub]
        assert "readinessProbe" not in detector  # detection never takes the pod out of service
        # ... nor gates the proxy's start; the probe (feeding only it) waits for the hub.
        gated = writers == ("probe",)
        assert ("startupProbe" in detector) is gated, writers
        assert detector["securityContext"]["readOnlyRootFilesystem"] is True
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes["run"]  # the hub's socket lives in `run`
        for name in writers:
            env = {e["name"]: e.get("value") for e in container(pod, name)["env"]}
            assert env["SENTINEL_EVENTS_SOCKET"] == hub, name
            mounts = {m["name"]: m["mountPath"] for m in container(pod, name)["volumeMounts"]}
            assert mounts["run"] == "/run/sentinel-stack/edge", name
        env = {e["name"] for e in detector["env"]}
        assert "SENTINEL_EVENTS_SOCKET" not in env  # it serves the hub, it writes to no one
    node_detector = documents["daemonset-probe.yaml"]["spec"]["template"]["spec"]
    assert node_detector["initContainers"][0]["securityContext"]["runAsNonRoot"] is True


def test_config_policies_and_rules_are_config_maps_projected_into_the_config_dir() -> None:
    documents = manifests("full")
    assert "sentinel-stack.toml" in documents["configmap-config.yaml"]["data"]
    assert "configs__policies__example__authz.rego" in documents["configmap-policies.yaml"]["data"]
    assert "configs__rules__example.toml" in documents["configmap-rules.yaml"]["data"]
    pod = documents["deployment.yaml"]["spec"]["template"]["spec"]
    (config,) = [v for v in pod["volumes"] if v["name"] == "config"]
    paths = [i["path"] for s in config["projected"]["sources"] for i in s["configMap"]["items"]]
    assert paths == [
        "sentinel-stack.toml",
        "configs/policies/example/authz.rego",
        "configs/rules/example.toml",
    ]


def test_secrets_are_referenced_not_inlined() -> None:
    files = export("kubernetes", "edge")
    assert not any("s3cr3t" in text for text in files.values())
    pod = yaml.safe_load(files["deployment.yaml"])["spec"]["template"]["spec"]
    env = {e["name"]: e for e in container(pod, "app")["env"]}
    assert env["API_TOKEN"] == {
        "name": "API_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "sentinel-edge-env", "key": "API_TOKEN"}},
    }
    assert env["LOG_LEVEL"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "$(QUEUE_TOKEN)" in container(pod, "worker")["command"][-1]
    assert "API_TOKEN=" in files["secret.env.example"]


def test_disruption_budget_and_network_policy() -> None:
    documents = manifests("edge")
    assert documents["poddisruptionbudget.yaml"]["spec"]["maxUnavailable"] == 1
    stack = documents["networkpolicy-stack.yaml"]["spec"]
    assert [p["port"] for p in stack["ingress"][0]["ports"]] == [80, 8443]
    egress = stack["egress"]
    assert {
        "to": [{"ipBlock": {"cidr": "10.0.0.7/32"}}],
        "ports": [{"protocol": "TCP", "port": 8080}],
    } in egress
    assert {"ports": [{"protocol": "TCP", "port": 443}]} in egress  # a host name: port only
    probe = documents["networkpolicy-probe.yaml"]["spec"]
    assert probe["ingress"] == [] and probe["egress"] == []  # no webhooks: no traffic


def test_webhooks_open_https_egress_for_the_detectors() -> None:
    text = config_text("edge") + '\n[[detector.webhooks]]\nname = "ops"\nurl = "${OPS_HOOK}"\n'
    files = export_kubernetes(prepare(text, "edge.toml"))
    for name in ("stack", "probe"):
        egress = yaml.safe_load(files[f"networkpolicy-{name}.yaml"])["spec"]["egress"]
        assert {"ports": [{"protocol": "TCP", "port": 443}]} in egress, name
