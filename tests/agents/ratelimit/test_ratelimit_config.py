"""Rate-limit config parsing: typed results and errors that name the key."""

from __future__ import annotations

import tomllib

import pytest
from sentinel_agents.ratelimit import (
    HeaderMatch,
    KeyPart,
    RateLimitConfigError,
    parse_rate_limit_config,
)
from sentinel_agents.ratelimit.gcra import GcraLimit

EXAMPLE = """
dry_run = false
max_keys = 5000

[[rules]]
name = "login"
rate = 5
period = "1m"
burst = 3
key = ["client_ip", "header:X-Api-Key"]
match = { route = "auth", path_prefix = ["/login", "/token"], method = ["post"] }

[[rules]]
name = "default"
rate = 100
dry_run = true
[rules.match.header]
name = "X-Tenant"
value = "beta"
"""


def test_parses_a_toml_table() -> None:
    config = parse_rate_limit_config(tomllib.loads(EXAMPLE))
    assert config.max_keys == 5000
    login, default = config.rules
    assert login.limit == GcraLimit.of(5, 60.0, 3)
    assert login.limit.interval_ns == 12_000_000_000
    assert login.key == (KeyPart("client_ip"), KeyPart("header", "x-api-key"))
    assert login.match.routes == ("auth",)
    assert login.match.path_prefixes == ("/login", "/token")
    assert login.match.methods == ("POST",)
    assert default.dry_run
    assert default.limit.burst == 100  # burst defaults to the rate
    assert default.key == (KeyPart("client_ip"),)
    assert default.match.headers == (HeaderMatch("x-tenant", "beta"),)


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        ({"rules": [{"name": "a", "rate": 1, "brust": 2}]}, "rules[0].brust", "unknown key"),
        ({"rules": [{"name": "a"}]}, "rules[0].rate", "required"),
        ({"rules": [{"rate": 1}]}, "rules[0].name", "required"),
        ({"rules": [{"name": "a", "rate": -1}]}, "rules[0].rate", "positive"),
        ({"rules": [{"name": "a", "rate": 1, "burst": 0}]}, "rules[0].burst", ">= 1"),
        ({"rules": [{"name": "a", "rate": 1, "period": "soon"}]}, "rules[0].period", "duration"),
        (
            {"rules": [{"name": "a", "rate": 1, "key": ["client_ip", "cookie"]}]},
            "rules[0].key[1]",
            "cookie",
        ),
        ({"rules": [{"name": "a", "rate": 1, "key": []}]}, "rules[0].key", "non-empty"),
        (
            {"rules": [{"name": "a", "rate": 1, "match": {"method": [1]}}]},
            "rules[0].match.method[0]",
            "string",
        ),
        (
            {"rules": [{"name": "a", "rate": 1, "match": {"header": {"value": "x"}}}]},
            "rules[0].match.header.name",
            "required",
        ),
        (
            {"rules": [{"name": "a", "rate": 1, "match": {"host": "x"}}]},
            "rules[0].match.host",
            "unknown",
        ),
        (
            {"rules": [{"name": "a", "rate": 1}, {"name": "a", "rate": 2}]},
            "rules[1].name",
            "duplicate",
        ),
        ({"rules": {"name": "a"}}, "rules", "array"),
        ({"dry_run": "yes"}, "dry_run", "true or false"),
        ({"max_keys": 0}, "max_keys", ">= 1"),
    ],
)
def test_errors_name_the_key(table: dict[str, object], key: str, fragment: str) -> None:
    with pytest.raises(RateLimitConfigError) as caught:
        parse_rate_limit_config(table)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")
    assert fragment in str(caught.value)


def test_periods_in_several_spellings() -> None:
    for spelling, seconds in [("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), ("1h", 3600.0), (3, 3.0)]:
        config = parse_rate_limit_config({"rules": [{"name": "a", "rate": 1, "period": spelling}]})
        assert config.rules[0].limit.period_ns == round(seconds * 1e9)
