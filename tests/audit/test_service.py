"""The launcher's audit task: what it records from the hub and the supervisor, drops
counted as gaps, a sealed log on close."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from sentinel_stack.audit.chain import CheckpointPolicy
from sentinel_stack.audit.mapping import (
    AuditEntry,
    StateAuditor,
    UnreadableEvent,
    entry_from_hub,
)
from sentinel_stack.audit.service import AuditService
from sentinel_stack.audit.settings import AuditSettings
from sentinel_stack.audit.writer import LogSettings
from sentinel_stack.events.hub import EventHub
from sentinel_stack.supervisor.events import EventBus, StateChange
from tests.audit.logkit import LogKit, parse


def line(kind: str, **fields: object) -> bytes:
    return json.dumps({"kind": kind, "time": 1.0, "source": "t", **fields}).encode()


BLOCKED = line(
    "access",
    request_id="r1",
    method="GET",
    path="/etc/passwd",
    status=403,
    client_ip="10.0.0.9",
    decided_by="waf",
    agents=[{"agent": "waf", "action": "block", "latency_ms": 0.3}],
)
ALLOWED = line("access", request_id="r2", method="GET", path="/", status=200)


def test_hub_lines_that_are_audit_material() -> None:
    assert entry_from_hub(ALLOWED) is None
    blocked = entry_from_hub(BLOCKED)
    assert blocked is not None and blocked.type == "block"
    assert blocked.data["action"] == "block" and blocked.data["client_ip"] == "10.0.0.9"
    redirect = entry_from_hub(
        line("access", decided_by="r", agents=[{"agent": "r", "action": "redirect"}])
    )
    assert redirect is not None and redirect.data["action"] == "redirect"
    assert entry_from_hub(line("policy.decision", allowed=False)).type == "policy_decision"  # type: ignore[union-attr]
    assert entry_from_hub(line("alert", rule="x")).type == "alert"  # type: ignore[union-attr]
    assert entry_from_hub(line("remediation", action="deny")).type == "remediation"  # type: ignore[union-attr]
    assert entry_from_hub(line("kernel.exec")) is None
    with pytest.raises(UnreadableEvent):
        entry_from_hub(b'{"kind": "alert", "summary": "\xff"}')  # the hub lets this through


def change(child: str, state: str, previous: str, pid: int | None = 42) -> StateChange:
    return StateChange(child, state, previous, "why", pid, 1.0)


def test_state_changes_that_are_audit_material() -> None:
    auditor = StateAuditor()
    assert auditor.entry(change("waf", "starting", "stopped", None)) is None
    assert auditor.entry(change("waf", "starting", "starting")) is None  # the first spawn
    assert auditor.entry(change("waf", "running", "starting")) is None
    assert auditor.entry(change("waf", "backoff", "running")).type == "process_exit"  # type: ignore[union-attr]
    assert auditor.entry(change("waf", "starting", "backoff", None)) is None  # not spawned yet
    restart = auditor.entry(change("waf", "starting", "starting", 43))
    assert restart is not None and restart.type == "process_restart" and restart.data["pid"] == 43
    assert auditor.entry(change("waf", "fatal", "starting")).type == "process_fatal"  # type: ignore[union-attr]
    assert auditor.entry(change("waf", "stopping", "running")).type == "process_stop"  # type: ignore[union-attr]


def service_for(tmp_path: Path, queue: int = 10_000) -> tuple[AuditService, LogKit]:
    kit = LogKit(tmp_path)
    settings = LogSettings(kit.dir, kit.key_file, "t", CheckpointPolicy(100, 60.0))
    return AuditService(AuditSettings(settings, queue)), kit


async def test_the_service_records_hub_and_supervisor_events(tmp_path: Path) -> None:
    service, kit = service_for(tmp_path)
    hub, bus = EventHub(tmp_path / "events.sock"), EventBus()
    notices: list[tuple[str, str]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run, hub, bus, lambda m, lvl: notices.append((m, lvl)))
        for raw in (ALLOWED, BLOCKED, line("alert", rule="r", summary="s"), line("kernel.exec")):
            hub.ingest(raw)
        hub.ingest(b'{"kind": "alert", "summary": "\xff"}')  # counted, as a gap
        bus.publish(change("web", "starting", "starting"))
        bus.publish(change("web", "backoff", "running"))
        bus.publish(change("web", "starting", "backoff", None))
        bus.publish(change("web", "starting", "starting"))
        service.config_reloaded(tmp_path / "missing.toml", ["web"])
        status = service.status()
        assert status["path"].endswith("audit-000001.jsonl") and status["error"] is None
        await service.close()
    types = [parse(raw).type for raw in kit.lines(kit.files()[0])]
    assert types[:3] == ["genesis", "open", "checkpoint"]
    assert sorted(types[3:-1]) == sorted(
        ["block", "alert", "process_exit", "process_restart", "config_reload", "gap"]
    )
    assert types[-1] == "checkpoint"
    report = kit.verify()
    assert report.ok and report.sealed, report.problems


async def test_a_full_queue_drops_and_writes_a_gap_record(tmp_path: Path) -> None:
    service, kit = service_for(tmp_path, queue=16)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run, EventHub(tmp_path / "e.sock"), EventBus(), print)
        for i in range(100):  # in one go: the writer cannot drain in between
            service.offer(AuditEntry("alert", {"i": i}))
        dropped = service.dropped
        assert 100 - 17 <= dropped <= 100 - 16  # a waiting writer may take one directly
        await service.close()
    records = [parse(raw) for p in kit.files() for raw in kit.lines(p)]
    gaps = [r for r in records if r.type == "gap"]
    assert len(gaps) == 1 and gaps[0].data["dropped"] == dropped
    assert gaps[0].data["by_type"] == {"alert": dropped}
    assert sum(r.type == "alert" for r in records) == 100 - dropped
    assert kit.verify().ok


async def test_lines_the_hub_drops_for_the_audit_log_are_a_gap_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sentinel_stack.audit.service.STAGING", 8)
    service, kit = service_for(tmp_path)
    hub = EventHub(tmp_path / "e.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run, hub, EventBus(), print)
        for i in range(20):  # in one go: the intake cannot run in between
            hub.ingest(line("alert", rule="r", summary=f"s{i}"))
        dropped = hub.stats.dropped
        assert dropped in (11, 12)  # the waiting intake may take one directly
        assert service.dropped == dropped
        for _ in range(20):  # dropped too, but allowed requests are not audit material
            hub.ingest(ALLOWED)
        assert hub.stats.dropped == dropped + 20 and service.dropped == dropped
        await service.close()
    records = [parse(raw) for p in kit.files() for raw in kit.lines(p)]
    gaps = [r for r in records if r.type == "gap"]
    assert len(gaps) == 1 and gaps[0].data["by_type"] == {"alert": dropped}
    assert "hub" in gaps[0].data["reason"]
    assert sum(r.type == "alert" for r in records) == 20 - dropped
    assert kit.verify().ok


async def test_an_unusable_log_leaves_the_stack_running(tmp_path: Path) -> None:
    service, kit = service_for(tmp_path)
    kit.key_file.parent.mkdir(parents=True)
    kit.key_file.write_text("not a key")
    kit.key_file.chmod(0o600)
    notices: list[tuple[str, str]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run, EventHub(tmp_path / "e.sock"), EventBus(),
                            lambda m, lvl: notices.append((m, lvl)))  # fmt: skip
        service.record("alert", {})  # queued into nothing, never blocks
        await service.close()
    assert notices and notices[0][1] == "error" and "not an unencrypted PEM" in notices[0][0]
    assert "not an unencrypted PEM" in service.status()["error"]
