"""Compiling and testing policies in a child process, so rego-cpp cannot take the agent down.

rego-cpp aborts the process (C++ ``std::terminate``) on some valid Rego — notably
``with input as {...}`` over rules that call built-ins, which is how most policy tests are
written. An abort is not an exception: the only protection is to compile in a process we
can afford to lose. The child is ``python -m sentinel_agents.policy.child`` and answers with
one JSON object on stdout; a child killed by a signal becomes a readable error.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentinel_agents
from sentinel_agents.policy.engine import DEFAULT_DECISION_PATH, PolicyLoadError

CHILD_TIMEOUT_S = 60.0
_PACKAGE = re.compile(r"^package\s+([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]*)\b", re.MULTILINE)
CRASH_HINT = (
    "known rego-cpp trigger: `with input as {...}` over a rule that calls a built-in; "
    "mock input fields instead, e.g. `with input.request as {...} with input.identity as {...}`"
)


@dataclass(frozen=True, slots=True)
class PolicyTestResult:
    """One Rego test rule: ``data.<package>.test_<name>`` and how it went."""

    name: str
    passed: bool
    error: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class PolicyTestReport:
    """All tests of a policy; ``error`` is set when the suite could not run at all."""

    results: tuple[PolicyTestResult, ...]
    error: str | None = None

    @property
    def passed(self) -> bool:
        """True when the suite ran, found at least one test, and every test passed."""
        return self.error is None and bool(self.results) and all(r.passed for r in self.results)

    @property
    def counts(self) -> tuple[int, int]:
        """(passed, failed) test counts."""
        passed = sum(r.passed for r in self.results)
        return passed, len(self.results) - passed


def run_policy_tests(path: Path, *, timeout: float = CHILD_TIMEOUT_S) -> PolicyTestReport:
    """Run the policy's own Rego tests (``test_*`` rules, OPA-style) in a child process."""
    answer = _run_child(["test", str(path)], timeout)
    if isinstance(answer, str):
        return PolicyTestReport((), answer)
    if answer.get("error"):
        return PolicyTestReport((), str(answer["error"]))
    results = tuple(
        PolicyTestResult(str(r["name"]), bool(r["passed"]), r.get("error"), float(r["duration_ms"]))
        for r in answer.get("results", [])
    )
    return PolicyTestReport(results)


def check_in_child(
    path: Path, decision_path: str = DEFAULT_DECISION_PATH, *, timeout: float = CHILD_TIMEOUT_S
) -> str | PolicyLoadError:
    """Compile the policy at ``path`` in a child: its digest when it loads, else the error."""
    answer = _run_child(["check", str(path), decision_path], timeout)
    if isinstance(answer, str):
        return PolicyLoadError(str(path), answer)
    if answer.get("ok"):
        return str(answer["digest"])
    return PolicyLoadError(
        str(answer.get("origin", path)),
        str(answer.get("message", "policy failed to load")),
        tuple(str(d) for d in answer.get("diagnostics", [])),
    )


def discover_tests(modules: Mapping[str, str]) -> list[str]:
    """References of every top-level ``test_*`` rule, e.g. ``data.sentinel.authz_test.test_x``."""
    refs: list[str] = []
    for source in modules.values():
        package = _PACKAGE.search(source)
        if package is None:
            continue
        prefix = package.group(1).removeprefix("data.")
        for rule in _TEST_RULE.findall(source):
            ref = f"data.{prefix}.{rule}"
            if ref not in refs:
                refs.append(ref)
    return refs


def _run_child(args: list[str], timeout: float) -> dict[str, Any] | str:
    """Run the child; its JSON answer, or a sentence saying why there is none."""
    package_root = str(Path(sentinel_agents.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "sentinel_agents.policy.child", *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return f"the policy child did not finish within {timeout:g} s"
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return f"the Rego engine crashed ({name}) compiling this policy; {CRASH_HINT}"
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        tail = done.stderr.strip().splitlines()[-3:]
        return f"the policy child failed (exit {done.returncode}): {' | '.join(tail)}"
    return answer if isinstance(answer, dict) else "the policy child gave no answer"
