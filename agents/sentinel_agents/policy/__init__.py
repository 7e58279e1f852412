"""Policy agent core: real Rego (rego-cpp via regopy) over a documented input document.

The agent wrapper builds a `PolicyEngine` (decision path, optional JWT `IdentityConfig`),
calls `load_path(dir_or_bundle)` at start and on change, `evaluate(request, now)` per
request (compiled once, ~0.2 ms per evaluation), `decision_log(evaluation, now)` for the
audit/event stream, and `drift(path)` to notice a policy on disk that is not serving.
`run_policy_tests(path)` runs the policy's own ``test_*`` rules. See docs/agents.md.
"""

from sentinel_agents.policy import _preload  # noqa: F401  (first: see _preload)
from sentinel_agents.policy.decision_log import (
    BundleInfo,
    DecisionLogRecord,
    encode_decision_log,
    make_decision_log,
    redact_input,
)
from sentinel_agents.policy.document import (
    PolicyDecision,
    PolicyRequest,
    build_input,
    decision_from_result,
)
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
from sentinel_agents.policy.identity import (
    ANONYMOUS,
    Identity,
    IdentityConfig,
    IdentityConfigError,
    identify,
    parse_identity_config,
    verify_token,
)
from sentinel_agents.policy.isolated import (
    PolicyTestReport,
    PolicyTestResult,
    check_in_child,
    discover_tests,
    run_policy_tests,
)
from sentinel_agents.policy.source import (
    PolicySource,
    PolicySourceError,
    load_policy_source,
    policy_digest,
    policy_source_from_files,
)

__all__ = [
    "ANONYMOUS",
    "DEFAULT_DECISION_PATH",
    "BundleInfo",
    "DecisionLogRecord",
    "DriftStatus",
    "Identity",
    "IdentityConfig",
    "IdentityConfigError",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyEvaluation",
    "PolicyLoadError",
    "PolicyRequest",
    "PolicySource",
    "PolicySourceError",
    "PolicyTestReport",
    "PolicyTestResult",
    "ReloadFailed",
    "ReloadOutcome",
    "Reloaded",
    "build_input",
    "check_in_child",
    "decision_from_result",
    "discover_tests",
    "encode_decision_log",
    "identify",
    "load_policy_source",
    "make_decision_log",
    "parse_identity_config",
    "policy_digest",
    "policy_source_from_files",
    "redact_input",
    "run_policy_tests",
    "verify_token",
]
