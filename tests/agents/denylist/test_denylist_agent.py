"""The denylist agent as a real process, changed with `sentinel-stack deny`; behind the proxy."""

from __future__ import annotations

import json
import os
import stat

import pytest
import trio

from sentinel_stack.agent import connect_agent
from sentinel_stack.protocol import Allow, Block
from tests.agents.agent_programs import (
    DEADLINE,
    FAST_HEALTH,
    agent_process,
    proxy_linked,
    request,
    run_cli,
    short_tmp,
    wait_until,
)
from tests.proxy.e2e import ProxyKit

MODULE = "sentinel_agents.denylist"


async def test_entries_added_listed_removed_expired_and_kept_across_restarts() -> None:
    with short_tmp() as tmp:
        env = {"SENTINEL_RUN_DIR": str(tmp)}
        cli = ("--run-dir", str(tmp))
        async with (
            agent_process(MODULE, tmp, *FAST_HEALTH, env=env) as agent,
            connect_agent(agent.socket) as conn,
        ):
            control = tmp / "agents" / "denylist.ctl"
            assert stat.S_IMODE(control.stat().st_mode) == 0o600

            added = await run_cli(
                "deny", "add", "203.0.113.7", "--ttl", "10m", "--reason", "scanner", *cli, cwd=tmp
            )
            assert added.returncode == 0, added.stderr
            assert added.stdout.decode() == "denied ip 203.0.113.7/32 for 10m (scanner)\n"
            scanner = await conn.decide(request(1, "/", client_ip="203.0.113.7"))
            assert isinstance(scanner.action, Block) and scanner.action.status == 403
            assert scanner.audit is not None and "scanner" in scanner.audit.reason
            assert scanner.audit.tags == ("denylist", "ip")

            for value, kind in (("/wp-admin", "path_prefix"), ("sqlmap", "user_agent")):
                done = await run_cli("deny", "add", value, "--kind", kind, *cli, cwd=tmp)
                assert done.returncode == 0, done.stderr
            assert isinstance((await conn.decide(request(2, "/wp-admin/x.php"))).action, Block)
            probe = request(3, "/", user_agent="sqlmap/1.7.2#stable")
            assert isinstance((await conn.decide(probe)).action, Block)

            listed = await run_cli("deny", "list", "--json", *cli, cwd=tmp)
            entries = json.loads(listed.stdout)
            assert [e["value"] for e in entries] == ["203.0.113.7/32", "/wp-admin", "sqlmap"]
            assert 590 < entries[0]["remaining_ttl"] <= 600 and entries[1]["remaining_ttl"] is None
            table = (await run_cli("deny", "list", *cli, cwd=tmp)).stdout.decode()
            assert "KIND" in table and "203.0.113.7/32" in table and "never" in table
            saved = (tmp / "denylist.json").read_text().splitlines()
            assert len(saved) == 3

            removed = await run_cli("deny", "remove", "203.0.113.7", *cli, cwd=tmp)
            assert removed.returncode == 0 and b"removed ip 203.0.113.7/32" in removed.stdout
            back = await conn.decide(request(4, "/", client_ip="203.0.113.7"))
            assert isinstance(back.action, Allow)
            again = await run_cli("deny", "remove", "203.0.113.7", *cli, cwd=tmp)
            assert again.returncode == 1 and b"not in the denylist" in again.stderr
            wrong = await run_cli("deny", "add", "not-an-ip", *cli, cwd=tmp)
            assert wrong.returncode == 1 and b"is not an IP address or CIDR" in wrong.stderr
            bad_ttl = await run_cli("deny", "add", "192.0.2.1", "--ttl", "soon", *cli, cwd=tmp)
            assert bad_ttl.returncode == 1 and b"cannot read TTL" in bad_ttl.stderr

            # A short TTL: denied at once, then purged from memory and file by itself.
            brief = await run_cli("deny", "add", "198.51.100.0/24", "--ttl", "1s", *cli, cwd=tmp)
            assert brief.returncode == 0, brief.stderr
            short = await conn.decide(request(5, "/", client_ip="198.51.100.20"))
            assert isinstance(short.action, Block)
            await agent.wait_for_log("entries expired")
            await wait_until(lambda: "198.51.100.0/24" not in (tmp / "denylist.json").read_text())
            after = await conn.decide(request(6, "/", client_ip="198.51.100.20"))
            assert isinstance(after.action, Allow)

            health = await conn.next_health()
            assert health.status == "ok" and "2 entries" in health.detail

        # Restarted, the agent denies what was saved.
        async with (
            agent_process(MODULE, tmp, env=env) as agent,
            connect_agent(agent.socket) as conn,
        ):
            assert isinstance((await conn.decide(request(7, "/wp-admin/"))).action, Block)


async def test_under_up_entries_live_in_the_state_dir_and_move_there_from_the_run_dir() -> None:
    with short_tmp() as tmp:
        run_dir, state = tmp / "run", tmp / "state"
        run_dir.mkdir()
        cli = ("--run-dir", str(run_dir))
        # An earlier version (no state dir): the entry is saved in the run dir, a tmpfs.
        async with agent_process(MODULE, tmp, env={"SENTINEL_RUN_DIR": str(run_dir)}):
            added = await run_cli("deny", "add", "203.0.113.7", *cli, cwd=tmp)
            assert added.returncode == 0, added.stderr
        assert (run_dir / "denylist.json").exists()
        # Under `up`: the state dir, which survives a reboot; the entry came along.
        env = {
            "SENTINEL_RUN_DIR": str(run_dir),
            "SENTINEL_STATE_DIR": str(state),
            "SENTINEL_CHILD_NAME": "denylist",
        }
        async with (
            agent_process(MODULE, tmp, env=env) as agent,
            connect_agent(agent.socket) as conn,
        ):
            blocked = await conn.decide(request(1, "/", client_ip="203.0.113.7"))
            assert isinstance(blocked.action, Block)
            added = await run_cli(
                "deny", "add", "/wp-admin", "--kind", "path_prefix", *cli, cwd=tmp
            )
            assert added.returncode == 0, added.stderr
        saved = (state / "denylist" / "denylist.json").read_text()
        assert "203.0.113.7" in saved and "/wp-admin" in saved
        assert stat.S_IMODE((state / "denylist").stat().st_mode) == 0o700


SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's may not be readable by another user


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another user")
@pytest.mark.skipif(not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON}")
async def test_the_control_socket_refuses_other_users() -> None:
    with short_tmp() as tmp:
        async with agent_process(MODULE, tmp, env={"SENTINEL_RUN_DIR": str(tmp)}):
            control = tmp / "agents" / "denylist.ctl"
            # Open the way on purpose, so that only the peer-uid check stands in it.
            for path in (tmp, tmp / "agents"):
                path.chmod(0o755)
            control.chmod(0o666)
            client = (  # the agent may answer and hang up before the request is written
                "import socket, sys\n"
                "s = socket.socket(socket.AF_UNIX)\n"
                "s.connect(sys.argv[1])\n"
                'try:\n    s.sendall(b\'{"op": "list"}\\n\')\n'
                "except OSError:\n    pass\n"
                "print(s.recv(4096).decode())\n"
            )
            with trio.fail_after(DEADLINE):
                result = await trio.run_process(
                    [SYSTEM_PYTHON, "-c", client, str(control)],
                    capture_stdout=True,
                    user=65534,
                )
            answer = json.loads(result.stdout)
            assert answer["ok"] is False and answer["error"]["code"] == "forbidden"


async def test_denylist_blocks_an_added_ip_through_the_proxy(short_dir) -> None:
    kit = ProxyKit(short_dir)
    kit.upstream("app", kit.upstream_process("app"))
    kit.agent("denylist", MODULE, timeout="5s")
    kit.proxy_extra["agents"] = ["denylist"]
    kit.routes.append({"id": "app", "path_prefix": "/", "upstream": "app"})
    run_dir = ("--run-dir", str(short_dir / "run"))
    async with kit.run() as (_, _, client):
        await proxy_linked(client, kit.admin, "denylist")
        assert (await client.get("/who")).status_code == 200
        added = await run_cli(
            "deny", "add", "127.0.0.1", "--reason", "test", *run_dir, cwd=short_dir
        )
        assert added.returncode == 0, added.stderr
        denied = await client.get("/who")
        assert denied.status_code == 403
        assert denied.headers["x-sentinel-decided-by"] == "denylist"
        removed = await run_cli("deny", "remove", "127.0.0.1", *run_dir, cwd=short_dir)
        assert removed.returncode == 0, removed.stderr
        assert (await client.get("/who")).status_code == 200
