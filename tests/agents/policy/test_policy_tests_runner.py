"""run_policy_tests: the policy's own test_ rules, pass and fail reported per test."""

from __future__ import annotations

from pathlib import Path

from sentinel_agents.policy import discover_tests, run_policy_tests

EXAMPLE = Path(__file__).resolve().parents[3] / "configs" / "policies"

POLICY = """package app
import rego.v1
allow if input.user == "admin"
"""

TESTS = """package app_test
import rego.v1
test_admin_allowed if {
	u := "admin"
	data.app.allow with input.user as u
}
test_guest_refused if {
	u := "guest"
	not data.app.allow with input.user as u
}
test_wrong_expectation if {
	u := "guest"
	data.app.allow with input.user as u
}
test_false_value := false
"""


def test_shipped_example_policy_tests_pass() -> None:
    report = run_policy_tests(EXAMPLE)
    assert report.error is None
    assert report.passed
    assert len(report.results) >= 8
    assert all(r.name.startswith("data.sentinel.authz_test.test_") for r in report.results)


def test_pass_and_fail_reported_per_test(tmp_path: Path) -> None:
    (tmp_path / "app.rego").write_text(POLICY, encoding="utf-8")
    (tmp_path / "app_test.rego").write_text(TESTS, encoding="utf-8")
    report = run_policy_tests(tmp_path)
    assert report.error is None
    outcome = {r.name.rsplit(".", 1)[1]: (r.passed, r.error) for r in report.results}
    assert outcome == {
        "test_admin_allowed": (True, None),
        "test_guest_refused": (True, None),
        "test_wrong_expectation": (False, "undefined"),
        "test_false_value": (False, "false"),
    }
    assert report.counts == (2, 2)
    assert not report.passed


def test_engine_crash_is_a_suite_error_not_our_crash(tmp_path: Path) -> None:
    (tmp_path / "app.rego").write_text(
        'package app\nimport rego.v1\nallow if startswith(input.path, "/a")\n', encoding="utf-8"
    )
    (tmp_path / "app_test.rego").write_text(
        "package app_test\nimport rego.v1\n"
        'test_x if { data.app.allow with input as {"path": "/a"} }\n',
        encoding="utf-8",
    )
    report = run_policy_tests(tmp_path)
    assert report.results == ()
    assert report.error is not None and "crashed" in report.error
    assert "with input.request as" in report.error
    assert not report.passed


def test_no_tests_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "app.rego").write_text(POLICY, encoding="utf-8")
    report = run_policy_tests(tmp_path)
    assert report.error is not None and "no test_" in report.error


def test_discovery_reads_packages_and_rules() -> None:
    refs = discover_tests(
        {"a.rego": "package x.y\ntest_a if true\ntest_a if false\nnot_test if true\n"}
    )
    assert refs == ["data.x.y.test_a"]
