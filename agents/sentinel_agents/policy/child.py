"""The child process behind `sentinel_agents.policy.isolated`: compile or test one policy.

``python -m sentinel_agents.policy.child check PATH [DECISION_PATH]`` or ``test PATH``
prints one JSON object. Kept out of the package's imports so that running it with ``-m``
does not import it twice, and so that it is the only code that runs rego-cpp on an
untrusted policy.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from sentinel_agents.policy.engine import DEFAULT_DECISION_PATH, PolicyEngine, ReloadFailed
from sentinel_agents.policy.isolated import discover_tests
from sentinel_agents.policy.rego import UNDEFINED, RegoCompileError, RegoEvalError, rego_queries
from sentinel_agents.policy.source import PolicySourceError, load_policy_source


def _child_check(path: Path, decision_path: str) -> dict[str, Any]:
    try:
        source = load_policy_source(path)
    except PolicySourceError as exc:
        return {"ok": False, "origin": exc.where, "message": exc.message}
    outcome = PolicyEngine(decision_path=decision_path).load(source)
    if isinstance(outcome, ReloadFailed):
        error = outcome.error
        return {
            "ok": False,
            "origin": error.origin,
            "message": error.message,
            "diagnostics": list(error.diagnostics),
        }
    return {"ok": True, "digest": source.digest}


def _child_test(path: Path) -> dict[str, Any]:
    try:
        source = load_policy_source(path)
    except PolicySourceError as exc:
        return {"error": str(exc)}
    modules = {**source.modules, **source.test_modules}
    refs = discover_tests(modules)
    if not refs:
        return {"error": f"{path}: no test_* rules found"}
    results = []
    for ref in refs:
        # A fresh interpreter per test, as `opa test` isolates tests: rego-cpp memoises
        # rule values, and one test's mocks must not leak into the next.
        started = time.perf_counter()
        try:
            value = rego_queries(modules, source.data, [ref])[ref]
        except RegoCompileError as exc:
            return {"error": f"{path}: {exc}"}
        per_test_ms = (time.perf_counter() - started) * 1000
        if isinstance(value, RegoEvalError):
            results.append(
                {"name": ref, "passed": False, "error": str(value), "duration_ms": per_test_ms}
            )
        else:
            passed = value is not UNDEFINED and value is not False
            error = None if passed else ("undefined" if value is UNDEFINED else "false")
            results.append(
                {"name": ref, "passed": passed, "error": error, "duration_ms": per_test_ms}
            )
    return {"results": results}


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``check PATH [DECISION_PATH]`` or ``test PATH``; prints JSON."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) >= 2 and args[0] == "check":
        answer = _child_check(Path(args[1]), args[2] if len(args) > 2 else DEFAULT_DECISION_PATH)
    elif len(args) == 2 and args[0] == "test":
        answer = _child_test(Path(args[1]))
    else:
        print("usage: python -m sentinel_agents.policy.isolated check|test PATH", file=sys.stderr)
        return 2
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
