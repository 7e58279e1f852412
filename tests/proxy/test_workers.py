"""`[proxy] workers = N`: worker processes behind one port, supervised by the proxy itself.

Real processes: the proxy program, its workers, a fake upstream; the test plays launcher
(NOTIFY_SOCKET, event hub) and client.
"""

from __future__ import annotations

import os
import re
import signal
from collections import Counter
from pathlib import Path

import httpx
import trio

from tests.proxy.e2e import free_port, wait_until
from tests.proxy.proxyproc import RunningProxy, fake_upstream, proxy_config, run_proxy


def metric(text: str, line: str) -> float:
    found = re.search(rf"^{re.escape(line)} (\S+)$", text, re.MULTILINE)
    assert found, f"no `{line}` in\n{text}"
    return float(found.group(1))


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (in a container, PID 1 may not reap)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def one_request(url: str) -> httpx.Response:
    """On a connection of its own, so the kernel hands it to whichever worker accepts."""
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url)


async def requests_until_both_workers_answer(proxy: RunningProxy) -> int:
    sent = 0
    with trio.fail_after(30):
        while {r.get("worker", 0) for r in proxy.records} != {1, 2}:
            async with trio.open_nursery() as nursery:
                for _ in range(8):
                    nursery.start_soon(one_request, f"{proxy.url}/who")
            sent += 8
            await proxy.wait_records(sent)
    return sent


async def test_two_workers_share_the_port_and_the_admin_adds_them_up(short_dir: Path) -> None:
    port, admin = free_port(), free_port()
    async with (
        fake_upstream(short_dir) as upstream,
        run_proxy(short_dir, proxy_config(port, admin, upstream, workers=2), port, admin) as proxy,
    ):
        # READY=1 once, sent when both workers were ready
        assert sum("READY=1" in n for n in proxy.notifications) == 1
        status = await proxy.status()
        workers = {w["worker"]: w for w in status["workers"]}
        assert sorted(workers) == [1, 2] and all(w["ready"] for w in workers.values())
        pids = {w["pid"] for w in workers.values()}
        assert len(pids) == 2 and proxy.process.pid not in pids

        sent = await requests_until_both_workers_answer(proxy)
        assert all(r["status"] == 200 for r in proxy.records)
        by_worker = Counter(r["worker"] for r in proxy.records)

        metrics = await proxy.metrics()
        assert metric(metrics, 'sentinel_proxy_requests_total{route="all",status="200"}') == sent
        assert metric(metrics, 'sentinel_proxy_request_duration_seconds_count{route="all"}') == sent
        assert metric(metrics, "sentinel_proxy_workers") == 2
        status = await proxy.status()
        assert {w["worker"]: w["requests"] for w in status["workers"]} == dict(by_worker)
        assert status["access_log"]["sent"] == sent
        assert status["upstreams"]["app"]["targets"][0]["available"] is True

        # nothing outlives a parent killed without a chance to clean up
        proxy.process.kill()
        await proxy.process.wait()
        with trio.fail_after(10):
            while any(alive(pid) for pid in pids):
                await trio.sleep(0.05)


async def test_a_killed_worker_is_restarted_and_only_in_flight_requests_fail(
    short_dir: Path,
) -> None:
    port, admin = free_port(), free_port()
    clients = 6
    async with (
        fake_upstream(short_dir) as upstream,
        run_proxy(short_dir, proxy_config(port, admin, upstream, workers=2), port, admin) as proxy,
    ):
        victim = next(w for w in (await proxy.status())["workers"] if w["worker"] == 1)
        outcomes: Counter[str] = Counter()
        stop = trio.Event()

        async def client() -> None:
            while not stop.is_set():
                try:
                    response = await one_request(f"{proxy.url}/who")
                    outcomes["ok" if response.status_code == 200 else "bad status"] += 1
                except httpx.TransportError:
                    outcomes["failed"] += 1

        async def replaced() -> bool:
            worker = (await proxy.status())["workers"][0]
            return bool(worker["pid"] != victim["pid"] and worker["ready"])

        async with trio.open_nursery() as nursery:
            for _ in range(clients):
                nursery.start_soon(client)
            await wait_until(lambda: _at_least(outcomes, 30), timeout=20)
            os.kill(victim["pid"], signal.SIGKILL)
            await wait_until(replaced, timeout=20)
            served = outcomes["ok"]
            await wait_until(lambda: _at_least(outcomes, served + 30), timeout=20)
            stop.set()

        # at most one request per client was in flight when the worker died
        assert outcomes["failed"] <= clients, outcomes
        assert outcomes["bad status"] == 0, outcomes
        worker = (await proxy.status())["workers"][0]
        assert worker["restarts"] == 1 and worker["last_exit"] == "killed by SIGKILL"
        metrics = await proxy.metrics()
        assert metric(metrics, 'sentinel_proxy_worker_restarts_total{worker="1"}') == 1
        assert "worker 1 (pid" in proxy.log() and "killed by SIGKILL" in proxy.log()


async def _at_least(outcomes: Counter[str], count: int) -> bool:
    return outcomes["ok"] >= count


async def test_reload_reaches_every_worker_and_sigterm_drains_them_all(short_dir: Path) -> None:
    port, admin = free_port(), free_port()
    async with (
        fake_upstream(short_dir) as upstream,
        run_proxy(short_dir, proxy_config(port, admin, upstream, workers=2), port, admin) as proxy,
    ):
        before = await proxy.status()
        (short_dir / "stack.toml").write_text(proxy_config(port, admin, upstream, workers=3))
        proxy.process.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            status = await proxy.status()
            workers = status["workers"]
            return (
                status["revision"] != before["revision"]
                and [(w["ready"], w["revision"]) for w in workers]
                == [(True, status["revision"])] * 3
            )

        await wait_until(reloaded, timeout=20)
        pids = [w["pid"] for w in (await proxy.status())["workers"]]

        async with httpx.AsyncClient(timeout=10) as client:
            slow: list[httpx.Response] = []

            async def slow_request() -> None:
                slow.append(await client.get(f"{proxy.url}/slow?s=1.0"))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(slow_request)
                await wait_until(_in_flight(proxy), timeout=10)
                proxy.process.send_signal(signal.SIGTERM)
        assert slow[0].status_code == 200  # drained, not dropped
        with trio.fail_after(20):
            assert await proxy.process.wait() == 0
        assert any("STOPPING=1" in n for n in proxy.notifications)
        assert not any(alive(pid) for pid in pids)


def _in_flight(proxy: RunningProxy):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        status = await proxy.status()
        return bool(status["upstreams"]["app"]["targets"][0]["in_flight"] >= 1)

    return check
