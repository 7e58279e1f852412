"""Policy engine with real Rego: loading, decisions, hot reload, drift, bundles, decision logs."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import msgspec
import pytest
from sentinel_agents.policy import (
    DecisionLogRecord,
    PolicyEngine,
    PolicyRequest,
    PolicySourceError,
    Reloaded,
    ReloadFailed,
    build_input,
    decision_from_result,
    encode_decision_log,
    load_policy_source,
    policy_source_from_files,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "configs" / "policies"
T0 = 1_700_000_000.0

SIMPLE = """package sentinel.authz
import rego.v1
default allow := false
allow if input.request.method == "GET"
deny contains "only GET" if not allow
status := 200 if allow
status := 403 if not allow
decision := {"allow": allow, "deny": deny, "status": status, "headers": {}}
"""


def policy_dir(tmp_path: Path, rego: str = SIMPLE, data: object | None = None) -> Path:
    root = tmp_path / "policy"
    root.mkdir(exist_ok=True)
    (root / "authz.rego").write_text(rego, encoding="utf-8")
    if data is not None:
        (root / "data.json").write_text(json.dumps(data), encoding="utf-8")
    return root


def loaded(path: Path) -> PolicyEngine:
    engine = PolicyEngine()
    outcome = engine.load(load_policy_source(path))
    assert isinstance(outcome, Reloaded), outcome
    return engine


def test_example_policy_decisions() -> None:
    engine = loaded(EXAMPLE)
    public = engine.evaluate(PolicyRequest("GET", "/", route="static"), T0).decision
    assert (public.allow, public.status, public.reasons) == (True, 200, ())
    assert public.headers == {"x-sentinel-policy": "sentinel.authz"}
    admin = engine.evaluate(PolicyRequest("GET", "/admin/users", route="api"), T0).decision
    assert (admin.allow, admin.status) == (False, 401)
    assert admin.reasons == ("the admin area requires the admin role",)
    method = engine.evaluate(PolicyRequest("POST", "/logo.png", route="static"), T0).decision
    assert (method.allow, method.status) == (False, 405)
    big = engine.evaluate(PolicyRequest("PUT", "/x", route="api", body_size=10**9), T0).decision
    assert big.reasons == ("request body is too large",)


def test_input_document_shape() -> None:
    request = PolicyRequest(
        "get",
        "/a",
        query="x=1&x=2&empty=",
        headers=[("Accept", "a"), ("accept", "b"), ("X-Id", "7")],
        body_size=12,
        client_ip="192.0.2.1",
        client_port=5555,
        route="api",
    )
    assert build_input(request) == {
        "request": {
            "method": "GET",
            "path": "/a",
            "query": {"x": ["1", "2"], "empty": [""]},
            "headers": {"accept": "a, b", "x-id": "7"},
            "body_size": 12,
        },
        "client": {"ip": "192.0.2.1", "port": 5555},
        "route": "api",
        "identity": {"authenticated": False, "claims": {}},
    }


def test_data_json_is_mounted_by_directory(tmp_path: Path) -> None:
    root = policy_dir(
        tmp_path,
        'package sentinel.authz\nimport rego.v1\ndecision := {"allow": data.cfg.limits.on}\n',
    )
    (root / "cfg" / "limits").mkdir(parents=True)
    (root / "cfg" / "limits" / "data.json").write_text('{"on": true}', encoding="utf-8")
    assert loaded(root).evaluate(PolicyRequest("GET", "/"), T0).decision.allow


def test_compile_error_keeps_last_good_policy_and_names_the_place(tmp_path: Path) -> None:
    root = policy_dir(tmp_path)
    engine = loaded(root)
    good_revision = engine.revision
    (root / "authz.rego").write_text("package sentinel.authz\n\ndecision := {\n", encoding="utf-8")
    outcome = engine.load(load_policy_source(root))
    assert isinstance(outcome, ReloadFailed)
    assert outcome.running_revision == good_revision
    assert any(d.startswith("authz.rego:3:") for d in outcome.error.diagnostics)
    assert engine.revision == good_revision
    assert engine.evaluate(PolicyRequest("GET", "/"), T0).decision.allow


def test_policy_failing_at_runtime_is_refused(tmp_path: Path) -> None:
    root = policy_dir(tmp_path)
    engine = loaded(root)
    (root / "authz.rego").write_text(
        "package sentinel.authz\ndecision := no_such_function(input)\n", encoding="utf-8"
    )
    outcome = engine.load(load_policy_source(root))
    assert isinstance(outcome, ReloadFailed)
    assert "no_such_function" in outcome.error.message
    assert engine.evaluate(PolicyRequest("GET", "/"), T0).decision.allow


def test_hot_reload_swaps_and_reports_revisions(tmp_path: Path) -> None:
    root = policy_dir(tmp_path)
    engine = loaded(root)
    first = engine.revision
    (root / "authz.rego").write_text(SIMPLE.replace('"GET"', '"POST"'), encoding="utf-8")
    drift = engine.drift(root)
    assert drift.drifted and drift.running == first
    outcome = engine.load_path(root, isolate=False)
    assert isinstance(outcome, Reloaded)
    assert outcome.previous_revision == first and outcome.revision != first
    assert not engine.drift(root).drifted
    assert engine.evaluate(PolicyRequest("POST", "/"), T0).decision.allow
    assert not engine.evaluate(PolicyRequest("GET", "/"), T0).decision.allow


def test_isolated_reload_survives_a_policy_that_crashes_rego_cpp(tmp_path: Path) -> None:
    root = policy_dir(tmp_path)
    engine = loaded(root)
    # Compiling this aborts rego-cpp's process; the check runs in a child, so we survive.
    (root / "crash.rego").write_text(
        'package crash\nimport rego.v1\np if startswith(input.path, "/a")\n'
        'q if { p with input as {"path": "/a"} }\n',
        encoding="utf-8",
    )
    outcome = engine.load_path(root)
    assert isinstance(outcome, ReloadFailed)
    assert "crashed" in outcome.error.message
    assert engine.evaluate(PolicyRequest("GET", "/"), T0).decision.allow


def test_isolated_reload_of_a_good_policy(tmp_path: Path) -> None:
    engine = PolicyEngine()
    outcome = engine.load_path(EXAMPLE)
    assert isinstance(outcome, Reloaded)
    assert engine.digest == load_policy_source(EXAMPLE).digest


def test_no_policy_loaded_denies_with_error() -> None:
    decision = PolicyEngine().evaluate(PolicyRequest("GET", "/"), T0).decision
    assert not decision.allow and decision.status == 503 and decision.error


def test_unreadable_source_is_a_failed_reload(tmp_path: Path) -> None:
    outcome = PolicyEngine().load_path(tmp_path / "missing", isolate=False)
    assert isinstance(outcome, ReloadFailed)
    assert outcome.running_revision is None


def test_bundle_tarball_with_manifest_revision(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    with tarfile.open(bundle, "w:gz") as archive:
        for name, text in [
            ("/authz.rego", SIMPLE),
            ("/.manifest", json.dumps({"revision": "v42", "roots": ["sentinel"]})),
            ("/sentinel/settings/data.json", '{"x": 1}'),
        ]:
            payload = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    source = load_policy_source(bundle)
    assert source.revision == "v42"
    assert source.digest.startswith("sha256:")
    assert source.roots == ("sentinel",)
    assert source.data == {"sentinel": {"settings": {"x": 1}}}
    engine = PolicyEngine()
    assert isinstance(engine.load(source), Reloaded)
    assert engine.revision == "v42"


def test_bundle_path_escape_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "evil.tar.gz"
    with tarfile.open(bundle, "w:gz") as archive:
        info = tarfile.TarInfo("../authz.rego")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(PolicySourceError, match="escapes"):
        load_policy_source(bundle)


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"a_test.rego": b"package t"}, "no .rego policy modules"),
        ({"a.rego": b"package a", "data.json": b"{oops"}, "invalid JSON"),
        ({"a.rego": b"package a", "data.json": b"[1]"}, "must be a JSON object"),
        ({"a.rego": b"\xff"}, "not UTF-8"),
        ({"a.rego": b"package a", "data.json": b'{"k": 1}', "k/data.json": b"{}"}, "twice"),
    ],
)
def test_source_errors(files: dict[str, bytes], fragment: str) -> None:
    with pytest.raises(PolicySourceError, match=fragment):
        policy_source_from_files("mem", files)


def test_digest_changes_with_any_file_and_tests_are_not_served(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(EXAMPLE, root)
    source = load_policy_source(root)
    assert list(source.test_modules) == ["sentinel/authz_test.rego"]
    assert "sentinel/authz_test.rego" not in source.modules
    (root / "sentinel" / "config" / "data.json").write_text('{"admin_prefixes": []}')
    assert load_policy_source(root).digest != source.digest


@pytest.mark.parametrize(
    ("result", "allow", "status", "error"),
    [
        ({"allow": True}, True, 200, None),
        ({"allow": False}, False, 403, None),
        ({"allow": "yes"}, False, 403, "allow must be a boolean"),
        ({"allow": True, "status": 99}, False, 403, "status"),
        ({"allow": True, "deny": ["x"]}, False, 403, None),
        ({"allow": True, "headers": {"a": 1}}, False, 403, "headers"),
        (None, False, 403, None),
    ],
)
def test_decision_parsing_fails_closed(
    result: object, allow: bool, status: int, error: str | None
) -> None:
    decision = decision_from_result(result)
    assert (decision.allow, decision.status) == (allow, status)
    if error is None:
        assert decision.error is None
    else:
        assert decision.error is not None and error in decision.error


def test_decision_log_record(tmp_path: Path) -> None:
    engine = loaded(policy_dir(tmp_path))
    request = PolicyRequest("GET", "/", headers={"authorization": "Bearer x", "accept": "*/*"})
    evaluation = engine.evaluate(request, T0)
    record = engine.decision_log(evaluation, T0, decision_id="d-1")
    assert record.decision_id == "d-1"
    assert record.path == "sentinel/authz/decision"
    assert record.timestamp == "2023-11-14T22:13:20Z"
    assert record.result == {"allow": True, "deny": [], "status": 200, "headers": {}}
    assert record.input["request"]["headers"] == {"authorization": "<redacted>", "accept": "*/*"}
    assert evaluation.input["request"]["headers"]["authorization"] == "Bearer x"
    assert record.bundles["sentinel"].revision == engine.revision
    decoded = msgspec.json.decode(encode_decision_log(record), type=DecisionLogRecord)
    assert decoded == record
    assert (
        engine.decision_log(evaluation, T0).decision_id
        != engine.decision_log(evaluation, T0).decision_id
    )


def test_bad_decision_path_is_refused() -> None:
    with pytest.raises(ValueError, match="decision path"):
        PolicyEngine(decision_path="sentinel/authz/decision; x")
    assert PolicyEngine(decision_path="/data/a/b").query_ref == "data.a.b"
