"""Who may talk to the stack's pods, and to whom they may talk: Service and NetworkPolicies.

The stack pod accepts clients on the proxy's listeners only (the admin listener is loopback,
inside the pod) and may reach DNS and the upstream targets outside the pod (loopback
targets are in the pod already). An upstream named by host name can only be allowed by
port: NetworkPolicy has no host names. The probe pod needs no network at all, unless its
detector posts alerts to webhooks: their URLs are secrets (never exported), so the pods
with a detector may then reach DNS and any address on port 443 (another port: a patch).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sentinel_stack.export.containers import listeners
from sentinel_stack.export.deployment import Deployment

__all__ = ["labels", "network_policies", "proxy_service"]


def labels(deployment: Deployment, component: str) -> dict[str, str]:
    """The labels of every object of one stack component (selectors use all three)."""
    return {
        "app.kubernetes.io/name": "sentinel-stack",
        "app.kubernetes.io/instance": deployment.stack,
        "app.kubernetes.io/component": component,
    }


def proxy_service(deployment: Deployment) -> dict[str, Any] | None:
    found = listeners(deployment)
    if not found:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"{deployment.base_name}-proxy",
            "labels": labels(deployment, "stack"),
        },
        "spec": {
            "type": "ClusterIP",
            "selector": labels(deployment, "stack"),
            "ports": [
                {"name": f"listen-{i}", "port": item.port, "targetPort": f"listen-{i}"}
                for i, item in enumerate(found)
            ],
        },
    }


def network_policies(deployment: Deployment) -> dict[str, dict[str, Any]]:
    policies: dict[str, dict[str, Any]] = {}
    if any(child.kind != "probe" for child in deployment.children):
        ports = sorted({item.port for item in listeners(deployment)})
        opened = [{"protocol": "TCP", "port": port} for port in ports]
        ingress = [{"ports": opened}] if opened else []
        egress = [_dns(), *_upstream_egress(deployment), *_webhook_egress(deployment)]
        policies["stack"] = _policy(deployment, "stack", ingress, egress)
    for child in deployment.children:
        if child.kind == "probe":  # reads the kernel; its detector may post webhooks
            webhooks = _webhook_egress(deployment)
            policies[child.name] = _policy(
                deployment, child.name, [], [_dns(), *webhooks] if webhooks else []
            )
    return policies


def _webhook_egress(deployment: Deployment) -> list[dict[str, Any]]:
    detector = deployment.config.detector
    if deployment.detector is None or detector is None or not detector.webhooks:
        return []
    return [{"ports": [{"protocol": "TCP", "port": 443}]}]


def _policy(
    deployment: Deployment, component: str, ingress: list[Any], egress: list[Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{deployment.base_name}-{component}",
            "labels": labels(deployment, component),
        },
        "spec": {
            "podSelector": {"matchLabels": labels(deployment, component)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def _dns() -> dict[str, Any]:
    return {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def _upstream_egress(deployment: Deployment) -> list[dict[str, Any]]:
    by_address: dict[tuple[str, int], None] = {}
    for upstream in deployment.config.upstreams.values():
        for target in upstream.targets:
            raw_host, _, port = target.rpartition(":")
            host = raw_host.strip("[]")
            address = _ip(host)
            if host == "localhost" or (address is not None and address.is_loopback):
                continue  # in the pod
            by_address[(host, int(port))] = None
    rules = []
    for name, number in by_address:
        rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": number}]}
        ip = _ip(name)
        if ip is not None:
            rule = {"to": [{"ipBlock": {"cidr": f"{ip}/{ip.max_prefixlen}"}}], **rule}
        rules.append(rule)
    return rules


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
