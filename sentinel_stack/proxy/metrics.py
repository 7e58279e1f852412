"""The proxy's Prometheus metrics (served on the admin listener's /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
AGENT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class ProxyMetrics:
    """One registry per proxy process; label values are route/upstream/agent names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sentinel_proxy_requests", "Requests answered", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "sentinel_proxy_request_duration_seconds",
            "Time from request headers to the end of the response",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "sentinel_proxy_upstream_duration_seconds",
            "Time to upstream response headers",
            ["upstream"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_failures = Counter(
            "sentinel_proxy_upstream_failures",
            "Upstream attempts that failed",
            ["upstream", "kind"],
            registry=r,
        )
        self.upstream_breaker = Gauge(
            "sentinel_proxy_upstream_breaker_state",
            "0 closed, 1 half-open, 2 open",
            ["upstream", "target"],
            registry=r,
        )
        self.upstream_available = Gauge(
            "sentinel_proxy_upstream_targets_available",
            "Targets healthy and not ejected",
            ["upstream"],
            registry=r,
        )
        self.agent_latency = Histogram(
            "sentinel_proxy_agent_duration_seconds",
            "Agent round trip per request",
            ["agent"],
            buckets=AGENT_BUCKETS,
            registry=r,
        )
        self.agent_failures = Counter(
            "sentinel_proxy_agent_failures",
            "Agent consultations that failed",
            ["agent", "kind"],
            registry=r,
        )
        self.agent_breaker = Gauge(
            "sentinel_proxy_agent_breaker_state",
            "0 closed, 1 half-open, 2 open",
            ["agent"],
            registry=r,
        )
        self.blocked = Counter(
            "sentinel_proxy_blocked",
            "Requests refused by an agent",
            ["agent", "reason"],
            registry=r,
        )
        self.rejected = Counter(
            "sentinel_proxy_rejected",
            "Requests refused by the proxy's own limits",
            ["reason"],
            registry=r,
        )
        self.records_dropped = Gauge(
            "sentinel_proxy_access_records_dropped",
            "Access records dropped under back-pressure",
            registry=r,
        )
