"""Route matching: host, path, method and header conditions, and the order rules are tried in."""

from __future__ import annotations

import pytest

from sentinel_stack.config.schema import RouteConfig
from sentinel_stack.proxy.routing import REGEX_ENGINE, Route, RouteTable, normalize_host


def table(*routes: Route) -> RouteTable:
    return RouteTable(list(routes))


def id_of(route: Route | None) -> str:
    return route.id if route else "-"


def matched_id(rt: RouteTable, path: str, host: str = "example.com", method: str = "GET") -> str:
    return id_of(rt.match(host, path, method))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com.", "example.com"),
        ("[::1]:8443", "[::1]"),
        ("[::1]", "[::1]"),
        ("  a.b  ", "a.b"),
        ("", ""),
    ],
)
def test_normalize_host(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected


def test_exact_host_is_case_insensitive_and_ignores_port() -> None:
    rt = table(Route("r", "up", host="API.example.com"))
    assert matched_id(rt, "/", host="api.EXAMPLE.com:8443") == "r"
    assert matched_id(rt, "/", host="www.example.com") == "-"
    assert matched_id(rt, "/", host="") == "-"


def test_wildcard_host_needs_at_least_one_label() -> None:
    rt = table(Route("r", "up", host="*.example.com"))
    assert matched_id(rt, "/", host="a.example.com") == "r"
    assert matched_id(rt, "/", host="a.b.example.com:80") == "r"
    assert matched_id(rt, "/", host="example.com") == "-"
    assert matched_id(rt, "/", host="badexample.com") == "-"
    assert matched_id(rt, "/", host=".example.com") == "-"


def test_route_without_host_or_with_star_matches_any_host() -> None:
    rt = table(Route("star", "up", host="*", path="/s"), Route("none", "up", path="/n"))
    assert matched_id(rt, "/s", host="anything") == "star"
    assert matched_id(rt, "/n", host="") == "none"


def test_exact_path() -> None:
    rt = table(Route("r", "up", path="/login"))
    assert matched_id(rt, "/login") == "r"
    assert matched_id(rt, "/login/") == "-"
    assert matched_id(rt, "/Login") == "-"


@pytest.mark.parametrize(
    ("path", "matches"),
    [("/api", True), ("/api/", True), ("/api/x/y", True), ("/apix", False), ("/ap", False)],
)
def test_prefix_is_segment_aware(path: str, matches: bool) -> None:
    rt = table(Route("r", "up", path_prefix="/api"))
    assert (matched_id(rt, path) == "r") is matches


def test_prefix_with_trailing_slash_needs_the_slash() -> None:
    rt = table(Route("r", "up", path_prefix="/api/"))
    assert matched_id(rt, "/api/x") == "r"
    assert matched_id(rt, "/api/") == "r"
    assert matched_id(rt, "/api") == "-"


def test_root_prefix_matches_everything() -> None:
    rt = table(Route("r", "up", path_prefix="/"))
    assert matched_id(rt, "/") == "r"
    assert matched_id(rt, "/deep/path") == "r"


def test_regex_must_match_the_whole_path() -> None:
    rt = table(Route("r", "up", path_regex=r"/users/[0-9]+"))
    assert matched_id(rt, "/users/42") == "r"
    assert matched_id(rt, "/users/42/edit") == "-"
    assert matched_id(rt, "/x/users/42") == "-"


def test_methods_are_case_insensitive_and_empty_means_any() -> None:
    rt = table(
        Route("writes", "up", path="/x", methods=frozenset({"post", "PUT"})),
        Route("any", "up", path_prefix="/"),
    )
    assert matched_id(rt, "/x", method="post") == "writes"
    assert matched_id(rt, "/x", method="PUT") == "writes"
    assert matched_id(rt, "/x", method="GET") == "any"


def test_headers_match_by_name_case_insensitively_and_value_exactly() -> None:
    rt = table(
        Route("beta", "up", headers=(("X-Beta", "1"), ("accept", "application/json")), priority=1),
        Route("default", "up"),
    )
    both = [("x-beta", "1"), ("Accept", "application/json")]
    assert id_of(rt.match("h", "/", "GET", both)) == "beta"
    assert id_of(rt.match("h", "/", "GET", [("x-beta", "1")])) == "default"
    wrong_case = [("x-beta", "1"), ("accept", "Application/JSON")]
    assert id_of(rt.match("h", "/", "GET", wrong_case)) == "default"
    # A repeated header matches when any of its values does.
    repeated = [("x-beta", "0"), ("x-beta", "1"), ("accept", "application/json")]
    assert id_of(rt.match("h", "/", "GET", repeated)) == "beta"


def test_priority_beats_specificity() -> None:
    rt = table(
        Route("exact", "up", path="/api/x"),
        Route("catch_all", "up", priority=10),
    )
    assert matched_id(rt, "/api/x") == "catch_all"


def test_specificity_orders_exact_regex_longer_prefix_shorter_prefix_any() -> None:
    routes = [
        Route("any", "up"),
        Route("short", "up", path_prefix="/a"),
        Route("long", "up", path_prefix="/a/b"),
        Route("regex", "up", path_regex=r"/a/b/.*"),
        Route("exact", "up", path="/a/b/c"),
    ]
    rt = RouteTable(routes)
    assert [r.id for r in rt.routes] == ["exact", "regex", "long", "short", "any"]
    assert matched_id(rt, "/a/b/c") == "exact"
    assert matched_id(rt, "/a/b/d") == "regex"
    assert matched_id(rt, "/a/b") == "long"
    assert matched_id(rt, "/a/z") == "short"
    assert matched_id(rt, "/z") == "any"
    # The same routes in another config order are tried in the same order.
    assert RouteTable(routes[::-1]).routes == rt.routes


def test_config_order_breaks_ties() -> None:
    rt = table(
        Route("first", "up", path_prefix="/x", methods=frozenset({"GET"})),
        Route("second", "up", path_prefix="/x"),
    )
    assert matched_id(rt, "/x") == "first"
    assert matched_id(rt, "/x", method="POST") == "second"


def test_no_route_matches_returns_none() -> None:
    assert table(Route("r", "up", path="/a")).match("h", "/b", "GET") is None
    assert table().match("h", "/", "GET") is None


def test_from_config_carries_the_route_settings() -> None:
    configs = [
        RouteConfig(
            id="api",
            upstream="app",
            host="*.example.com",
            path_prefix="/api",
            methods=["get"],
            headers={"X-Tenant": "a"},
            priority=3,
            agents=["waf"],
            failure_mode="closed",
            inspect_body=True,
            max_body=10,
        ),
        RouteConfig(id="rest", upstream="app"),
    ]
    rt = RouteTable.from_config(configs)
    route = rt.match("x.example.com", "/api/v1", "GET", [("x-tenant", "a")])
    assert route is not None
    assert route.id == "api"
    assert route.upstream == "app"
    assert route.methods == frozenset({"GET"})
    assert route.agents == ("waf",)
    assert route.failure_mode == "closed"
    assert route.inspect_body is True
    assert route.max_body == 10
    fallback = rt.match("x.example.com", "/api/v1", "GET")
    assert fallback is not None
    assert fallback.id == "rest"
    assert fallback.agents is None


def test_config_paths_are_normalised() -> None:
    rt = table(Route("r", "up", path_prefix="/a//b/./c"))
    assert matched_id(rt, "/a/b/c/d") == "r"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route("r", "up", path="/a", path_prefix="/b"), "set one of path / path_prefix"),
        (Route("r", "up", path_prefix="api"), "is not a usable path"),
        (Route("r", "up", path="/../x"), "is not a usable path"),
        (Route("r", "up", path_regex="/(a"), "path_regex"),
        (Route("r", "up", host="api.*.com"), "only a leading `*.`"),
    ],
)
def test_unusable_routes_are_refused_with_the_route_id(route: Route, message: str) -> None:
    with pytest.raises(ValueError, match=r"route `r`") as info:
        RouteTable([route])
    assert message in str(info.value)


def test_duplicate_route_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="used twice"):
        table(Route("r", "up"), Route("r", "up2"))


@pytest.mark.skipif(REGEX_ENGINE != "re2", reason="google-re2 is not installed")
def test_re2_refuses_backreferences_and_runs_pathological_patterns_linearly() -> None:
    with pytest.raises(ValueError, match="RE2 syntax"):
        table(Route("r", "up", path_regex=r"/(a)\1"))
    # Exponential for a backtracking engine (it would hit the test timeout); linear for RE2.
    rt = table(Route("r", "up", path_regex=r"/(a+)+b"))
    assert matched_id(rt, "/" + "a" * 50_000) == "-"


def test_regex_engine_is_re2_here() -> None:
    # google-re2 is a dependency of the WAF too; losing it silently would lose linear time.
    assert REGEX_ENGINE == "re2"
