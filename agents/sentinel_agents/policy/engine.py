"""The policy engine: one compiled policy serving decisions, replaced atomically on reload.

A reload compiles the new policy completely (and evaluates it once on a sample input)
before a single attribute assignment makes it current. Anything that fails on the way
leaves the running policy untouched and comes back as a `ReloadFailed` naming what was
wrong and where, for the wrapper to alert on: a broken edit on disk must never take the
policy down.

Drift: the engine remembers the digest of what it compiled; `PolicyEngine.drift` compares
it with what is on disk now (an edit not yet reloaded, or a reload that failed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel_agents.policy.decision_log import BundleInfo, DecisionLogRecord, make_decision_log
from sentinel_agents.policy.document import (
    PolicyDecision,
    PolicyRequest,
    build_input,
    decision_from_result,
)
from sentinel_agents.policy.identity import IdentityConfig, identify
from sentinel_agents.policy.rego import (
    UNDEFINED,
    RegoCompileError,
    RegoEvalError,
    RegoProgram,
)
from sentinel_agents.policy.source import PolicySource, PolicySourceError, load_policy_source

DEFAULT_DECISION_PATH = "sentinel/authz/decision"
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True)
class PolicyLoadError:
    """Why a policy could not be loaded: the source, a summary, and placed diagnostics."""

    origin: str
    message: str
    diagnostics: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}"


@dataclass(frozen=True, slots=True)
class Reloaded:
    """The new policy is serving; ``previous_revision`` is None on the first load."""

    revision: str
    digest: str
    previous_revision: str | None


@dataclass(frozen=True, slots=True)
class ReloadFailed:
    """The candidate was refused; ``running_revision`` (if any) keeps serving."""

    error: PolicyLoadError
    running_revision: str | None


ReloadOutcome = Reloaded | ReloadFailed


@dataclass(frozen=True, slots=True)
class DriftStatus:
    """Running digest against the digest on disk; ``error`` when the disk copy is unreadable."""

    running: str | None
    on_disk: str | None
    error: str | None = None

    @property
    def drifted(self) -> bool:
        """True when what serves is not what is on disk."""
        return self.running != self.on_disk


@dataclass(frozen=True, slots=True)
class PolicyEvaluation:
    """One evaluation: what went in, what the policy said, and what it means."""

    input: dict[str, Any]
    result: Any
    decision: PolicyDecision
    revision: str | None
    digest: str | None
    identity_error: str | None = None


@dataclass(frozen=True, slots=True)
class _Loaded:
    source: PolicySource
    program: RegoProgram


@dataclass(slots=True)
class PolicyEngine:
    """Evaluates requests against the current policy; see the module docstring."""

    decision_path: str = DEFAULT_DECISION_PATH
    identity: IdentityConfig | None = None
    bundle_name: str = "sentinel"
    _current: _Loaded | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.decision_path = self.decision_path.strip("/").removeprefix("data/")
        if not _PATH.match(self.decision_path):
            raise ValueError(
                f"decision path {self.decision_path!r} must look like 'sentinel/authz/decision'"
            )

    @property
    def query_ref(self) -> str:
        """The decision as a Rego reference, e.g. ``data.sentinel.authz.decision``."""
        return "data." + self.decision_path.replace("/", ".")

    @property
    def revision(self) -> str | None:
        """Revision of the serving policy (manifest revision, else digest), None if none."""
        return None if self._current is None else self._current.source.revision

    @property
    def digest(self) -> str | None:
        """Content digest of the serving policy, None if none has loaded."""
        return None if self._current is None else self._current.source.digest

    def load(self, source: PolicySource) -> ReloadOutcome:
        """Compile ``source`` and make it current if it compiles and evaluates."""
        previous = self.revision
        try:
            program = RegoProgram(source.modules, source.data, self.query_ref)
            program.evaluate(build_input(PolicyRequest(method="GET", path="/")))
        except RegoCompileError as exc:
            diagnostics = tuple(str(d) for d in exc.diagnostics)
            return ReloadFailed(PolicyLoadError(source.origin, str(exc), diagnostics), previous)
        except RegoEvalError as exc:
            error = PolicyLoadError(source.origin, f"policy fails on a sample request: {exc}")
            return ReloadFailed(error, previous)
        self._current = _Loaded(source, program)
        return Reloaded(source.revision, source.digest, previous)

    def load_path(self, path: Path, *, isolate: bool = True) -> ReloadOutcome:
        """Read and load the policy at ``path``; with ``isolate``, compile it in a child first.

        Isolation protects this process from rego-cpp aborting on some inputs (see
        `sentinel_agents.policy.rego`); it costs one short-lived Python process per reload.
        """
        try:
            source = load_policy_source(path)
        except PolicySourceError as exc:
            return ReloadFailed(PolicyLoadError(exc.where, exc.message), self.revision)
        if isolate:
            from sentinel_agents.policy.isolated import check_in_child

            checked = check_in_child(path, self.decision_path)
            if isinstance(checked, PolicyLoadError):
                return ReloadFailed(checked, self.revision)
            if checked != source.digest:
                message = "policy changed on disk while it was being checked; reload again"
                return ReloadFailed(PolicyLoadError(str(path), message), self.revision)
        return self.load(source)

    def drift(self, path: Path) -> DriftStatus:
        """Compare the serving digest with the digest of ``path`` now."""
        try:
            on_disk = load_policy_source(path).digest
        except PolicySourceError as exc:
            return DriftStatus(self.digest, None, str(exc))
        return DriftStatus(self.digest, on_disk)

    def evaluate(self, request: PolicyRequest, now: float) -> PolicyEvaluation:
        """Decide ``request`` at ``now`` (epoch seconds, for token expiry)."""
        identity = identify(_header_map(request), self.identity, now)
        document = build_input(request, identity)
        return self._evaluate_document(document, identity.error)

    def evaluate_input(self, document: dict[str, Any]) -> PolicyEvaluation:
        """Decide a ready-made input document (tools, tests, replaying a decision log)."""
        return self._evaluate_document(document, None)

    def decision_log(
        self, evaluation: PolicyEvaluation, now: float, decision_id: str | None = None
    ) -> DecisionLogRecord:
        """The OPA-style decision-log record for ``evaluation`` made at ``now``."""
        return make_decision_log(
            path=self.decision_path,
            input_document=evaluation.input,
            result=evaluation.result,
            now=now,
            bundle_name=self.bundle_name,
            bundle=BundleInfo(evaluation.revision or "", evaluation.digest or ""),
            error=evaluation.decision.error,
            decision_id=decision_id,
        )

    def _evaluate_document(
        self, document: dict[str, Any], identity_error: str | None
    ) -> PolicyEvaluation:
        current = self._current
        if current is None:
            decision = PolicyDecision(False, 503, ("no policy loaded",), error="no policy loaded")
            return PolicyEvaluation(document, None, decision, None, None, identity_error)
        try:
            result = current.program.evaluate(document)
        except RegoEvalError as exc:
            decision = PolicyDecision(False, 500, ("policy error",), error=str(exc))
            return PolicyEvaluation(
                document,
                None,
                decision,
                current.source.revision,
                current.source.digest,
                identity_error,
            )
        value = None if result is UNDEFINED else result
        return PolicyEvaluation(
            document,
            value,
            decision_from_result(value),
            current.source.revision,
            current.source.digest,
            identity_error,
        )


def _header_map(request: PolicyRequest) -> dict[str, str]:
    raw = request.headers
    pairs = raw.items() if isinstance(raw, Mapping) else raw
    return {name.lower(): value for name, value in pairs}
