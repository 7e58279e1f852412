"""The ModSecurity v3 engine: the OWASP CRS run by libmodsecurity through ctypes.

Concurrency: after construction the engine is read-only, and ``inspect`` may be called from
many threads at once. Each call owns its transaction; the compiled rule sets are shared, which
libmodsecurity supports (rules are immutable once loaded, PCRE2 match data is per call since
3.0.7). The one shared mutable structure is the in-memory persistent collections (``IP``,
``GLOBAL``): 3.0.9 locks their writers but not their readers, so configurations that *write*
them (CRS DoS protection, IP reputation, site rules with ``setvar:ip.*``) are only safe with a
process pool. With the default CRS settings they are only read. See docs/waf.md for the
measurements.

Lifetimes: engines share the process's one ``ModSecurity`` handle (never freed, see
``modsec_ffi``) and own their rule sets; ``close()`` frees those and must only run once no
``inspect`` is in flight.
"""

from __future__ import annotations

import ctypes
import secrets
from pathlib import Path
from types import TracebackType

from sentinel_agents.waf.config import WafConfig, WafConfigError
from sentinel_agents.waf.model import (
    BodyLimitAction,
    Finding,
    HttpRequest,
    WafMode,
    WafVerdict,
)
from sentinel_agents.waf.modsec_ffi import Intervention, RuleSetHandle, shared_handle
from sentinel_agents.waf.modsec_log import LogEntry, parse_log_line, to_finding
from sentinel_agents.waf.modsec_rules import (
    SCORE_RULE_ID,
    VERDICT_RULE_IDS,
    RuleInfo,
    RuleSource,
    discover_crs,
    parse_rule_catalog,
    plan_rule_sources,
)
from sentinel_agents.waf.verdicts import body_too_large, summarize

ENGINE_NAME = "modsecurity"
_ANOMALY_RULE_ID = 949110


class _Outcome:
    """What one transaction produced, gathered before it is turned into a verdict."""

    __slots__ = ("disruptive", "intervention_log", "lines", "status")

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.disruptive = False
        self.status = 200
        self.intervention_log = ""


class ModSecurityEngine:
    """Inspects requests with libmodsecurity and the CRS; one compiled rule set per route."""

    name = ENGINE_NAME

    def __init__(self, config: WafConfig) -> None:
        self.config = config
        self._handle = shared_handle(config.library)
        self._lib = self._handle.lib
        # The server address ModSecurity echoes as [hostname "…"]: a random token no request
        # can forge, which the log parser uses as its anchor.
        self._hostname = f"sentinel-{secrets.token_hex(8)}"
        self._hostname_b = self._hostname.encode()
        self.version = self._handle.version
        self._catalog: dict[int, RuleInfo] = {}
        self._rule_sets: dict[str | None, RuleSetHandle] = {}
        try:
            crs = discover_crs(config)
            extra = _extra_rule_files(config.extra_rules_dir)
            for route in (None, *config.routes):
                sources = plan_rule_sources(config, crs, extra, route)
                key = route.route if route else None
                self._rule_sets[key] = self._load(sources)
        except BaseException:
            self.close()
            raise
        self.rule_count = len(self._catalog)

    @property
    def description(self) -> str:
        """Engine, library and rule count, for the agent's health report."""
        from sentinel_agents.waf.allocator import active_allocator

        return (
            f"{self.version} via ctypes, {self.rule_count} rules (OWASP CRS), "
            f"{active_allocator()} malloc"
        )

    def inspect(self, request: HttpRequest) -> WafVerdict:
        """Run one request through phases 1, 2 and 5 and say whether to block it."""
        route = self.config.for_route(request.route)
        rules = self._rule_sets[route.route if route else None]
        if not rules.pointer:
            raise RuntimeError("ModSecurityEngine.inspect called after close()")
        threshold = self.config.threshold_for(route)
        body = request.body
        if len(body) > self.config.body_limit:
            if self.config.body_limit_action is BodyLimitAction.REJECT:
                return body_too_large(self.name, self.config, threshold, len(body))
            body = body[: self.config.body_limit]
        outcome = self._run(request, rules, body)
        return self._verdict(outcome, threshold)

    def close(self) -> None:
        """Free this engine's rule sets (idempotent); the shared handle stays (see ffi)."""
        for rules in self._rule_sets.values():
            rules.close()

    def __enter__(self) -> ModSecurityEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- loading -----------------------------------------------------------------------------

    def _load(self, sources: tuple[RuleSource, ...]) -> RuleSetHandle:
        rules = RuleSetHandle(self._lib)
        try:
            for source in sources:
                if source.kind == "file":
                    rules.add_file(source.name)
                    text = Path(source.name).read_text(encoding="utf-8", errors="replace")
                else:
                    rules.add_text(source.text, source.name)
                    text = source.text
                self._catalog.update(parse_rule_catalog(text))
        except BaseException:
            rules.close()
            raise
        return rules

    # --- one transaction ---------------------------------------------------------------------

    def _run(self, request: HttpRequest, rules: RuleSetHandle, body: bytes) -> _Outcome:
        f = self._lib.f
        key, lines = self._handle.open_sink()
        outcome = _Outcome(lines)
        tx = f.msc_new_transaction(self._handle.pointer, rules.pointer, key)
        if not tx:
            self._handle.close_sink(key)
            raise MemoryError("msc_new_transaction returned NULL")
        try:
            f.msc_process_connection(
                tx,
                _wire(request.client_ip),
                request.client_port,
                self._hostname_b,
                request.server_port,
            )
            uri = _wire(request.uri).replace(b"\x00", b"%00")
            f.msc_process_uri(tx, uri, _wire(request.method), _wire(request.http_version))
            for name, value in request.header_items():
                k, v = _wire(name), _wire(value)
                f.msc_add_n_request_header(tx, k, len(k), v, len(v))
            f.msc_process_request_headers(tx)
            if not self._intervene(tx, outcome):
                if body:
                    f.msc_append_request_body(tx, body, len(body))
                f.msc_process_request_body(tx)
                self._intervene(tx, outcome)
        finally:
            f.msc_process_logging(tx)
            f.msc_transaction_cleanup(tx)
            self._handle.close_sink(key)
        return outcome

    def _intervene(self, tx: int, outcome: _Outcome) -> bool:
        it = Intervention(200, 0, None, None, 0)
        self._lib.f.msc_intervention(tx, ctypes.byref(it))
        self._lib.free(it.url)
        log = self._lib.take_string(it.log)
        if it.disruptive:
            outcome.disruptive = True
            outcome.status = int(it.status)
            outcome.intervention_log = log
        return bool(it.disruptive)

    def _verdict(self, outcome: _Outcome, threshold: int) -> WafVerdict:
        findings: list[Finding] = []
        seen: set[tuple[int, str]] = set()
        score: int | None = None
        disruptive_rule = False
        lines = [raw.decode("utf-8", "replace") for raw in outcome.lines]
        deciding = parse_log_line(outcome.intervention_log, self._hostname)
        if outcome.intervention_log:
            # A deny is reported here, not through the log callback.
            lines.append(outcome.intervention_log)
        for line in lines:
            entry = parse_log_line(line, self._hostname)
            if entry is None:
                continue
            if entry.rule_id == SCORE_RULE_ID:
                score = _int(entry.data)
                continue
            if entry.rule_id in VERDICT_RULE_IDS:
                continue
            info = self._catalog.get(entry.rule_id)
            disruptive_rule = disruptive_rule or bool(info and info.disruptive)
            self._add(findings, seen, entry, info)
        if score is None:
            score = sum(f.score for f in findings)
        anomaly = score >= threshold
        would_block = anomaly or outcome.disruptive or disruptive_rule
        blocked = self.config.mode is WafMode.BLOCK and would_block
        if outcome.disruptive and (deciding is None or deciding.rule_id != _ANOMALY_RULE_ID):
            status = outcome.status  # a site rule's own deny status
        else:
            status = self.config.block_status if would_block else 200
        return WafVerdict(
            engine=self.name,
            mode=self.config.mode,
            blocked=blocked,
            would_block=would_block,
            status=status,
            anomaly_score=score,
            threshold=threshold,
            findings=tuple(findings),
            reason=summarize(findings, score, threshold, would_block),
        )

    def _add(
        self,
        findings: list[Finding],
        seen: set[tuple[int, str]],
        entry: LogEntry,
        info: RuleInfo | None,
    ) -> None:
        marker = (entry.rule_id, entry.data)
        if marker not in seen:
            seen.add(marker)
            findings.append(to_finding(entry, info))


def _extra_rule_files(directory: Path | None) -> tuple[Path, ...]:
    if directory is None:
        return ()
    if not directory.is_dir():
        raise WafConfigError(
            f"waf.extra_rules_dir: {directory} is not a directory; create it or remove the key"
        )
    return tuple(sorted(directory.glob("*.conf")))


def _wire(text: str) -> bytes:
    """Back to the bytes on the wire (see HttpRequest: UTF-8 with surrogate escapes)."""
    return text.encode("utf-8", "surrogateescape")


def _int(text: str) -> int | None:
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else None
