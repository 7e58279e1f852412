"""Alert sinks against real files and a real local HTTP receiver (h11 over Trio)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import h11
import pytest
import trio

from sentinel_stack.config.loader import load_config_text
from sentinel_stack.detect.alert import ALERT_DECODER, Alert, ChainStep, ProcessInfo
from sentinel_stack.detect.pipeline import PipelineContext
from sentinel_stack.detect.sinks import (
    PAGERDUTY_URL,
    JsonLinesSink,
    WebhookSettings,
    WebhookSink,
    detector_components,
    pagerduty_payload,
    slack_payload,
)
from sentinel_stack.detect.webhook_client import PostFailed, post_json


def alert(severity: str = "high", **extra: object) -> Alert:
    return Alert(
        time=1_700_000_000.0,
        rule="web_server_spawned_shell",
        severity=severity,  # type: ignore[arg-type]
        summary="python3 spawned <sh> & more",
        technique="T1059.004",
        tactic="execution",
        process=ProcessInfo(pid=42, comm="sh"),
        client_ip="203.0.113.9",
        **extra,  # type: ignore[arg-type]
    )


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then 200) and keeps the bodies."""

    statuses: list[int] = field(default_factory=list)
    retry_after: str | None = None
    bodies: list[bytes] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    port: int = 0
    got: trio.Event = field(default_factory=trio.Event)

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        body = b""
        async with stream:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.Request):
                    self.targets.append(event.target.decode())
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            status = self.statuses.pop(0) if self.statuses else 200
            if status == 0:  # hang up without answering
                return
            self.bodies.append(body)
            headers = [("Content-Length", "2"), ("Connection", "close")]
            if self.retry_after is not None and status == 429:
                headers.append(("Retry-After", self.retry_after))
            data = conn.send(h11.Response(status_code=status, headers=headers))
            data += conn.send(h11.Data(data=b"ok")) + conn.send(h11.EndOfMessage())
            await stream.send_all(data)
            if status == 200:
                self.got.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T000/B000/SECRET-TOKEN"


@pytest.fixture
async def receiver(nursery: trio.Nursery) -> AsyncIterator[Receiver]:
    server = Receiver()
    listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), server.handle, 0)
    server.port = listeners[0].socket.getsockname()[1]
    yield server


def settings(url: str, **extra: object) -> WebhookSettings:
    base: dict[str, object] = {"name": "ops", "format": "json", "url": url, "backoff": 0.01}
    return WebhookSettings(**{**base, **extra})  # type: ignore[arg-type]


async def test_a_failing_then_recovering_receiver_gets_the_alert_once(
    receiver: Receiver, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.statuses = [500, 503, 0]  # two errors and a hang-up, then it recovers
    sink = WebhookSink(settings(receiver.url, retries=5))
    nursery.start_soon(sink.run)
    sink.submit(alert())
    with trio.fail_after(10):
        await receiver.got.wait()
        while sink.sent < 1:  # the client reads the answer after the server wrote it
            await trio.sleep(0.005)
    assert len(receiver.bodies) == 3  # the two 5xx and the success were answered
    assert ALERT_DECODER.decode(receiver.bodies[-1]).rule == "web_server_spawned_shell"
    assert receiver.targets[-1] == "/services/T000/B000/SECRET-TOKEN"
    assert (sink.sent, sink.failed, sink.retried) == (1, 0, 3)
    assert "SECRET-TOKEN" not in caplog.text


async def test_a_429_is_retried_after_retry_after_and_a_400_is_not(receiver: Receiver) -> None:
    receiver.statuses = [429]
    receiver.retry_after = "0.05"
    sink = WebhookSink(settings(receiver.url, max_backoff=1.0))
    start = trio.current_time()
    assert await sink.deliver(alert())
    assert trio.current_time() - start >= 0.05
    receiver.statuses = [400]
    assert not await sink.deliver(alert())
    assert sink.failed == 1 and sink.retried == 1


async def test_retries_end_and_count_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on this port: every attempt fails to connect.
    probe = trio.socket.socket()
    await probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    url = f"http://127.0.0.1:{port}/hook/SECRET-TOKEN"
    sink = WebhookSink(settings(url, retries=2, routing_key="KEY-123"))
    caplog.set_level(logging.DEBUG)
    assert not await sink.deliver(alert())
    assert (sink.failed, sink.retried) == (1, 2)
    assert "SECRET-TOKEN" not in caplog.text and "KEY-123" not in caplog.text
    with pytest.raises(PostFailed) as raised:
        await post_json(url, b"{}")
    assert "SECRET" not in str(raised.value)


async def test_the_queue_is_bounded_and_submit_never_blocks() -> None:
    sink = WebhookSink(settings("http://127.0.0.1:1/", queue=2, min_severity="medium"))
    for _ in range(5):
        sink.submit(alert())
    sink.submit(alert("low"))  # below the webhook's threshold: not even queued
    assert sink.dropped == 3


async def test_slack_and_pagerduty_payloads_reach_the_receiver(receiver: Receiver) -> None:
    slack = WebhookSink(settings(receiver.url, format="slack", source="host/demo"))
    chained = alert(
        "critical",
        chain=[ChainStep(time=1.0, kind="access", summary="POST /x", technique="T1190")],
        chain_id="c1",
    )
    assert await slack.deliver(chained)
    message = json.loads(receiver.bodies[-1])
    assert message["text"].startswith(":red_circle: [CRITICAL] web_server_spawned_shell")
    assert "&lt;sh&gt; &amp; more" in message["blocks"][1]["text"]["text"]
    assert any("T1190" in b.get("text", {}).get("text", "") for b in message["blocks"])
    pd = WebhookSink(settings(receiver.url, format="pagerduty", routing_key="R0UT1NG"))
    assert await pd.deliver(chained)
    event = json.loads(receiver.bodies[-1])
    assert event["routing_key"] == "R0UT1NG"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "c1"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["timestamp"] == "2023-11-14T22:13:20Z"
    assert event["payload"]["custom_details"]["chain"][0]["technique"] == "T1190"


def test_payload_shapes() -> None:
    plain = alert("medium")
    pd = pagerduty_payload(plain, "k", "host")
    assert pd["dedup_key"] == plain.id
    assert pd["payload"]["severity"] == "warning"
    assert set(pd["payload"]) >= {"summary", "severity", "source", "timestamp", "custom_details"}
    assert pagerduty_payload(alert("low"), "k", "h")["payload"]["severity"] == "info"
    slack = slack_payload(plain)
    assert {block["type"] for block in slack["blocks"]} >= {"header", "section", "context"}


async def test_the_jsonl_file_rotates_by_size(tmp_path: Path, nursery: trio.Nursery) -> None:
    path = tmp_path / "alerts" / "alerts.jsonl"
    sink = JsonLinesSink(path, max_bytes=4096, backups=2, min_severity="low")
    nursery.start_soon(sink.run)
    for _ in range(40):
        sink.submit(alert())
    sink.submit(alert("info"))  # below min_severity
    with trio.fail_after(10):
        while sink.written < 40:
            await trio.sleep(0.01)
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2"]
    lines = [line for p in path.parent.iterdir() for line in p.read_bytes().splitlines()]
    assert all(ALERT_DECODER.decode(line).rule for line in lines)
    assert all(p.stat().st_size <= 4096 for p in path.parent.iterdir())
    assert len(lines) < 40  # the oldest rotated out


def test_the_plugin_hook_builds_sinks_without_leaking_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_config_text(
        """
[detector]
[detector.alert_file]
max_bytes = 8192
[[detector.webhooks]]
name = "slack"
format = "slack"
url = "${SLACK_URL}"
[[detector.webhooks]]
name = "pd"
format = "pagerduty"
routing_key = "${PD_KEY}"
min_severity = "critical"
""",
        "<t>",
        environ={"SLACK_URL": "https://hooks.slack.com/services/SECRET", "PD_KEY": "PDSECRET"},
    )
    components = detector_components(PipelineContext(config=loaded.config, state_dir=tmp_path))
    file, slack, pd = components.sinks
    assert isinstance(file, JsonLinesSink) and file.path == tmp_path / "alerts.jsonl"
    assert isinstance(slack, WebhookSink) and isinstance(pd, WebhookSink)
    assert slack.settings.url.endswith("/SECRET")
    assert pd.settings.url == PAGERDUTY_URL and pd.settings.routing_key == "PDSECRET"
    assert "SECRET" not in repr(slack.settings) + repr(loaded.config)
