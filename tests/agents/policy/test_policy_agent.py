"""The policy agent as a real process: decisions, decision logs, hot reload, alerts; the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from sentinel_stack.agent import connect_agent
from sentinel_stack.events.hub import EventHub
from sentinel_stack.protocol import Allow, Block
from tests.agents.agent_programs import (
    DEADLINE,
    FAST_HEALTH,
    REPO,
    agent_process,
    proxy_linked,
    request,
    run_cli,
    short_tmp,
)
from tests.proxy.e2e import ProxyKit

MODULE = "sentinel_agents.policy"
EXAMPLE = REPO / "configs" / "policies"


@asynccontextmanager
async def event_hub(path: Path) -> AsyncIterator[trio.MemoryReceiveChannel[bytes]]:
    """A real event hub; yields the policy and alert events it receives."""
    hub = EventHub(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.serve)
        async with hub.subscribe(("policy.", "alert")) as events:
            yield events
        nursery.cancel_scope.cancel()


async def next_event(events: trio.MemoryReceiveChannel[bytes], kind: str) -> dict[str, Any]:
    with trio.fail_after(DEADLINE):
        while True:
            event: dict[str, Any] = json.loads(await events.receive())
            if event["kind"] == kind:
                return event


def replace_file(path: Path, text: str) -> None:
    """Replace a file at once, as editors do, so the watcher never sees half of it."""
    staged = path.parent.parent.parent / f"{path.name}.staged"
    staged.write_text(text)
    os.replace(staged, path)


async def test_decides_logs_decisions_survives_a_broken_edit_and_reloads_a_good_one() -> None:
    with short_tmp() as tmp:
        policies = tmp / "policies"
        shutil.copytree(EXAMPLE, policies)
        config = tmp / "policy.toml"
        config.write_text('policies = "policies"\nwatch_interval = 0.1\n')
        env = {"SENTINEL_EVENTS_SOCKET": str(tmp / "events.sock")}
        flags = ("--config", str(config), *FAST_HEALTH)
        async with (
            event_hub(tmp / "events.sock") as events,
            agent_process(MODULE, tmp, *flags, env=env) as agent,
            connect_agent(agent.socket) as conn,
        ):
            admin = await conn.decide(request(1, "/admin/users", authorization="Bearer nope"))
            assert isinstance(admin.action, Block) and admin.action.status == 401
            assert admin.action.body == "the admin area requires the admin role\n"
            assert admin.audit is not None
            assert admin.audit.rule_ids == ("data.sentinel.authz.decision",)
            page = await conn.decide(request(2, "/", route="static"))
            assert isinstance(page.action, Allow)
            assert dict(page.request_headers.set)["x-sentinel-policy"] == "sentinel.authz"
            wrong_method = await conn.decide(request(3, "/", method="POST", route="static"))
            assert isinstance(wrong_method.action, Block) and wrong_method.action.status == 405

            logged = await next_event(events, "policy.decision")
            assert (logged["request_id"], logged["allowed"]) == ("r1", False)
            assert logged["input"]["request"]["headers"]["authorization"] == "<redacted>"
            assert logged["path"] == "sentinel/authz/decision" and logged["decision_id"]
            revision = logged["bundles"]["sentinel"]["revision"]
            assert (await next_event(events, "policy.decision"))["allowed"] is True

            # A broken edit: alert, and the last good policy keeps serving.
            rules = policies / "sentinel" / "authz.rego"
            good = rules.read_text()
            replace_file(rules, "package sentinel.authz\nallow if {\n")
            alert = await next_event(events, "alert")
            assert (alert["rule"], alert["severity"]) == ("policy.load_failed", "warning")
            assert "authz.rego" in alert["error"] and alert["running_revision"] == revision
            still = await conn.decide(request(4, "/admin"))
            assert isinstance(still.action, Block) and still.action.status == 401

            async def health_says(words: str) -> Any:
                with trio.fail_after(DEADLINE):
                    while words not in (health := await conn.next_health()).detail:
                        pass
                return health

            drifted = await health_says("drift")
            assert drifted.status == "degraded" and "last reload failed" in drifted.detail

            # A good edit is picked up.
            replace_file(rules, good.replace("requires the admin role", "is for admins only"))
            await agent.wait_for_log("policy loaded", count=2)
            edited = await conn.decide(request(5, "/admin"))
            assert isinstance(edited.action, Block)
            assert edited.action.body == "the admin area is for admins only\n"
            healthy = await health_says("decisions")
            assert healthy.status == "ok" and "drift" not in healthy.detail

            agent.process.send_signal(signal.SIGHUP)
            await agent.wait_for_log("policy loaded", count=3)
            reasons = [line.get("why") for line in agent.log() if line["msg"] == "policy loaded"]
            assert reasons == ["configuration", "files changed", "SIGHUP"]
        assert await agent.stop() == 0


async def test_policy_test_verb_passes_and_fails(short_dir: Path) -> None:
    passing = await run_cli("policy", "test", str(EXAMPLE), cwd=short_dir)
    assert passing.returncode == 0, passing.stderr
    assert b"8 passed, 0 failed" in passing.stdout
    broken = short_dir / "policies"
    shutil.copytree(EXAMPLE, broken)
    tests = broken / "sentinel" / "authz_test.rego"
    tests.write_text(tests.read_text().replace("d.status == 401", "d.status == 418", 1))
    failing = await run_cli("policy", "test", str(broken), cwd=short_dir)
    assert failing.returncode == 1
    assert b"FAIL  data.sentinel.authz_test.test_admin_path_anonymous_is_401" in failing.stdout


async def test_policy_denies_an_admin_path_through_the_proxy(short_dir: Path) -> None:
    kit = ProxyKit(short_dir)
    kit.upstream("app", kit.upstream_process("app"))
    kit.agent("policy", MODULE, timeout="5s", config={"policies": str(EXAMPLE)})
    kit.proxy_extra["agents"] = ["policy"]
    kit.routes.append({"id": "static", "path_prefix": "/", "upstream": "app"})
    async with kit.run() as (_, _, client):
        await proxy_linked(client, kit.admin, "policy")
        denied = await client.get("/admin/users")
        assert denied.status_code == 401
        assert denied.headers["x-sentinel-decided-by"] == "policy"
        assert denied.text == "the admin area requires the admin role\n"
        allowed = await client.get("/echo")
        assert allowed.status_code == 200
        assert allowed.json()["headers"]["x-sentinel-policy"] == "sentinel.authz"
        assert (await client.post("/echo", content=b"x")).status_code == 405
