"""The fallback engine's own parts: value views, request splitting, rules as data, selection."""

from __future__ import annotations

from pathlib import Path

import pytest
import re2
from sentinel_agents.waf import (
    CrsUnavailable,
    EngineChoice,
    HttpRequest,
    ModSecurityUnavailable,
    RouteRules,
    WafConfig,
    WafConfigError,
    create_engine,
)
from sentinel_agents.waf.fallback_engine import FallbackEngine
from sentinel_agents.waf.fallback_match import RuleIndex, cannot_match, decode
from sentinel_agents.waf.fallback_rules import RULES, PatternRule
from sentinel_agents.waf.request_parts import Kind, split_request
from waf_helpers import get, multipart_body, post


def test_every_rule_compiles_under_re2_and_ids_are_unique() -> None:
    for rule in RULES:
        re2.compile(rule.pattern)  # raises for PCRE-only syntax (backreferences, look-around)
    ids = [r.rule_id for r in RULES]
    assert len(ids) == len(set(ids))
    assert all(1_900_000 < i < 2_000_000 for i in ids)


def test_alphanumeric_values_skip_matching_safely() -> None:
    assert cannot_match("") and cannot_match("hello") and cannot_match("Zürich2024")
    assert not cannot_match("0xdeadbeefcafe") and not cannot_match("rO0ABXNy")
    assert not cannot_match("a b")
    # Nothing in the rule set can match an alphanumeric value that the fast path skips.
    index = RuleIndex(list(RULES))
    for word in ("union", "select", "passwd", "script", "localhost", "2130706433", "jndi"):
        for kind in Kind:
            assert not [h for h in index.match(kind, word, word) if h.rule.paranoia == 1]


def test_decoding() -> None:
    assert decode("%2e%2e%2f") == "../"
    assert decode("%u003cscript%u003e") == "<script>"
    assert decode("a\x00b") == "ab"
    assert decode("100%") == "100%"


def test_split_request_names_like_modsecurity() -> None:
    body = b'{"user": {"name": "Ann", "tags": ["a", "b"], "age": 7, "ok": true}}'
    parts = split_request(post("/u", body, "application/json"), body)
    names = {(t.name, t.value) for t in parts.targets if t.kind in (Kind.ARG, Kind.ARG_NAME)}
    assert ("ARGS:json.user.name", "Ann") in names
    assert ("ARGS:json.user.tags.array_1", "b") in names
    assert ("ARGS:json.user.age", "7") in names
    assert ("ARGS_NAMES", "json.user.name") in names
    assert parts.body_error == ""


def test_split_request_multipart_and_cookies() -> None:
    body = multipart_body("B0undary", [("title", None, b"Hi there"), ("doc", "a b.pdf", b"%PDF")])
    request = HttpRequest(
        method="POST",
        path="/x",
        query="q=1&q=2",
        headers={
            "Content-Type": ["multipart/form-data; boundary=B0undary"],
            "cookie": ["sid=abc; theme=dark%20mode"],
        },
        body=body,
    )
    parts = split_request(request, body)
    values = {(t.name, t.value) for t in parts.targets}
    assert ("ARGS:title", "Hi there") in values
    assert ("FILES_NAMES", "a b.pdf") in values
    assert ("REQUEST_COOKIES:theme", "dark mode") in values
    assert [v for n, v in values if n == "ARGS:q"] and parts.body_error == ""
    assert not any(t.value == "%PDF" for t in parts.targets)  # file contents are not args


def test_split_request_reports_broken_bodies() -> None:
    deep = b"[" * 200 + b"]" * 200
    assert "deeper" in split_request(post("/j", deep, "application/json"), deep).body_error
    unclosed = b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1'
    request = post("/m", unclosed, "multipart/form-data; boundary=B")
    assert "closing boundary" in split_request(request, unclosed).body_error


def test_rules_are_data() -> None:
    rule = PatternRule(
        rule_id=1_999_001, message="Forbidden word", tag="attack-site", pattern=r"\bexpelliarmus\b"
    )
    engine = FallbackEngine(WafConfig(), rules=[rule])
    verdict = engine.inspect(get("/spell", "cast=Expelliarmus%21"))
    assert verdict.blocked and verdict.rule_ids == (1_999_001,)
    assert verdict.findings[0].matched_data.startswith("Matched Data: expelliarmus")
    assert "1 RE2 rules" in engine.description


def test_crs_ids_in_exclusions_reach_the_fallback_rules() -> None:
    request = get(
        "/search", "q=1%27%20UNION%20SELECT%20password%20FROM%20users%20WHERE%20SLEEP(5)--"
    )
    engine = FallbackEngine(WafConfig())
    before = set(engine.inspect(request).rule_ids)
    assert 1942100 in before and 1942001 in before
    routed = HttpRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=request.headers,
        route="reports",
    )
    excluded = FallbackEngine(
        WafConfig(routes=(RouteRules(route="reports", remove_rule_ids=(942100, 942190)),))
    )
    after = set(excluded.inspect(routed).rule_ids)
    assert 1942100 not in after and 1942001 not in after and after  # others still fire


def test_protocol_checks() -> None:
    engine = FallbackEngine(WafConfig())
    smuggle = post("/c", b"0\r\n\r\nG", "application/x-www-form-urlencoded")
    smuggle.headers["Transfer-Encoding"] = ["chunked"]
    assert 1921110 in engine.inspect(smuggle).rule_ids
    assert 1920440 in engine.inspect(get("/backup/site.sql")).rule_ids
    assert 1913100 in engine.inspect(get("/", User_Agent="Nikto/2.5.0")).rule_ids
    ranges = get("/v.mp4", Range="bytes=" + ",".join(f"{i}-{i + 1}" for i in range(20)))
    assert 1920200 in engine.inspect(ranges).rule_ids
    assert 1943120 in engine.inspect(get("/account", "jsessionid=ABC123")).rule_ids
    assert (
        1943120
        not in engine.inspect(
            get("/account", "jsessionid=ABC123", Referer="https://shop.example.com/")
        ).rule_ids
    )


def test_without_libinjection_patterns_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import sentinel_agents.waf.fallback_engine as module

    monkeypatch.setattr(module, "libinjection", None)
    engine = FallbackEngine(WafConfig())
    assert "no libinjection" in engine.description
    verdict = engine.inspect(get("/s", "q=1%20UNION%20SELECT%20null--"))
    assert verdict.blocked and 1942100 not in verdict.rule_ids


# --- choosing an engine ----------------------------------------------------------------------


def test_missing_library_falls_back_and_says_why() -> None:
    engine = create_engine(WafConfig(library="/nonexistent/libmodsecurity.so.3"))
    assert engine.name == "fallback"
    assert "libmodsecurity v3 could not be loaded" in engine.description
    assert engine.inspect(get("/s", "q=%3Cscript%3Ealert(1)%3C/script%3E")).blocked


def test_missing_crs_falls_back(tmp_path: Path) -> None:
    engine = create_engine(WafConfig(crs_setup=tmp_path / "crs-setup.conf"))
    assert engine.name == "fallback" and "crs_setup" in engine.description


def test_explicit_choices_do_not_fall_back(tmp_path: Path) -> None:
    with pytest.raises(ModSecurityUnavailable, match=r"waf\.library"):
        create_engine(WafConfig(engine=EngineChoice.MODSECURITY, library="/nonexistent/x.so"))
    with pytest.raises(CrsUnavailable):
        create_engine(
            WafConfig(engine=EngineChoice.MODSECURITY, crs_setup=tmp_path / "crs-setup.conf")
        )
    assert create_engine(WafConfig(engine=EngineChoice.FALLBACK)).name == "fallback"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"paranoia_level": 5}, "paranoia_level must be 1, 2, 3 or 4"),
        ({"anomaly_threshold": 0}, "anomaly_threshold must be at least 1"),
        ({"body_limit": 0}, "body_limit"),
        ({"block_status": 200}, "block_status"),
        ({"routes": (RouteRules(route="a"), RouteRules(route="a"))}, "listed twice"),
        ({"routes": (RouteRules(route="b", paranoia_level=9),)}, r"routes\[0\] \('b'\)"),
    ],
)
def test_config_errors_say_what_and_where(settings: dict[str, object], message: str) -> None:
    with pytest.raises(WafConfigError, match=message):
        WafConfig(**settings)  # type: ignore[arg-type]


def test_request_helpers() -> None:
    request = HttpRequest(
        method="GET",
        path="/p",
        query="a=1",
        headers={"X-A": ["1"], "x-a": ["2"], "Cookie": ["k=v%201; e="]},
    )
    assert request.uri == "/p?a=1"
    assert request.header("X-a") == ["1", "2"]
    assert request.cookies == [("k", "v 1"), ("e", "")]
    assert request.content_type == ""
