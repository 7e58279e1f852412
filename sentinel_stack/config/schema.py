"""The typed schema of `sentinel-stack.toml`.

Every table forbids unknown keys, so a typo is an error with a suggestion rather than a
silently ignored setting. Built-in components (`[proxy]`, `[probe]`, `[detector]`) run
when their table is present and `enabled` is not false.
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from sentinel_stack.config.durations import Duration

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
RestartMode = Literal["always", "on-failure", "never"]


def _split_command(value: object) -> object:
    # A string command is split like a shell would, but never run through one.
    return shlex.split(value) if isinstance(value, str) else value


Command = Annotated[list[str], BeforeValidator(_split_command)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StackSection(Model):
    """`[stack]`: identity and run-wide settings."""

    name: str = "default"
    run_dir: str | None = None
    shutdown_timeout: Duration = 10.0
    log_max_bytes: int = Field(10 * 1024 * 1024, ge=4096)
    log_backups: int = Field(3, ge=0)
    log_ring_lines: int = Field(2000, ge=10)
    cgroup: bool = True

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("use lowercase letters, digits, '-' and '_', starting with a letter")
        return value


class Backoff(Model):
    """Delay between restarts: ``initial * multiplier**n``, capped at ``max``, ± ``jitter``."""

    initial: Duration = 0.25
    max: Duration = 30.0
    multiplier: float = Field(2.0, ge=1.0)
    jitter: float = Field(0.2, ge=0.0, le=1.0)


class Readiness(Model):
    """How the supervisor knows a child is ready. At most one check; none means "spawned"."""

    notify: bool = False
    tcp: str | None = None
    unix: str | None = None
    http: str | None = None
    exec: Command | None = None
    timeout: Duration = 10.0
    interval: Duration = 0.02

    @model_validator(mode="after")
    def _one_check(self) -> Readiness:
        chosen = [k for k in ("tcp", "unix", "http", "exec") if getattr(self, k) is not None]
        if self.notify:
            chosen.insert(0, "notify")
        if len(chosen) > 1:
            raise ValueError(f"choose one readiness check, not {' and '.join(chosen)}")
        return self

    @property
    def kind(self) -> str:
        if self.notify:
            return "notify"
        for key in ("tcp", "unix", "http", "exec"):
            if getattr(self, key) is not None:
                return key
        return "none"


class Supervised(Model):
    """What the supervisor needs to run, restart and stop any child."""

    enabled: bool = True
    args: list[str] = []
    env: dict[str, str] = {}
    cwd: str | None = None
    depends_on: list[str] = []
    restart_policy: RestartMode = "on-failure"
    backoff: Backoff = Backoff()
    stable_after: Duration = 10.0
    max_restarts: int = Field(5, ge=0)
    restart_window: Duration = 60.0
    readiness: Readiness = Readiness()
    stop_signal: str = "SIGTERM"
    stop_timeout: Duration | None = None
    watchdog: Duration | None = None
    critical: bool = False
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = []

    @field_validator("stop_signal")
    @classmethod
    def _known_signal(cls, value: str) -> str:
        import signal

        name = value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()
        if not hasattr(signal.Signals, name):
            raise ValueError(f"unknown signal {value!r}; use e.g. SIGTERM, SIGINT or SIGQUIT")
        return name


class ProcessConfig(Supervised):
    """`[processes.NAME]`: any program (the demo upstream, your own services)."""

    command: Command

    @field_validator("command")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("command is empty; give the program and its arguments")
        return value


class BreakerSettings(Model):
    """Circuit breaker: open after ``failures`` in a row, probe again after ``recovery``."""

    failures: int = Field(5, ge=1)
    recovery: Duration = 5.0
    half_open_probes: int = Field(1, ge=1)


class AgentConfig(ProcessConfig):
    """`[agents.NAME]`: a security agent; the launcher binds its socket and hands it over.

    The pipeline settings say how the proxy consults it: a decision must arrive within
    ``timeout``; when it does not (or the agent is down, or its breaker is open) the
    request is let through (``failure_mode = "open"``) or refused with 503 ("closed").
    """

    readiness: Readiness = Readiness(notify=True)
    socket: str | None = None
    socket_activation: bool = True
    config: dict[str, object] = {}
    timeout: Duration = 0.25
    failure_mode: Literal["open", "closed"] = "open"
    max_concurrency: int = Field(256, ge=1)
    breaker: BreakerSettings = BreakerSettings()


class Component(Supervised):
    """A built-in component; `command` overrides the bundled program."""

    command: Command | None = None


class TlsConfig(Model):
    """HTTPS listeners (HTTP/2 and HTTP/1.1 negotiated with ALPN)."""

    cert: str
    key: str
    listen: list[str] = ["127.0.0.1:8443"]


class ProxyLimits(Model):
    """What a client may send, and for how long it may take."""

    max_header_bytes: int = Field(32 * 1024, ge=1024)
    max_headers: int = Field(100, ge=1)
    max_uri_bytes: int = Field(8 * 1024, ge=256)
    max_body: int = Field(10 * 1024 * 1024, ge=0)
    request_timeout: Duration = 60.0
    read_timeout: Duration = 10.0
    keep_alive_timeout: Duration = 5.0


class ProxyConfig(Component):
    readiness: Readiness = Readiness(notify=True)
    critical: bool = True
    listen: list[str] = ["127.0.0.1:8080"]
    admin: str = "127.0.0.1:9090"
    workers: int = Field(1, ge=1, le=64)
    agents: list[str] = []
    tls: TlsConfig | None = None
    limits: ProxyLimits = ProxyLimits()
    trusted_proxies: list[str] = []
    retry_on_status: list[Annotated[int, Field(ge=500, le=599)]] = []
    upstream_breaker: BreakerSettings = BreakerSettings()

    @field_validator("admin")
    @classmethod
    def _admin_on_loopback(cls, value: str) -> str:
        import ipaddress

        host = value.rpartition(":")[0].strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"the admin listener must be on loopback (127.0.0.1 or [::1]), not {value!r}"
            )
        return value


class HealthCheck(Model):
    kind: Literal["http", "tcp", "none"] = "tcp"
    path: str = "/"
    interval: Duration = 5.0
    timeout: Duration = 1.0
    healthy_threshold: int = Field(2, ge=1)
    unhealthy_threshold: int = Field(3, ge=1)


class UpstreamConfig(Model):
    """`[upstreams.NAME]`: where the proxy sends a route's traffic."""

    targets: list[str] = Field(min_length=1)
    balance: Literal["round_robin", "least_connections", "p2c"] = "round_robin"
    process: str | None = None
    health_check: HealthCheck = HealthCheck()
    connect_timeout: Duration = 2.0
    read_timeout: Duration = 30.0
    total_timeout: Duration = 60.0
    retries: int = Field(1, ge=0, le=10)
    allowed_destinations: list[str] = []


class RouteConfig(Model):
    """`[[routes]]`: match a request, pick an upstream and the agents to consult."""

    id: str
    upstream: str
    host: str | None = None
    path: str | None = None
    path_prefix: str | None = None
    path_regex: str | None = None
    methods: list[str] = []
    headers: dict[str, str] = {}
    priority: int = 0
    agents: list[str] | None = None
    failure_mode: Literal["open", "closed"] | None = None
    inspect_body: bool = False
    max_body: int = Field(1024 * 1024, ge=0)


class ProbeConfig(Component):
    readiness: Readiness = Readiness(notify=True)
    scope: Literal["stack", "host"] = "stack"
    backend: Literal["auto", "bpftrace", "procfs"] = "auto"
    sensitive_paths: list[str] = []
    watch_paths: list[str] = []


AlertSeverity = Literal["info", "low", "medium", "high", "critical"]


class AlertFileConfig(Model):
    """`[detector.alert_file]`: every alert as a JSON line, rotated by size."""

    enabled: bool = True
    path: str | None = None  # default: <detector state dir>/alerts.jsonl (statedir.py)
    max_bytes: int = Field(10 * 1024 * 1024, ge=4096)
    backups: int = Field(3, ge=0)
    min_severity: AlertSeverity = "info"


class WebhookConfig(Model):
    """`[[detector.webhooks]]`: alerts POSTed as Slack, PagerDuty Events v2 or plain JSON.
    ``url`` and ``routing_key`` are secrets: write them as ``${ENV_VAR}``."""

    name: str = "webhook"
    format: Literal["slack", "pagerduty", "json"] = "json"
    url: SecretStr | None = None  # pagerduty: defaults to the Events v2 enqueue URL
    routing_key: SecretStr | None = None
    min_severity: AlertSeverity = "high"
    timeout: Duration = 5.0
    retries: int = Field(5, ge=0, le=20)
    backoff: Duration = 1.0
    max_backoff: Duration = 60.0
    queue: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _complete(self) -> WebhookConfig:
        if self.format == "pagerduty" and self.routing_key is None:
            raise ValueError('a pagerduty webhook needs routing_key = "${PAGERDUTY_ROUTING_KEY}"')
        if self.format != "pagerduty" and self.url is None:
            raise ValueError(f'a {self.format} webhook needs url = "${{WEBHOOK_URL}}"')
        return self


class RemediationConfig(Model):
    """`[detector.remediation]`: a Rego policy picks actions for alerts. Off by default."""

    enabled: bool = False
    policy: str = "configs/policies/remediation.rego"
    dry_run: bool = False
    denylist_agent: str = "denylist"
    max_ttl: Duration = 86400.0


class DetectorConfig(Component):
    readiness: Readiness = Readiness(notify=True)
    rules_dir: str = "configs/rules"
    # Where upstreams may connect besides their own `allowed_destinations` (upstream_ssrf):
    # "10.0.0.5:5432", "10.0.0.0/8", "*:443", "[::1]:6379", "localhost:6379-6380".
    allowed_egress: list[str] = []
    # Repeats of one alert within this window fold into one alert with a count; beyond
    # `rate_limit` alerts per rule per minute the rest are held back and reported as a count.
    dedup_window: Duration = 60.0
    rate_limit: int = Field(60, ge=1)
    # Baselines: learn this long (time the detector runs) before raising anomaly alerts;
    # 0 learns nothing live and uses `baseline_file` as it is (`sentinel-stack baseline learn`).
    baseline_window: Duration = 3600.0
    baseline_file: str | None = None  # default: <detector state dir>/baseline.json
    alert_file: AlertFileConfig = AlertFileConfig()
    webhooks: list[WebhookConfig] = []
    remediation: RemediationConfig = RemediationConfig()

    @field_validator("allowed_egress")
    @classmethod
    def _egress_entries(cls, value: list[str]) -> list[str]:
        from sentinel_stack.detect.context import parse_egress  # the detector's own parser

        for entry in value:
            parse_egress(entry)
        return value


class PolicyConfig(Model):
    dir: str = "configs/policies"


class AuditConfig(Model):
    """`[audit]`: the hash-chained audit log the launcher writes (docs/audit.md)."""

    enabled: bool = True
    dir: str | None = None
    key_file: str | None = None
    checkpoint_records: int = Field(1000, ge=1)
    checkpoint_interval: Duration = 60.0
    max_file_bytes: int = Field(16 * 1024 * 1024, ge=4096)
    queue: int = Field(10_000, ge=16)


class TuiConfig(Model):
    enabled: bool = True
    refresh_hz: float = Field(10.0, gt=0, le=60)


class StackConfig(Model):
    """The whole file."""

    stack: StackSection = StackSection()
    processes: dict[str, ProcessConfig] = {}
    agents: dict[str, AgentConfig] = {}
    proxy: ProxyConfig | None = None
    upstreams: dict[str, UpstreamConfig] = {}
    routes: list[RouteConfig] = []
    probe: ProbeConfig | None = None
    detector: DetectorConfig | None = None
    policy: PolicyConfig = PolicyConfig()
    audit: AuditConfig = AuditConfig()
    tui: TuiConfig = TuiConfig()
