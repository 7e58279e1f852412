"""The WAF agent: every request through a WAF engine, off the event loop, on every core.

ModSecurity's C calls release the GIL (ctypes), so the agent runs ``inspect`` in worker
threads (`trio.to_thread.run_sync` under a `trio.CapacityLimiter` sized to the cores) and one
agent process uses the whole machine. The pure-Python fallback holds the GIL (threads make it
slower, see docs/waf.md), so it runs inline unless ``threads`` says otherwise.

Bodies: the headers are inspected first, so that a route whose body the proxy does not
forward (``inspect_body = false``) is still protected; a request that will carry an
inspectable body then gets ``needs_more`` and is decided again, whole, when the body arrives.

A configuration change that touches the engine builds a new one in a worker thread and swaps
it in; the old one is closed once the inspections still running on it are done.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import trio

from sentinel_agents.program import ConfigRejected, ProgramAgent
from sentinel_agents.waf.config import WafConfig
from sentinel_agents.waf.engine import WafEngine, create_engine
from sentinel_agents.waf.model import HttpRequest, WafMode, WafVerdict
from sentinel_stack.agent import (
    AgentHealth,
    Audit,
    Decision,
    RequestBodyChunk,
    RequestComplete,
    RequestHeaders,
    allow,
    block,
    needs_more,
)

__all__ = ["WafAgent", "WafAgentSettings", "parse_waf_agent_config"]

# Bodies no engine parses into arguments: asking for them costs a round trip for nothing.
DEFAULT_SKIP_BODY_TYPES = (
    "image/",
    "audio/",
    "video/",
    "font/",
    "application/octet-stream",
    "application/zip",
    "application/gzip",
    "application/pdf",
)
_PATH_KEYS = ("crs_setup", "crs_rules_dir", "extra_rules_dir")
_ALLOW = Decision()


class WafAgentSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The agent's own settings, beside the engine's (`WafConfig`) in one config table."""

    threads: int | None = None
    """Worker threads for ``inspect``; None: one per core for ModSecurity, 0 (inline) for
    the fallback engine."""
    inspect_body: bool = True
    skip_body_types: tuple[str, ...] = DEFAULT_SKIP_BODY_TYPES
    block_body: str = "request blocked by the web application firewall\n"
    block_headers: bool = True
    """Blocked responses carry ``x-sentinel-waf-rule-ids`` and ``x-sentinel-waf-score``."""


_ENGINE_KEYS = frozenset(WafConfig.__struct_fields__)
_AGENT_KEYS = frozenset(WafAgentSettings.__struct_fields__)


def parse_waf_agent_config(
    raw: Mapping[str, Any], base_dir: Path | None = None
) -> tuple[WafConfig, WafAgentSettings]:
    """Split one config table into the engine's and the agent's settings, validating both."""
    unknown = sorted(set(raw) - _ENGINE_KEYS - _AGENT_KEYS)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(_ENGINE_KEYS | _AGENT_KEYS), n=1)
        hint = f", did you mean `{close[0]}`?" if close else ""
        known = ", ".join(sorted(_AGENT_KEYS | _ENGINE_KEYS))
        raise ConfigRejected(f"unknown key `{key}`{hint} (known keys: {known})")
    engine_raw = {k: v for k, v in raw.items() if k in _ENGINE_KEYS}
    for key in _PATH_KEYS:
        value = engine_raw.get(key)
        if isinstance(value, str) and base_dir is not None:
            engine_raw[key] = str(base_dir / Path(value).expanduser())
    try:
        engine = msgspec.convert(engine_raw, WafConfig, dec_hook=_decode_path)
        settings = msgspec.convert(
            {k: v for k, v in raw.items() if k in _AGENT_KEYS}, WafAgentSettings
        )
    except msgspec.ValidationError as error:
        raise ConfigRejected(str(error)) from None
    if settings.threads is not None and settings.threads < 0:
        raise ConfigRejected(f"threads must be 0 (inline) or more, not {settings.threads}")
    return engine, settings


def _decode_path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot decode {kind}")


def cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


@dataclass(eq=False)
class _EngineLease:
    """An engine with the count of inspections running on it, closed once retired and idle."""

    engine: WafEngine
    config: WafConfig
    users: int = 0
    retired: bool = False

    def retire(self) -> None:
        self.retired = True
        if self.users == 0:
            self.engine.close()


@dataclass(eq=False)
class _PendingBody:
    headers: RequestHeaders
    body: bytearray = field(default_factory=bytearray)


class WafAgent(ProgramAgent):
    """ModSecurity (OWASP CRS) or the fallback engine behind the agent protocol."""

    name = "waf"
    version = "1.0.0"

    def __init__(self) -> None:
        super().__init__()
        self.settings = WafAgentSettings()
        self.threads = 0
        self.inspected = 0
        self.blocked = 0
        self.detected = 0
        self._lease: _EngineLease | None = None
        self._limiter = trio.CapacityLimiter(1)
        self._bodies: dict[int, _PendingBody] = {}

    # ---- configuration ---------------------------------------------------------------------

    async def prepare(self) -> None:
        if self._lease is None:
            await self._install(WafConfig(), self.settings)

    async def on_stop(self) -> None:
        await super().on_stop()
        if self._lease is not None:
            self._lease.retire()
            self._lease = None

    async def apply_config(self, raw: Mapping[str, Any], base_dir: Path | None) -> None:
        engine_config, settings = parse_waf_agent_config(raw, base_dir)
        await self._install(engine_config, settings)

    async def _install(self, engine_config: WafConfig, settings: WafAgentSettings) -> None:
        current = self._lease
        if current is None or current.config != engine_config:
            try:
                engine = await trio.to_thread.run_sync(create_engine, engine_config)
            except Exception as error:
                raise ConfigRejected(f"cannot build the WAF engine: {error}") from error
            self._lease = _EngineLease(engine, engine_config)
            if current is not None:
                current.retire()
        self.settings = settings
        assert self._lease is not None
        if settings.threads is not None:
            self.threads = settings.threads
        else:
            self.threads = cores() if self._lease.engine.name == "modsecurity" else 0
        self._limiter.total_tokens = max(1, self.threads)

    @property
    def engine(self) -> WafEngine:
        """The engine deciding new requests."""
        if self._lease is None:
            raise RuntimeError("the WAF engine is not built yet")
        return self._lease.engine

    # ---- decisions -------------------------------------------------------------------------

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        verdict = await self._inspect(_http_request(request, b""))
        if not verdict.would_block and self._wants_body(request):
            self._bodies[request.correlation_id] = _PendingBody(request)
            return needs_more(audit=_audit(verdict)) if verdict.findings else needs_more()
        return self._decide(verdict)

    async def on_request_body(self, chunk: RequestBodyChunk) -> Decision:
        pending = self._bodies.get(chunk.correlation_id)
        if pending is None:
            return _ALLOW  # a body we did not ask for
        pending.body += chunk.data
        limit = self._lease.config.body_limit if self._lease is not None else 0
        if not chunk.last and len(pending.body) <= limit:
            return needs_more()
        del self._bodies[chunk.correlation_id]
        verdict = await self._inspect(_http_request(pending.headers, bytes(pending.body)))
        return self._decide(verdict)

    async def on_request_complete(self, complete: RequestComplete) -> None:
        self._bodies.pop(complete.correlation_id, None)

    async def _inspect(self, request: HttpRequest) -> WafVerdict:
        lease = self._lease
        if lease is None:
            raise RuntimeError("the WAF engine is not built yet")
        lease.users += 1
        try:
            if self.threads:
                # Not abandoned on cancel: the engine must outlive every call running on it.
                return await trio.to_thread.run_sync(
                    lease.engine.inspect, request, limiter=self._limiter
                )
            return lease.engine.inspect(request)
        finally:
            self.inspected += 1
            lease.users -= 1
            if lease.retired and lease.users == 0:
                lease.engine.close()

    def _wants_body(self, request: RequestHeaders) -> bool:
        if not self.settings.inspect_body:
            return False
        headers = request.headers
        if "transfer-encoding" not in headers:
            length = (headers.get("content-length") or [""])[0].strip()
            if not length.isdigit() or int(length) == 0:
                return False
        content_type = (headers.get("content-type") or [""])[0].lower()
        return not content_type.startswith(self.settings.skip_body_types)

    def _decide(self, verdict: WafVerdict) -> Decision:
        if not verdict.findings:
            return _ALLOW
        audit = _audit(verdict)
        if verdict.blocked:
            self.blocked += 1
            headers: tuple[tuple[str, str], ...] = ()
            if self.settings.block_headers:
                headers = (
                    ("x-sentinel-waf-rule-ids", ",".join(audit.rule_ids)),
                    ("x-sentinel-waf-score", str(verdict.anomaly_score)),
                )
            return block(verdict.status, self.settings.block_body, headers=headers, audit=audit)
        if verdict.would_block:
            self.detected += 1
        return allow(audit=audit)

    # ---- health ----------------------------------------------------------------------------

    def health(self) -> AgentHealth:
        lease = self._lease
        if lease is None:
            return self.background_health(AgentHealth("failing", "no WAF engine built yet"))
        engine = lease.engine
        workers = f"{self.threads} threads" if self.threads else "inline"
        detail = (
            f"engine {engine.name} ({engine.description}); mode {lease.config.mode}, "
            f"paranoia {lease.config.paranoia_level}, threshold {lease.config.anomaly_threshold}; "
            f"{workers}; inspected {self.inspected}, blocked {self.blocked}, "
            f"detected {self.detected}"
        )
        degraded = engine.name == "fallback" and bool(getattr(engine, "degraded_reason", ""))
        return self.background_health(AgentHealth("degraded" if degraded else "ok", detail))


def _audit(verdict: WafVerdict) -> Audit:
    tags = ["waf", *verdict.attack_tags]
    if verdict.would_block and verdict.mode is WafMode.DETECT:
        tags.append("detect-only")
    reason = verdict.reason or f"anomaly score {verdict.anomaly_score} < {verdict.threshold}"
    return Audit(tags=tuple(tags), rule_ids=tuple(str(r) for r in verdict.rule_ids), reason=reason)


def _http_request(event: RequestHeaders, body: bytes) -> HttpRequest:
    return HttpRequest(
        method=event.method,
        path=_wire_text(event.path),
        query=_wire_text(event.query),
        http_version=event.protocol.removeprefix("HTTP/") or "1.1",
        headers={
            name: [_wire_text(value) for value in values] for name, values in event.headers.items()
        },
        body=body,
        client_ip=event.client_ip or "0.0.0.0",  # noqa: S104 - an address, not a bind
        client_port=event.client_port,
        route=event.route_id or None,
    )


def _wire_text(text: str) -> str:
    """The proxy decodes request bytes as latin-1; the engines want UTF-8 + surrogateescape."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text  # already real text (another proxy): leave it
