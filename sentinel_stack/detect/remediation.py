"""Remediation: opt-in, policy-driven actions on alerts, each one audited on the event hub.

Off unless ``[detector.remediation] enabled = true``. For each alert the Rego policy
(`remediation_policy`) names actions; this sink carries them out:

- ``deny_client``: ``add`` on the denylist agent's control socket
  (``$SENTINEL_RUN_DIR/agents/<agent>.ctl``, or the agent's ``control_socket``) with a TTL;
- ``stop``: the control API's ``stop`` of a child, which must be a child of this stack
  (per its `status`), and never the detector itself;
- ``kill``: SIGKILL to a pid that descends from one of this stack's children (checked
  against `status` and /proc just before the signal), never a child's own process, the
  launcher or the detector (stop the child instead: the supervisor owns those).

Each action, taken or not, is one hub event of kind ``remediation`` (what, why, result),
which the audit log records. The same action on the same target is taken once per TTL or
cooldown (`ActionMemory`); alerts wait in a bounded queue (drops counted). With
``dry_run`` every action is decided and audited (``result: "dry-run"``) but not taken.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec
import trio

from sentinel_stack.detect.alert import Alert
from sentinel_stack.detect.pipeline import Components, PipelineContext
from sentinel_stack.detect.remediation_policy import (
    ActionMemory,
    PolicyProblem,
    RemediationAction,
    RemediationPolicy,
    build_input,
)

__all__ = ["RemediationRecord", "RemediationSettings", "Remediator", "detector_components"]

log = logging.getLogger("sentinel_stack.detect.remediation")

Result = Literal["done", "failed", "refused", "dry-run", "skipped"]
REQUEST_TIMEOUT = 15.0  # a `stop` waits for the child's stop timeout


class RemediationRecord(msgspec.Struct, kw_only=True, tag="remediation", tag_field="kind"):
    """One decided action, as the hub and the audit log see it."""

    time: float
    source: str = "detector"
    action: str
    target: str
    reason: str
    result: Result
    summary: str = ""  # one line for people: "deny_client ip 203.0.113.7: done (...)"
    detail: str = ""
    ttl: float | None = None
    alert_id: str
    rule: str
    severity: str
    client_ip: str | None = None
    policy: str = ""


_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class RemediationSettings:
    control_socket: Path
    denylist_socket: Path
    events_socket: Path | None
    stack: str = ""
    dry_run: bool = False
    queue: int = 256
    own_pid: int = 0  # the detector's


class Remediator:
    """An alert sink that decides and takes actions; see the module docstring."""

    name = "remediation"

    def __init__(
        self,
        policy: RemediationPolicy,
        settings: RemediationSettings,
        clock: Callable[[], float] = time.time,
        parent_of: Callable[[int], int | None] | None = None,
    ) -> None:
        self.policy = policy
        self.settings = settings
        self.clock = clock
        self.parent_of = parent_of or proc_parent
        self.memory = ActionMemory()
        self.records: list[RemediationRecord] = []  # the last few, for tests and status
        self.dropped = 0
        self._send, self._receive = trio.open_memory_channel[Alert](settings.queue)

    def submit(self, alert: Alert) -> None:
        try:
            self._send.send_nowait(alert)
        except trio.WouldBlock:
            self.dropped += 1

    async def run(self) -> None:
        async for alert in self._receive:
            try:
                await self.handle(alert)
            except Exception:
                log.exception("remediation of alert %s failed", alert.id)

    async def handle(self, alert: Alert) -> list[RemediationRecord]:
        now = self.clock()
        children = await self._children()
        child = None
        if alert.process is not None and children is not None:
            child = owner_child(alert.process.pid, children, self.parent_of)
        document = build_input(alert, child, self.settings.stack, now)
        actions, problems = self.policy.decide(document)
        records = [self._record(alert, None, "refused", problem) for problem in problems]
        for action in actions:
            if self.memory.recent(action, now):
                records.append(self._record(alert, action, "skipped", "taken recently"))
                continue
            if self.settings.dry_run:
                records.append(self._record(alert, action, "dry-run", ""))
                self.memory.remember(action, now)
                continue
            result, detail = await self._take(action, children)
            if result == "done":
                self.memory.remember(action, now)
            records.append(self._record(alert, action, result, detail))
        for record in records:
            await self._publish(record)
        self.records = (self.records + records)[-100:]
        return records

    # ---- actions ------------------------------------------------------------------------

    async def _take(
        self, action: RemediationAction, children: dict[int, str] | None
    ) -> tuple[Result, str]:
        try:
            if action.type == "deny_client":
                return await self._deny(action)
            if children is None:
                return "failed", "the control API did not answer: stack children unknown"
            if action.type == "stop":
                return await self._stop(action, children)
            return self._kill(action, children)
        except (OSError, trio.TooSlowError, ValueError) as exc:
            return "failed", f"{type(exc).__name__}: {exc}"

    async def _deny(self, action: RemediationAction) -> tuple[Result, str]:
        request = {
            "id": 1,
            "op": "add",
            "kind": "ip",
            "value": action.ip,
            "ttl": action.ttl,
            "reason": f"remediation: {action.reason}"[:500],
        }
        reply = await json_request(self.settings.denylist_socket, request)
        if not reply.get("ok"):
            return "failed", str((reply.get("error") or {}).get("message", reply))
        return "done", f"denied for {action.ttl:g}s" if action.ttl else "denied"

    async def _stop(
        self, action: RemediationAction, children: dict[int, str]
    ) -> tuple[Result, str]:
        names = set(children.values())
        if action.child not in names:
            return "refused", f"{action.child!r} is not a child of this stack"
        if children.get(self.settings.own_pid) == action.child:
            return "refused", "the detector does not stop itself"
        request = {"id": 1, "op": "stop", "name": action.child}
        reply = await json_request(self.settings.control_socket, request)
        if not reply.get("ok"):
            return "failed", str((reply.get("error") or {}).get("message", reply))
        return "done", f"state {(reply.get('result') or {}).get('state', '?')}"

    def _kill(self, action: RemediationAction, children: dict[int, str]) -> tuple[Result, str]:
        pid = action.pid or 0
        if pid in children or pid in (os.getpid(), self.settings.own_pid):
            return "refused", f"pid {pid} is a child's own process: stop the child instead"
        owner = owner_child(pid, children, self.parent_of)
        if owner is None:
            return "refused", f"pid {pid} is not a process of this stack"
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return "failed", f"pid {pid} had already exited"
        return "done", f"SIGKILL sent to pid {pid} (under child {owner})"

    async def _children(self) -> dict[int, str] | None:
        """pid -> name of the stack's running children, from the control API's `status`."""
        try:
            reply = await json_request(self.settings.control_socket, {"id": 1, "op": "status"})
        except (OSError, trio.TooSlowError, ValueError) as exc:
            log.warning("remediation: control API status failed: %s", exc)
            return None
        rows = ((reply.get("result") or {}).get("children")) or []
        return {row["pid"]: row["name"] for row in rows if row.get("pid")}

    # ---- audit --------------------------------------------------------------------------

    def _record(
        self, alert: Alert, action: RemediationAction | None, result: Result, detail: str
    ) -> RemediationRecord:
        """``action`` None: the policy's answer itself was refused (``detail`` says why)."""
        kind = action.type if action else "policy"
        target = action.target if action else "-"
        reason = action.reason if action else "the policy's answer is not a valid action"
        return RemediationRecord(
            time=self.clock(),
            action=kind,
            target=target,
            reason=reason,
            result=result,
            summary=f"{kind} {target}: {result}" + (f" ({detail})" if detail else ""),
            detail=detail,
            ttl=action.ttl if action else None,
            alert_id=alert.id,
            rule=alert.rule,
            severity=alert.severity,
            client_ip=alert.client_ip,
            policy=str(self.policy.path),
        )

    async def _publish(self, record: RemediationRecord) -> None:
        log.info(
            "remediation %s %s: %s (%s) %s",
            record.action,
            record.target,
            record.result,
            record.reason,
            record.detail,
        )
        path = self.settings.events_socket
        if path is None:
            return
        try:
            with trio.fail_after(5):
                stream = await trio.open_unix_socket(str(path))
                async with stream:
                    await stream.send_all(_ENCODER.encode(record) + b"\n")
        except (OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
            log.warning("remediation record not sent to the hub (%s): %s", path, exc)


async def json_request(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """One JSON line to a Unix socket, the answer line with the same id back."""
    with trio.fail_after(REQUEST_TIMEOUT):
        stream = await trio.open_unix_socket(str(path))
        async with stream:
            await stream.send_all(_ENCODER.encode(request) + b"\n")
            buffer = b""
            while True:
                while b"\n" not in buffer:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        raise ValueError(f"{path} closed the connection without an answer")
                    buffer += chunk
                line, buffer = buffer.split(b"\n", 1)
                reply = msgspec.json.decode(line)
                if isinstance(reply, dict) and "event" not in reply:
                    return reply


def proc_parent(pid: int) -> int | None:
    """The parent pid from /proc (None when the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def owner_child(
    pid: int, children: dict[int, str], parent_of: Callable[[int], int | None]
) -> str | None:
    """The stack child ``pid`` is, or descends from; None when it is not the stack's."""
    seen: set[int] = set()
    current: int | None = pid
    while current and current > 1 and current not in seen and len(seen) < 64:
        if current in children:
            return children[current]
        seen.add(current)
        current = parent_of(current)
    return None


def detector_components(context: PipelineContext) -> Components:
    """The remediation sink when ``[detector.remediation] enabled = true``."""
    config = context.config.detector if context.config is not None else None
    if config is None or not config.remediation.enabled:
        return Components()
    settings = config.remediation
    base = context.config_path.parent if context.config_path is not None else Path.cwd()
    policy_path = Path(settings.policy).expanduser()
    if not policy_path.is_absolute():
        policy_path = base / policy_path
    try:
        policy = RemediationPolicy(policy_path, max_ttl=settings.max_ttl)
    except PolicyProblem as exc:
        log.error("remediation is off: %s", exc)  # noqa: TRY400 (the message says it all)
        return Components()
    run_dir = context.run_dir or Path(context.environ.get("SENTINEL_RUN_DIR", "."))
    agent = context.config.agents.get(settings.denylist_agent) if context.config else None
    configured = agent.config.get("control_socket") if agent is not None else None
    denylist = (
        Path(configured)
        if isinstance(configured, str) and Path(configured).is_absolute()
        else run_dir / "agents" / f"{settings.denylist_agent}.ctl"
    )
    events = context.environ.get("SENTINEL_EVENTS_SOCKET")
    remediator = Remediator(
        policy,
        RemediationSettings(
            control_socket=run_dir / "control.sock",
            denylist_socket=denylist,
            events_socket=Path(events) if events else run_dir / "events.sock",
            stack=context.config.stack.name if context.config is not None else "",
            dry_run=settings.dry_run,
            own_pid=os.getpid(),
        ),
    )
    return Components(sinks=[remediator])
