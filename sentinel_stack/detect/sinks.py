"""Alert sinks: a JSON-lines file rotated by size, and webhooks (Slack, PagerDuty, JSON).

Every sink has a bounded queue: `submit` never waits and never raises; what does not fit is
dropped and counted (`dropped`), so a slow disk or a dead receiver never slows detection.
A webhook retries a failed POST (no answer, 429 or 5xx) with exponential backoff and jitter,
honouring ``Retry-After``, up to ``retries`` times, then counts the alert as `failed`; other
4xx answers are not retried (the payload or the key is wrong, retrying cannot help).
Dedup and rate limiting happen before alerts reach the sinks (the rules engine's job).

The webhook URL and PagerDuty routing key are secrets, taken from the config (write them as
``${ENV_VAR}``; pydantic keeps them as `SecretStr`), and appear in no log line or error.
"""

from __future__ import annotations

import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import trio

from sentinel_stack.detect.alert import ALERT_ENCODER, Alert, severity_rank
from sentinel_stack.detect.pipeline import AlertSink, Components, PipelineContext
from sentinel_stack.detect.webhook_client import PostFailed, PostResult, post_json

__all__ = [
    "PAGERDUTY_URL",
    "JsonLinesSink",
    "WebhookSettings",
    "WebhookSink",
    "detector_components",
    "pagerduty_payload",
    "slack_payload",
]

log = logging.getLogger("sentinel_stack.detect.sinks")

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
# PagerDuty Events v2 knows four severities.
_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning"}
_SLACK_MARK = {"critical": ":red_circle:", "high": ":large_orange_circle:"}

Poster = Callable[[str, bytes], Awaitable[PostResult]]


# ---- the JSON-lines file ---------------------------------------------------------------------


class JsonLinesSink:
    """Appends each alert as one JSON line; at ``max_bytes`` the file becomes ``.1`` (and
    ``.1`` becomes ``.2``…, ``backups`` kept). Writes happen in a worker thread, in batches."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 3,
        min_severity: str = "info",
        capacity: int = 10_000,
    ) -> None:
        self.name = f"file:{path}"
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.min_rank = severity_rank(min_severity)
        self.written = 0
        self.dropped = 0
        self.errors = 0
        self._send, self._receive = trio.open_memory_channel[bytes](capacity)

    def submit(self, alert: Alert) -> None:
        if severity_rank(alert.severity) < self.min_rank:
            return
        try:
            self._send.send_nowait(ALERT_ENCODER.encode(alert) + b"\n")
        except trio.WouldBlock:
            self.dropped += 1

    async def run(self) -> None:
        while True:
            batch = [await self._receive.receive()]
            while True:
                try:
                    batch.append(self._receive.receive_nowait())
                except trio.WouldBlock:
                    break
            try:
                await trio.to_thread.run_sync(self.write, batch)
            except OSError as exc:
                self.errors += 1
                self.dropped += len(batch)
                log.warning("alert file %s: %s; %d alerts lost", self.path, exc, len(batch))

    def write(self, lines: list[bytes]) -> None:
        """Append ``lines`` (rotating first when the file is full). Blocking."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for line in lines:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                rotate(self.path, self.backups)
            with self.path.open("ab") as handle:
                handle.write(line)
            self.written += 1


def rotate(path: Path, backups: int) -> None:
    """``path`` → ``path.1`` → ``path.2``…; the oldest beyond ``backups`` is removed."""
    if backups <= 0:
        path.unlink(missing_ok=True)
        return
    path.with_name(f"{path.name}.{backups}").unlink(missing_ok=True)
    for n in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{n + 1}"))
    if path.exists():
        path.replace(path.with_name(f"{path.name}.1"))


# ---- webhook payloads ------------------------------------------------------------------------


def _slack_escape(text: str, limit: int) -> str:
    """Slack mrkdwn escaping (``&``, ``<``, ``>``); alert text carries attacker input."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_payload(alert: Alert, stack: str = "") -> dict[str, Any]:
    """An incoming-webhook message: ``text`` for notifications, ``blocks`` for the view."""
    level = alert.severity.upper()
    mark = _SLACK_MARK.get(alert.severity, ":large_yellow_circle:")
    where = f" on {stack}" if stack else ""
    facts = [
        ("Severity", level),
        ("Rule", alert.rule),
        ("Technique", alert.technique or "—"),
        ("Tactic", alert.tactic or "—"),
    ]
    if alert.client_ip:
        facts.append(("Client", alert.client_ip))
    if alert.request_id:
        facts.append(("Request", alert.request_id))
    if alert.process is not None:
        facts.append(("Process", f"{alert.process.comm}[{alert.process.pid}]"))
    if alert.count > 1:
        facts.append(("Repeats", str(alert.count)))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"{level}: {alert.rule}"[:150]},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _slack_escape(alert.summary, 2900)},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value, 200)}"}
                for name, value in facts[:10]
            ],
        },
    ]
    if alert.chain:
        steps = "\n".join(
            f"{n}. {_slack_escape(step.summary, 300)}"
            + (f" ({step.technique})" if step.technique else "")
            for n, step in enumerate(alert.chain[:12], start=1)
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": steps[:2900]}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"sentinel-stack{where} · alert {alert.id}"},
            ],
        }
    )
    text = f"{mark} [{level}] {alert.rule}{where}: {_slack_escape(alert.summary, 500)}"
    return {"text": text, "blocks": blocks}


def pagerduty_payload(alert: Alert, routing_key: str, source: str) -> dict[str, Any]:
    """An Events API v2 ``trigger``. A chain's updates share its ``dedup_key``, so they
    fold into one incident."""
    details: dict[str, Any] = {
        "rule": alert.rule,
        "alert_id": alert.id,
        "technique": alert.technique,
        "tags": alert.tags,
        "fields": alert.fields,
    }
    if alert.client_ip:
        details["client_ip"] = alert.client_ip
    if alert.request_id:
        details["request_id"] = alert.request_id
    if alert.process is not None:
        details["process"] = msgspec.to_builtins(alert.process)
    if alert.chain:
        details["chain"] = [msgspec.to_builtins(step) for step in alert.chain]
    if alert.count > 1:
        details["count"] = alert.count
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": (alert.chain_id or alert.id)[:255],
        "payload": {
            "summary": alert.summary[:1024] or alert.rule,
            "severity": _PD_SEVERITY.get(alert.severity, "info"),
            "source": source,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(alert.time)),
            "component": alert.source,
            "group": alert.tactic or "detection",
            "class": alert.rule,
            "custom_details": details,
        },
        "client": "sentinel-stack",
    }


# ---- webhooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSettings:
    name: str
    format: str  # slack | pagerduty | json
    url: str
    routing_key: str = ""
    min_severity: str = "high"
    timeout: float = 5.0
    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    queue: int = 1000
    source: str = ""  # PagerDuty's payload.source: this machine and stack

    def __repr__(self) -> str:  # the URL and key are secrets
        return f"WebhookSettings(name={self.name!r}, format={self.format!r})"


class WebhookSink:
    def __init__(self, settings: WebhookSettings, post: Poster = post_json) -> None:
        self.settings = settings
        self.name = f"webhook:{settings.name}"
        self.min_rank = severity_rank(settings.min_severity)
        self.post = post
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.retried = 0
        self._send, self._receive = trio.open_memory_channel[Alert](settings.queue)

    def submit(self, alert: Alert) -> None:
        if severity_rank(alert.severity) < self.min_rank:
            return
        try:
            self._send.send_nowait(alert)
        except trio.WouldBlock:
            self.dropped += 1

    def body(self, alert: Alert) -> bytes:
        s = self.settings
        if s.format == "slack":
            return msgspec.json.encode(slack_payload(alert, s.source))
        if s.format == "pagerduty":
            return msgspec.json.encode(pagerduty_payload(alert, s.routing_key, s.source))
        return ALERT_ENCODER.encode(alert)

    async def run(self) -> None:
        async for alert in self._receive:
            await self.deliver(alert)

    async def deliver(self, alert: Alert) -> bool:
        """POST one alert, retrying as the module docstring says; True when delivered."""
        s = self.settings
        body = self.body(alert)
        for attempt in range(s.retries + 1):
            wait: float | None = None
            result: PostResult | None = None
            problem = ""
            with trio.move_on_after(s.timeout):
                try:
                    result = await self.post(s.url, body)
                except PostFailed as exc:
                    problem = self._redact(str(exc))
            if result is None and not problem:
                problem = f"no answer within {s.timeout:g}s"
            if result is not None:
                if 200 <= result.status < 300:
                    self.sent += 1
                    return True
                problem = f"HTTP {result.status}"
                if result.status != 429 and 400 <= result.status < 500:
                    log.warning("%s refused alert %s: %s", self.name, alert.id, problem)
                    self.failed += 1
                    return False
                wait = result.retry_after
            if attempt == s.retries:
                break
            delay = min(s.max_backoff, s.backoff * 2**attempt) * random.uniform(0.5, 1.0)
            if wait is not None:
                delay = min(s.max_backoff, max(delay, wait))
            self.retried += 1
            log.info("%s: %s; retrying in %.1fs", self.name, problem, delay)
            await trio.sleep(delay)
        log.warning("%s: gave up on alert %s after %d attempts", self.name, alert.id, attempt + 1)
        self.failed += 1
        return False

    def _redact(self, text: str) -> str:
        for secret in (self.settings.url, self.settings.routing_key):
            if secret:
                text = text.replace(secret, "***")
        return text


# ---- the plug-in hook ------------------------------------------------------------------------


def detector_components(context: PipelineContext) -> Components:
    """The alert file (default ``<state-dir>/alerts.jsonl``) and the configured webhooks."""
    config = context.config.detector if context.config is not None else None
    if config is None:
        return Components()
    sinks: list[AlertSink] = []
    file = config.alert_file
    if file.enabled:
        path = alert_file_path(file.path, context)
        if path is not None:
            sinks.append(
                JsonLinesSink(
                    path,
                    max_bytes=file.max_bytes,
                    backups=file.backups,
                    min_severity=file.min_severity,
                )
            )
    stack = context.config.stack.name if context.config is not None else ""
    source = f"{socket.gethostname()}/{stack}" if stack else socket.gethostname()
    for hook in config.webhooks:
        url = hook.url.get_secret_value() if hook.url is not None else PAGERDUTY_URL
        key = hook.routing_key.get_secret_value() if hook.routing_key is not None else ""
        settings = WebhookSettings(
            name=hook.name,
            format=hook.format,
            url=url,
            routing_key=key,
            min_severity=hook.min_severity,
            timeout=hook.timeout,
            retries=hook.retries,
            backoff=hook.backoff,
            max_backoff=hook.max_backoff,
            queue=hook.queue,
            source=source,
        )
        sinks.append(WebhookSink(settings))
    return Components(sinks=sinks)


def alert_file_path(configured: str | None, context: PipelineContext) -> Path | None:
    """The configured path (relative to the config's directory), else the state dir's."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute() and context.config_path is not None:
            path = context.config_path.parent / path
        return path
    return context.state_dir / "alerts.jsonl" if context.state_dir is not None else None
