"""The WAF agent as a real process: decisions, bodies, detect-only, reloads; behind the proxy."""

from __future__ import annotations

import signal
from pathlib import Path

from sentinel_agents.waf.allocator import find_jemalloc

from sentinel_stack.agent import connect_agent
from sentinel_stack.protocol import Allow, Block, NeedsMore, RequestBodyChunk, RequestComplete
from tests.agents.agent_programs import FAST_HEALTH, agent_process, proxy_linked, request, short_tmp
from tests.proxy.e2e import ProxyKit

SQLI_QUERY = "id=1%27%20OR%20%271%27%3D%271"


async def test_blocks_attacks_in_query_and_body_and_reloads_from_configure_and_sighup() -> None:
    with short_tmp() as tmp:
        config = tmp / "waf.toml"
        config.write_text(
            'block_status = 406\nblock_body = "no\\n"\nskip_body_types = ["application/json"]\n'
        )
        async with (
            agent_process(
                "sentinel_agents.waf", tmp, "--config", str(config), *FAST_HEALTH
            ) as agent,
            connect_agent(agent.socket) as conn,
        ):
            attack = await conn.decide(request(1, "/", query=SQLI_QUERY))
            assert isinstance(attack.action, Block)
            assert (attack.action.status, attack.action.body) == (406, "no\n")
            headers = dict(attack.action.headers)
            assert headers["x-sentinel-waf-rule-ids"] and int(headers["x-sentinel-waf-score"]) >= 5
            assert attack.audit is not None and "attack-sqli" in attack.audit.tags
            assert attack.audit.rule_ids == tuple(headers["x-sentinel-waf-rule-ids"].split(","))

            clean = await conn.decide(request(2, "/products", query="page=2"))
            assert isinstance(clean.action, Allow) and clean.audit is None

            form = request(
                3,
                "/login",
                method="POST",
                content_type="application/x-www-form-urlencoded",
                content_length="40",
            )
            assert isinstance((await conn.decide(form)).action, NeedsMore)
            body = RequestBodyChunk(3, data=b"user=admin&password=%27%20or%201%3D1--", last=True)
            assert isinstance((await conn.decide(body)).action, Block)
            await conn.complete(RequestComplete(3, status=406))

            # Bodies of a type in skip_body_types (from --config) are not asked for.
            json_post = request(
                4, "/api", method="POST", content_type="application/json", content_length="90"
            )
            assert isinstance((await conn.decide(json_post)).action, Allow)

            detect = await conn.configure({"mode": "detect"}, revision=2)
            assert detect.ok, detect.error
            seen = await conn.decide(request(5, "/", query=SQLI_QUERY))
            assert isinstance(seen.action, Allow)
            assert seen.audit is not None and "detect-only" in seen.audit.tags

            typo = await conn.configure({"paranoia": 2}, revision=3)
            assert not typo.ok and "did you mean `paranoia_level`" in typo.error
            bad = await conn.configure({"paranoia_level": 9}, revision=4)
            assert not bad.ok and "paranoia_level" in bad.error
            still_detect = await conn.decide(request(6, "/", query=SQLI_QUERY))
            assert isinstance(still_detect.action, Allow)

            health = await conn.next_health()
            assert health.status in ("ok", "degraded")
            assert "engine " in health.detail and "mode detect" in health.detail
            # The agent re-executed itself on jemalloc when the machine has it (same pid).
            if find_jemalloc() is not None:
                maps = Path(f"/proc/{agent.process.pid}/maps").read_text()
                assert "libjemalloc" in maps

            # SIGHUP re-reads --config: block mode again, with its status.
            agent.process.send_signal(signal.SIGHUP)
            await agent.wait_for_log("configuration file applied", count=2)
            again = await conn.decide(request(7, "/", query=SQLI_QUERY))
            assert isinstance(again.action, Block) and again.action.status == 406
        assert await agent.stop() == 0


async def test_waf_blocks_sql_injection_through_the_proxy(short_dir) -> None:
    kit = ProxyKit(short_dir)
    kit.upstream("app", kit.upstream_process("app"))
    kit.agent("waf", "sentinel_agents.waf", failure_mode="closed", timeout="5s")
    kit.routes.append(
        {
            "id": "app",
            "path_prefix": "/",
            "upstream": "app",
            "agents": ["waf"],
            "inspect_body": True,
        }
    )
    async with kit.run() as (_, _, client):
        await proxy_linked(client, kit.admin, "waf")
        blocked = await client.get("/?id=1' OR '1'='1")
        assert blocked.status_code == 403
        assert blocked.headers["x-sentinel-decided-by"] == "waf"
        assert blocked.headers["x-sentinel-waf-rule-ids"]
        posted = await client.post(
            "/echo",
            content=b"comment=<script>alert(document.cookie)</script>",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert posted.status_code == 403
        fine = await client.get("/who", params={"q": "blue shoes"})
        assert fine.status_code == 200 and fine.text == "app"
