"""One admin view over N workers: their metrics and status merged (pure, no I/O).

Each worker keeps its own Prometheus registry, breakers, health checks and agent links;
the parent gets `Family` snapshots and status dicts from them and merges:

- counters and histograms add up (their ``_created`` timestamps take the earliest);
- gauges follow `GAUGE_MERGE`: a breaker is as open as its most open copy, an upstream has
  as many targets available as its worst-off worker sees, anything else adds up;
- a worker that exits leaves its last counters in `retired`, so totals never go backwards
  across restarts (what it counted after its last snapshot is lost: at most a second's
  worth when it is killed, nothing when it drains, as it sends a final snapshot).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from sentinel_stack.proxy.workerwire import Family, Sample

Merge = Callable[[float, float], float]


def _sum(a: float, b: float) -> float:
    return a + b


GAUGE_MERGE: Mapping[str, Merge] = {
    "sentinel_proxy_upstream_breaker_state": max,
    "sentinel_proxy_agent_breaker_state": max,
    "sentinel_proxy_upstream_targets_available": min,
}
BREAKER_ORDER = {"closed": 0, "half_open": 1, "open": 2}


def families_of(registry: CollectorRegistry) -> list[Family]:
    return [
        Family(
            metric.name,
            metric.type,
            metric.documentation,
            [Sample(s.name, dict(s.labels), float(s.value)) for s in metric.samples],
        )
        for metric in registry.collect()
    ]


def _merge_rule(family: Family, sample: Sample) -> Merge:
    if sample.name.endswith("_created"):
        return min
    if family.type == "gauge":
        return GAUGE_MERGE.get(family.name, _sum)
    return _sum


def merge_families(snapshots: Iterable[Sequence[Family]]) -> list[Family]:
    """The families of all snapshots as one: samples with equal name and labels merged."""
    heads: dict[str, Family] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for snapshot in snapshots:
        for family in snapshot:
            heads.setdefault(family.name, family)
            merged = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key in merged:
                    merged[key] = _merge_rule(family, sample)(merged[key], sample.value)
                else:
                    merged[key] = sample.value
    return [
        Family(
            name,
            head.type,
            head.help,
            [Sample(n, dict(labels), value) for (n, labels), value in values[name].items()],
        )
        for name, head in heads.items()
    ]


def retire(retired: Sequence[Family], last: Sequence[Family]) -> list[Family]:
    """Add an exited worker's last counters and histograms to what earlier ones left."""
    return merge_families([retired, [f for f in last if f.type != "gauge"]])


def total(families: Iterable[Family], sample_name: str) -> float:
    """The sum of one sample over all its labels, e.g. requests answered."""
    return sum(s.value for f in families for s in f.samples if s.name == sample_name)


class _Fixed:
    """A collector that yields given families (for `generate_latest`)."""

    def __init__(self, families: Sequence[Family]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        for family in self.families:
            metric = Metric(family.name, family.help, family.type)
            for sample in family.samples:
                metric.add_sample(sample.name, sample.labels, sample.value)
            yield metric


def render(families: Sequence[Family]) -> bytes:
    """Prometheus text exposition of the families."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry)


def _worst_breaker(states: Iterable[str]) -> str:
    return max(states, key=lambda s: BREAKER_ORDER.get(s, 0), default="closed")


def _merge_targets(copies: Sequence[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    by_target: dict[str, list[Mapping[str, Any]]] = {}
    for targets in copies:
        for target in targets:
            by_target.setdefault(str(target["target"]), []).append(target)
    merged = []
    for name, seen in by_target.items():
        health = {str(t["health"]) for t in seen}
        merged.append(
            {
                "target": name,
                "scheme": seen[0].get("scheme", "http"),
                "available": all(t["available"] for t in seen),
                "health": health.pop() if len(health) == 1 else "mixed",
                "breaker": _worst_breaker(str(t["breaker"]) for t in seen),
                "in_flight": sum(int(t["in_flight"]) for t in seen),
            }
        )
    return merged


def merge_status(statuses: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Upstreams, agents and access-log counts over workers, in a single proxy's shape.

    A target is available when every worker may use it, its breaker is the most open copy
    and in-flight counts add up; an agent is connected when every worker's link is.
    """
    upstreams: dict[str, list[Mapping[str, Any]]] = {}
    agents: dict[str, list[Mapping[str, Any]]] = {}
    for status in statuses:
        for name, group in status.get("upstreams", {}).items():
            upstreams.setdefault(name, []).append(group)
        for name, link in status.get("agents", {}).items():
            agents.setdefault(name, []).append(link)
    return {
        "upstreams": {
            name: {
                "balance": groups[0].get("balance", ""),
                "targets": _merge_targets([g.get("targets", []) for g in groups]),
            }
            for name, groups in upstreams.items()
        },
        "agents": {
            name: {
                **links[0],
                "connected": all(link["connected"] for link in links),
                "breaker": _worst_breaker(str(link["breaker"]) for link in links),
                "connects": sum(int(link["connects"]) for link in links),
                "last_error": next((x["last_error"] for x in links if x["last_error"]), ""),
            }
            for name, links in agents.items()
        },
        "access_log": {
            key: sum(int(s.get("access_log", {}).get(key, 0)) for s in statuses)
            for key in ("sent", "dropped")
        },
    }
