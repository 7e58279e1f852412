"""The policy agent: every request through a Rego policy, hot-reloaded, every decision logged.

The policy (a directory or an OPA bundle, ``policies``) is compiled once per load and
evaluated inline per request (about 0.2 ms, see docs/agents.md; a worker thread would cost
more than it saves). Loading is what may block: the candidate is first compiled in a child
process (rego-cpp can abort on some inputs), in a worker thread, and only then compiled here
and swapped in. A candidate that fails leaves the running policy serving, and an ``alert``
event (severity warning) goes to the event hub with what was wrong and where.

Reloads happen when the policy's files change (their mtimes are polled every
``watch_interval`` seconds), on SIGHUP, and when a new configuration names another policy.
Each decision goes to the event hub as a ``policy.decision`` event shaped like OPA's decision
log (credentials redacted), with the proxy's ``request_id`` to join it with access records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import trio

import sentinel_agents
from sentinel_agents.eventhub import EventHubWriter
from sentinel_agents.policy.document import PolicyRequest
from sentinel_agents.policy.engine import (
    DEFAULT_DECISION_PATH,
    DriftStatus,
    PolicyEngine,
    PolicyEvaluation,
    PolicyLoadError,
    Reloaded,
    ReloadFailed,
    ReloadOutcome,
)
from sentinel_agents.policy.identity import IdentityConfigError, parse_identity_config
from sentinel_agents.policy.isolated import check_in_child
from sentinel_agents.policy.source import PolicySource, PolicySourceError, load_policy_source
from sentinel_agents.program import ConfigRejected, ProgramAgent
from sentinel_stack.agent import (
    AgentHealth,
    Audit,
    Decision,
    HeaderOps,
    RequestHeaders,
    allow,
    block,
)

__all__ = ["DEFAULT_POLICIES", "PolicyAgent", "PolicySettings", "policy_signature"]

log = logging.getLogger("sentinel_agents.policy")

DEFAULT_POLICIES = "configs/policies"
# The example policy shipped with sentinel-stack, for a working directory without its own.
BUNDLED_POLICIES = Path(sentinel_agents.__file__).resolve().parents[2] / DEFAULT_POLICIES
_CHANGED_WHILE_CHECKED = "changed on disk while it was being checked"


class PolicySettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[agents.policy.config]``."""

    policies: str | None = None
    """A policy directory or OPA bundle; default ``configs/policies`` (in the working
    directory, else the example shipped with sentinel-stack)."""
    decision_path: str = DEFAULT_DECISION_PATH
    identity: dict[str, Any] | None = None
    """How bearer JWTs are verified (docs/agents.md, ``[policy.identity]``)."""
    decision_log: Literal["all", "deny", "off"] = "all"
    watch_interval: float = 1.0
    """Seconds between checks of the policy files' mtimes; 0 turns watching off."""
    block_body: str | None = None
    """Body of refusals; default: the policy's deny reasons, one per line."""


def policy_signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when any file of the policy changes: (name, mtime_ns, size) per file."""
    try:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            stats = [(str(p.relative_to(path)), p.stat()) for p in files]
        else:
            stats = [(path.name, path.stat())]
    except OSError:
        return ()
    return tuple((name, st.st_mtime_ns, st.st_size) for name, st in stats)


def resolve_policies(configured: str | None, base_dir: Path | None) -> Path:
    """The policy path: relative to ``base_dir`` (or the working directory)."""
    raw = Path(configured or DEFAULT_POLICIES).expanduser()
    path = raw if raw.is_absolute() or base_dir is None else base_dir / raw
    if configured is None and not path.exists() and BUNDLED_POLICIES.exists():
        return BUNDLED_POLICIES
    return path


class PolicyAgent(ProgramAgent):
    """Allows or refuses requests as the Rego policy decides."""

    name = "policy"
    version = "1.0.0"
    concurrent = False  # evaluation is a short computation; see the module docstring

    def __init__(self) -> None:
        super().__init__()
        self.settings = PolicySettings()
        self.engine: PolicyEngine | None = None
        self.policy_path: Path | None = None
        self.hub = EventHubWriter.from_environment(self.name)
        self.last_failure = ""
        self.drift: DriftStatus | None = None
        self.decisions = 0
        self.denied = 0
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._reload_lock = trio.Lock()
        self._alerted: set[tuple[str | None, str]] = set()

    # ---- configuration ---------------------------------------------------------------------

    async def apply_config(self, raw: Mapping[str, Any], base_dir: Path | None) -> None:
        try:
            settings = msgspec.convert(dict(raw), PolicySettings)
            identity = None
            if settings.identity is not None:
                identity = parse_identity_config(settings.identity, base_dir)
            engine = PolicyEngine(decision_path=settings.decision_path, identity=identity)
        except msgspec.ValidationError as error:
            raise ConfigRejected(str(error)) from None
        except IdentityConfigError as error:
            raise ConfigRejected(f"identity.{error}") from None
        except ValueError as error:
            raise ConfigRejected(f"decision_path: {error}") from None
        if settings.watch_interval < 0:
            raise ConfigRejected("watch_interval must be 0 (off) or a number of seconds")
        path = resolve_policies(settings.policies, base_dir)
        running = self.engine
        unchanged = (
            running is not None
            and path == self.policy_path
            and (engine.decision_path, engine.identity) == (running.decision_path, running.identity)
        )
        if not unchanged:
            signature = policy_signature(path)
            outcome = await self._load_into(engine, path)
            if isinstance(outcome, ReloadFailed):
                self._alert_load_failed(outcome, path)
                if running is not None and running.revision is not None:
                    raise ConfigRejected(
                        f"policies: {outcome.error}; the running policy stays in force"
                    )
            else:
                self._loaded(outcome, path)
            self.engine, self.policy_path, self._signature = engine, path, signature
            await self._update_drift()
        self.settings = settings

    async def prepare(self) -> None:
        self.hub.source = self.name
        if self.engine is None:
            await self.apply_config({}, None)

    async def reload(self) -> None:
        before = self.engine
        await super().reload()
        if self.engine is before:
            await self.reload_policy("SIGHUP")

    # ---- loading ---------------------------------------------------------------------------

    async def reload_policy(self, why: str) -> ReloadOutcome | None:
        """Load the policy again into the serving engine; the running one stays on failure."""
        engine, path = self.engine, self.policy_path
        if engine is None or path is None:
            return None
        self._signature = policy_signature(path)
        outcome = await self._load_into(engine, path)
        if isinstance(outcome, Reloaded):
            self._loaded(outcome, path, why)
        elif _CHANGED_WHILE_CHECKED in outcome.error.message:
            self._signature = None  # still being written: try again at the next look
        else:
            self._alert_load_failed(outcome, path)
        await self._update_drift()
        return outcome

    async def _load_into(self, engine: PolicyEngine, path: Path) -> ReloadOutcome:
        def check() -> tuple[PolicySource, str | PolicyLoadError]:
            return load_policy_source(path), check_in_child(path, engine.decision_path)

        async with self._reload_lock:
            try:
                source, checked = await trio.to_thread.run_sync(check)
            except PolicySourceError as error:
                return ReloadFailed(PolicyLoadError(error.where, error.message), engine.revision)
            if isinstance(checked, PolicyLoadError):
                return ReloadFailed(checked, engine.revision)
            if checked != source.digest:
                message = f"policy {_CHANGED_WHILE_CHECKED}; reload again"
                return ReloadFailed(PolicyLoadError(str(path), message), engine.revision)
            # Compiling again here takes milliseconds; the child proved it cannot abort.
            return engine.load(source)

    def _loaded(self, outcome: Reloaded, path: Path, why: str = "configuration") -> None:
        self.last_failure = ""
        log.info(
            "policy loaded",
            extra={
                "policies": str(path),
                "revision": outcome.revision,
                "previous_revision": outcome.previous_revision,
                "why": why,
            },
        )

    def _alert_load_failed(self, outcome: ReloadFailed, path: Path) -> None:
        error = outcome.error
        self.last_failure = str(error)
        running = outcome.running_revision
        summary = f"policy at {path} failed to load; " + (
            f"revision {_short(running)} keeps serving" if running else "no policy is serving"
        )
        log.warning(summary, extra={"error": str(error), "diagnostics": list(error.diagnostics)})
        self.hub.emit(
            "alert",
            {
                "rule": "policy.load_failed",
                "severity": "warning",
                "summary": summary,
                "error": str(error),
                "diagnostics": list(error.diagnostics),
                "policies": str(path),
                "running_revision": running,
            },
        )

    async def _update_drift(self) -> None:
        engine, path = self.engine, self.policy_path
        if engine is not None and path is not None:
            self.drift = await trio.to_thread.run_sync(engine.drift, path)

    # ---- decisions -------------------------------------------------------------------------

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        engine = self.engine
        if engine is None:
            raise RuntimeError("no policy engine yet")
        now = time.time()
        headers = request.headers
        length = (headers.get("content-length") or ["0"])[0].strip()
        facts = PolicyRequest(
            method=request.method,
            path=request.path,
            query=request.query,
            headers=[(name, value) for name, values in headers.items() for value in values],
            body_size=int(length) if length.isdigit() else 0,
            client_ip=request.client_ip,
            client_port=request.client_port,
            route=request.route_id,
        )
        evaluation = engine.evaluate(facts, now)
        decision = evaluation.decision
        self.decisions += 1
        mode = self.settings.decision_log
        if mode == "all" or (mode == "deny" and not decision.allow):
            self._log_decision(engine, evaluation, now, request.request_id)
        if decision.error:
            self._alert_decision_error(evaluation, decision.error)
        header_fields = tuple(decision.headers.items())
        if decision.allow:
            return allow(request_headers=HeaderOps(set=header_fields))
        self.denied += 1
        reason = "; ".join(decision.reasons) or decision.error or "denied by policy"
        body = self.settings.block_body
        if body is None:
            body = "\n".join(decision.reasons or ("denied by policy",)) + "\n"
        audit = Audit(tags=("policy",), rule_ids=(engine.query_ref,), reason=reason)
        status = decision.status if decision.status >= 400 else 403
        return block(status, body, headers=header_fields, audit=audit)

    def _log_decision(
        self, engine: PolicyEngine, evaluation: PolicyEvaluation, now: float, request_id: str
    ) -> None:
        record = msgspec.to_builtins(engine.decision_log(evaluation, now))
        record["request_id"] = request_id
        record["allowed"] = evaluation.decision.allow
        self.hub.emit("policy.decision", record)

    def _alert_decision_error(self, evaluation: PolicyEvaluation, error: str) -> None:
        key = (evaluation.revision, error)
        if key in self._alerted:
            return  # once per policy revision and error, not once per request
        self._alerted.add(key)
        summary = f"policy revision {_short(evaluation.revision)} gives malformed decisions"
        log.warning(summary, extra={"error": error})
        self.hub.emit(
            "alert",
            {
                "rule": "policy.decision_error",
                "severity": "warning",
                "summary": summary,
                "error": error,
                "running_revision": evaluation.revision,
            },
        )

    # ---- background ------------------------------------------------------------------------

    async def run_background(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.hub.run)
            nursery.start_soon(self._watch_policies)
            task_status.started()

    async def _watch_policies(self) -> None:
        # Polling, not inotify: the standard library has no file watch, and a one-second
        # look at a handful of stats costs nothing.
        while True:
            interval = self.settings.watch_interval
            await trio.sleep(interval or 1.0)
            path = self.policy_path
            if not interval or path is None:
                continue
            signature = await trio.to_thread.run_sync(policy_signature, path)
            if signature != self._signature:
                await self.reload_policy("files changed")

    # ---- health ----------------------------------------------------------------------------

    def health(self) -> AgentHealth:
        engine, path, drift = self.engine, self.policy_path, self.drift
        if engine is None or engine.revision is None:
            why = self.last_failure or "nothing loaded yet"
            return self.background_health(
                AgentHealth("failing", f"no policy serving from {path}: {why}")
            )
        on_disk = _short(drift.on_disk) if drift is not None else "unknown"
        detail = (
            f"revision {_short(engine.revision)} from {path}; running digest "
            f"{_short(engine.digest)}, on disk {on_disk}; {self.decisions} decisions, "
            f"{self.denied} denied"
        )
        status: Literal["ok", "degraded"] = "ok"
        if drift is not None and drift.drifted:
            status = "degraded"
            detail += "; drift: the policy on disk is not the one serving"
        if self.last_failure:
            status = "degraded"
            detail += f"; last reload failed: {self.last_failure}"
        return self.background_health(AgentHealth(status, detail))


def _short(revision: str | None) -> str:
    if revision is None:
        return "none"
    return revision[:12] if len(revision) == 64 else revision
