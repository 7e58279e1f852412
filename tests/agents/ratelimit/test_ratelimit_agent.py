"""The rate-limit agent as a real process, and behind the proxy."""

from __future__ import annotations

import json
import sys

from sentinel_stack.agent import connect_agent
from sentinel_stack.protocol import Allow, Block
from tests.agents.agent_programs import FAST_HEALTH, agent_process, proxy_linked, request, short_tmp
from tests.proxy.e2e import ProxyKit

RULES = {
    "rules": [
        {"name": "login", "rate": 2, "period": "1m", "match": {"path_prefix": ["/login"]}},
        {
            "name": "tenant",
            "rate": 1,
            "period": "1h",
            "key": ["header:x-tenant"],
            "match": {"path_prefix": ["/t"]},
        },
    ]
}


async def test_refuses_over_the_rate_with_headers_and_takes_new_rules() -> None:
    with short_tmp() as tmp:
        config = tmp / "ratelimit.json"
        config.write_text(json.dumps(RULES))
        async with (
            agent_process(
                "sentinel_agents.ratelimit", tmp, "--config", str(config), *FAST_HEALTH
            ) as agent,
            connect_agent(agent.socket) as conn,
        ):
            first = await conn.decide(request(1, "/login"))
            assert isinstance(first.action, Allow)
            informational = dict(first.response_headers.set)
            assert informational["RateLimit-Limit"] == "2"
            assert informational["RateLimit-Remaining"] == "1"
            assert informational["X-RateLimit-Limit"] == "2"
            assert isinstance((await conn.decide(request(2, "/login"))).action, Allow)

            refused = await conn.decide(request(3, "/login"))
            assert isinstance(refused.action, Block) and refused.action.status == 429
            headers = dict(refused.action.headers)
            assert int(headers["Retry-After"]) >= 29  # one request per 30 s after the burst
            assert headers["RateLimit-Remaining"] == "0"
            assert refused.audit is not None and refused.audit.rule_ids == ("ratelimit:login",)

            # Each client has its own bucket; paths no rule matches are not limited.
            other = request(4, "/login", client_ip="198.51.100.99")
            assert isinstance((await conn.decide(other)).action, Allow)
            free = await conn.decide(request(5, "/about"))
            assert isinstance(free.action, Allow) and not free.response_headers

            # A keyed header: requests without it share one bucket, they do not escape.
            assert isinstance((await conn.decide(request(6, "/t", x_tenant="blue"))).action, Allow)
            assert isinstance((await conn.decide(request(7, "/t", x_tenant="blue"))).action, Block)
            assert isinstance((await conn.decide(request(8, "/t", x_tenant="red"))).action, Allow)

            # The proxy re-sends an unchanged config on every reconnect: buckets survive it.
            same = await conn.configure(RULES, revision=2)
            assert same.ok, same.error
            assert isinstance((await conn.decide(request(9, "/login"))).action, Block)

            dry = await conn.configure({**RULES, "dry_run": True, "status": 503}, revision=3)
            assert dry.ok, dry.error
            # A changed config keeps the buckets of unchanged rules (no fresh burst on reload):
            # the login bucket is still spent, and dry-run reports instead of refusing.
            would = await conn.decide(request(12, "/login"))
            assert isinstance(would.action, Allow)
            assert would.audit is not None and "dry-run" in would.audit.tags
            assert "Retry-After" not in dict(would.response_headers.set)

            bad = await conn.configure({"rules": [{"name": "x", "rate": 0}]}, revision=4)
            assert not bad.ok and "rules[0].rate" in bad.error
            typo = await conn.configure({"rules": [], "dryrun": True}, revision=5)
            assert not typo.ok and "dryrun" in typo.error

            health = await conn.next_health()
            assert health.status == "ok" and "2 rules (dry run)" in health.detail
        assert await agent.stop() == 0


async def test_rate_limit_answers_429_after_the_burst_through_the_proxy(short_dir) -> None:
    kit = ProxyKit(short_dir)
    kit.upstream("app", kit.upstream_process("app"))
    kit.tables.append(
        "[agents.ratelimit]\n"
        f"command = {json.dumps([sys.executable, '-m', 'sentinel_agents.ratelimit'])}\n"
        'timeout = "5s"\n'
        "[[agents.ratelimit.config.rules]]\n"
        'name = "per-client"\nrate = 3\nperiod = "1m"\nkey = ["client_ip"]\n'
    )
    kit.proxy_extra["agents"] = ["ratelimit"]
    kit.routes.append({"id": "app", "path_prefix": "/", "upstream": "app"})
    async with kit.run() as (_, _, client):
        await proxy_linked(client, kit.admin, "ratelimit")
        for left in ("2", "1", "0"):
            admitted = await client.get("/who")
            assert admitted.status_code == 200 and admitted.text == "app"
            assert admitted.headers["ratelimit-remaining"] == left
        refused = await client.get("/who")
        assert refused.status_code == 429
        assert refused.headers["x-sentinel-decided-by"] == "ratelimit"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-limit"] == refused.headers["x-ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-policy"] == "3;w=60"
