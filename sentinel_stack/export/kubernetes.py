"""The stack as Kubernetes manifests and a kustomization (`kubectl apply -k DIR`).

One pod is the stack's one machine: the proxy is the main container; the children it
depends on (agents, upstream processes) are native sidecars (init containers with
``restartPolicy: Always``), started in dependency order, each once its startup probe
passes, sharing ``emptyDir`` volumes for the run directory and the agent sockets. Probes
run the `healthcheck` module inside the pod (the admin listener is loopback only). The
eBPF probe is a privileged DaemonSet in the host's pid namespace. Config, policies and
rules are ConfigMaps projected into the config directory; values the operator supplies
come from the Secret ``<stack>-env`` by reference, never inlined.

Detection without the launcher: the detector serves the event hub itself, twice. In the
stack pod it is the first native sidecar (without a startup probe: detection gates nothing
on the data path), serving ``<run-dir>/events.sock`` on the ``run`` emptyDir for the proxy
and the agents (access records, agent findings). The probe's
DaemonSet pod cannot reach a pod's emptyDir, so it gets its own detector (a native sidecar
serving the same path on the DaemonSet pod's own emptyDir) for the node's kernel events.
Simple and without hostPath volumes in the stack pods; the price: no rule or threat chain
joins an access record with a kernel event (docs/deploy.md).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sentinel_stack.export.containers import (
    RESOURCES,
    container_argv,
    container_config_text,
    listeners,
    stop_grace,
)
from sentinel_stack.export.deployment import (
    CONFIG_FILE,
    Deployment,
    ExportedChild,
    ExportError,
    HealthCheck,
)
from sentinel_stack.export.k8s_network import labels, network_policies, proxy_service
from sentinel_stack.export.yamltext import dump_yaml

__all__ = ["export_kubernetes"]

RUN_AS = 65532  # an unprivileged uid/gid with no name in the image
CHECKSUM_ANNOTATION = "sentinel-stack/config-sha256"
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def export_kubernetes(deployment: Deployment) -> dict[str, str]:
    configmaps = _configmaps(deployment)
    resources: dict[str, Any] = {
        f"configmap-{name}.yaml": document for name, document in configmaps.items()
    }
    checksum = hashlib.sha256(
        "\0".join(dump_yaml(c) for c in configmaps.values()).encode()
    ).hexdigest()
    stack_children = [c for c in deployment.children if c.kind != "probe"]
    if stack_children:
        resources["deployment.yaml"] = _stack_deployment(deployment, stack_children, checksum)
        resources["poddisruptionbudget.yaml"] = {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _metadata(deployment, deployment.base_name, "stack"),
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": labels(deployment, "stack")},
            },
        }
        if (service := proxy_service(deployment)) is not None:
            resources["service.yaml"] = service
    for child in deployment.children:
        if child.kind == "probe":
            resources[f"daemonset-{child.name}.yaml"] = _probe_daemonset(
                deployment, child, checksum
            )
    for name, policy in network_policies(deployment).items():
        resources[f"networkpolicy-{name}.yaml"] = policy
    files = {path: dump_yaml(document) for path, document in resources.items()}
    files["kustomization.yaml"] = dump_yaml(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": sorted(resources),
        }
    )
    secrets = deployment.supplied_variables()
    if secrets:
        files["secret.env.example"] = _secret_example(deployment, secrets)
    return files


# ---- the stack's pod ------------------------------------------------------------------------


def _stack_deployment(
    deployment: Deployment, children: list[ExportedChild], checksum: str
) -> dict[str, Any]:
    needed = {dep for child in children for dep in child.spec.depends_on}
    sidecars = [_container(deployment, c, sidecar=True) for c in children if c.name in needed]
    mains = [_container(deployment, c, sidecar=False) for c in children if c.name not in needed]
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": max(stop_grace(c) for c in children),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if any(port < 1024 for child in children for port in child.spec.ports):
        # Unprivileged binding of low ports without granting a capability (a safe sysctl).
        pod["securityContext"]["sysctls"] = [
            {"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}
        ]
    if sidecars:
        pod["initContainers"] = sidecars
    pod["containers"] = mains
    pod["volumes"] = [
        _config_volume(deployment),
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "sockets", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(deployment, deployment.base_name, "stack"),
        "spec": {
            "replicas": deployment.options.replicas,
            "selector": {"matchLabels": labels(deployment, "stack")},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": labels(deployment, "stack"),
                    # A config change rolls the pods (a ConfigMap update alone does not).
                    "annotations": {CHECKSUM_ANNOTATION: checksum},
                },
                "spec": pod,
            },
        },
    }


def _container(deployment: Deployment, child: ExportedChild, *, sidecar: bool) -> dict[str, Any]:
    container = _base_container(deployment, child)
    if sidecar:
        container["restartPolicy"] = "Always"
    if child.kind == "proxy":
        container["ports"] = [
            {"name": f"listen-{i}", "containerPort": item.port, "protocol": "TCP"}
            for i, item in enumerate(listeners(deployment))
        ]
    container["securityContext"] = dict(_CONTAINER_SECURITY)
    container["volumeMounts"] = [
        {"name": "config", "mountPath": deployment.config_dir, "readOnly": True},
        {"name": "run", "mountPath": deployment.run_dir},
        {"name": "sockets", "mountPath": deployment.agents_dir},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    check = deployment.health_check(child)
    if check is not None:
        # Detection is never on the data path: the stack pod's detector gates nothing (a
        # broken rule file must not keep the proxy from starting, nor take the pod out of
        # the Service); it starts first and is up long before the proxy writes to it.
        if child.kind != "detector":
            container["startupProbe"] = _startup_probe(deployment, child, check)
            container["readinessProbe"] = _probe(deployment, check, period=10, failures=3)
        liveness = check
        if child.kind == "proxy" and deployment.config.proxy is not None:
            liveness = HealthCheck("http", (f"http://{deployment.config.proxy.admin}/health",))
        container["livenessProbe"] = _probe(deployment, liveness, period=20, failures=3)
    return container


def _base_container(deployment: Deployment, child: ExportedChild) -> dict[str, Any]:
    requests, limits = RESOURCES.get(child.kind, RESOURCES["process"])
    env: list[dict[str, Any]] = [
        {"name": key, "value": _literal(value)} for key, value in child.spec.env.items()
    ]
    for key in child.supplied:
        reference: dict[str, Any] = {"name": f"{deployment.base_name}-env", "key": key}
        if key in child.optional:
            reference["optional"] = True
        env.append({"name": key, "valueFrom": {"secretKeyRef": reference}})
    return {
        "name": child.name,
        "image": deployment.options.image,
        "imagePullPolicy": "IfNotPresent",
        "command": [_expand(arg, child.supplied) for arg in container_argv(child)],
        "workingDir": child.spec.cwd or deployment.config_dir,
        "env": env,
        "resources": {"requests": dict(requests), "limits": dict(limits)},
    }


def _startup_probe(deployment: Deployment, child: ExportedChild, check: HealthCheck) -> Any:
    failures = int(child.spec.readiness.timeout) + 1
    return _probe(deployment, check, period=1, failures=failures)


def _probe(deployment: Deployment, check: HealthCheck, *, period: int, failures: int) -> Any:
    return {
        "exec": {"command": deployment.healthcheck_argv(check)},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _probe_daemonset(deployment: Deployment, child: ExportedChild, checksum: str) -> dict[str, Any]:
    container = _base_container(deployment, child)
    container["securityContext"] = {"privileged": True, "runAsUser": 0, "runAsNonRoot": False}
    container["volumeMounts"] = [{"name": "sys", "mountPath": "/sys", "readOnly": True}]
    name = f"{deployment.base_name}-{child.name}"
    pod: dict[str, Any] = {
        "hostPID": True,  # the kernel's events name host pids; lineage reads /proc
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": stop_grace(child),
        "tolerations": [{"operator": "Exists"}],
        "containers": [container],
        "volumes": [{"name": "sys", "hostPath": {"path": "/sys", "type": "Directory"}}],
    }
    template: dict[str, Any] = {"metadata": {"labels": labels(deployment, child.name)}}
    detector = deployment.detector
    if detector is not None:
        # The node's own detector: the probe cannot reach the stack pods' emptyDir.
        sidecar = _container(deployment, detector, sidecar=True)
        sidecar["securityContext"] = {
            **_CONTAINER_SECURITY,
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        sidecar["volumeMounts"] = [
            m for m in sidecar["volumeMounts"] if m["name"] in ("config", "run", "tmp")
        ]
        check = deployment.health_check(detector)
        if check is not None:  # the probe only feeds it: let it wait for the hub
            sidecar["startupProbe"] = _startup_probe(deployment, detector, check)
        containers = pod.pop("containers")
        pod.update(initContainers=[sidecar], containers=containers)  # in start order
        container["volumeMounts"].append({"name": "run", "mountPath": deployment.run_dir})
        pod["terminationGracePeriodSeconds"] = max(stop_grace(child), stop_grace(detector))
        pod["volumes"] += [
            _config_volume(deployment),
            {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ]
        template["metadata"]["annotations"] = {CHECKSUM_ANNOTATION: checksum}
    template["spec"] = pod
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _metadata(deployment, name, child.name),
        "spec": {"selector": {"matchLabels": labels(deployment, child.name)}, "template": template},
    }


# ---- config, policies, rules ----------------------------------------------------------------


def _config_files(deployment: Deployment) -> dict[str, dict[str, str]]:
    """Files by ConfigMap: ``config`` (the config file), then one per asset kind."""
    groups: dict[str, dict[str, str]] = {"config": {CONFIG_FILE: container_config_text(deployment)}}
    for asset in deployment.assets:
        if not asset.path.startswith("/"):
            groups.setdefault(asset.kind, {})[asset.path] = asset.text
    return groups


def _key(path: str) -> str:
    key = path.replace("/", "__")
    if not _CONFIG_KEY.match(key):
        raise ExportError(
            f"{path}: a ConfigMap key allows only letters, digits, '-', '_' and '.'; "
            "rename the file"
        )
    return key


def _configmaps(deployment: Deployment) -> dict[str, Any]:
    documents = {}
    for kind, files in _config_files(deployment).items():
        data = {_key(path): text for path, text in files.items()}
        if len(data) != len(files):
            raise ExportError(f"two {kind} files map to one ConfigMap key; rename one of them")
        documents[kind] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _metadata(deployment, f"{deployment.base_name}-{kind}", "stack"),
            "data": dict(sorted(data.items())),
        }
    return documents


def _config_volume(deployment: Deployment) -> dict[str, Any]:
    sources = []
    for kind, files in _config_files(deployment).items():
        items = [{"key": _key(path), "path": path} for path in sorted(files, key=_key)]
        sources.append({"configMap": {"name": f"{deployment.base_name}-{kind}", "items": items}})
    return {"name": "config", "projected": {"sources": sources}}


def _metadata(deployment: Deployment, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "labels": labels(deployment, component)}


def _secret_example(deployment: Deployment, secrets: dict[str, str | None]) -> str:
    lines = [
        f"# Keys of the Secret `{deployment.base_name}-env` the pods read (values never exported).",
        "# Fill in a copy, then:",
        f"#   kubectl create secret generic {deployment.base_name}-env --from-env-file=secret.env",
    ]
    lines += [f"{key}={default or ''}" for key, default in secrets.items()]
    return "\n".join(lines) + "\n"


# ---- $(VAR) ---------------------------------------------------------------------------------


def _expand(arg: str, supplied: tuple[str, ...]) -> str:
    """A ``${VAR}`` left by `prepare` becomes Kubernetes' ``$(VAR)`` (from the env, hence
    the Secret); any other ``$(`` is escaped so Kubernetes leaves it alone."""
    text = _literal(arg)
    for name in supplied:
        text = text.replace("${" + name + "}", f"$({name})")
    return text


def _literal(value: str) -> str:
    return value.replace("$(", "$$(")
