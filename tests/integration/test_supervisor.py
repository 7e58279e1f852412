"""The supervisor with real child processes, real sockets and (as root) real cgroups."""

from __future__ import annotations

import itertools
import os
import socket
import sys
import time

import pytest
import trio

from tests.integration.stackkit import StackKit, pid_alive, running, wait_for

FAST_BACKOFF = {"initial": "50ms", "max": "2s", "multiplier": 2.0, "jitter": 0.0}


@pytest.fixture
def kit(short_dir):
    return StackKit(short_dir)


async def test_children_start_in_dependency_order_gated_on_readiness(kit):
    kit.child("db", "--ready-after", "0.4")
    kit.child("web", depends_on=["db"])
    async with running(kit.plan()) as (sup, _):
        assert sup.runner("db").state == "running" and sup.runner("web").state == "running"
        starts = {name: at for name, _, at in kit.records()}
        # web is spawned only once db said READY=1, 0.4 s after db started
        assert starts["web"] - starts["db"] >= 0.4


async def test_independent_children_start_concurrently(kit):
    for name in ("a", "b", "c"):
        kit.child(name, "--ready-after", "0.6")
    async with running(kit.plan()):
        times = sorted(at for _, _, at in kit.records())
        # all three were spawned before the first could have become ready
        assert times[-1] - times[0] < 0.6


async def test_crash_restarts_with_growing_backoff_then_fatal(kit):
    kit.child(
        "crashy",
        "--exit-after",
        "0",
        backoff=FAST_BACKOFF,
        max_restarts=3,
        restart_window="60s",
        readiness={"notify": False},
    )
    async with running(kit.plan()) as (sup, changes):
        runner = sup.runner("crashy")
        await changes.until("crashy", "fatal")
        assert runner.lifecycle.restarts == 3
        assert "gave up after 3 restarts" in runner.lifecycle.reason
        states = [c.state for c in changes if c.child == "crashy" and c.reason != "spawned"]
        assert states.count("backoff") == 3 and states[-1] == "fatal"
        starts = [at for _, _, at in kit.records()]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert len(starts) == 4
        assert gaps[0] < gaps[1] < gaps[2]  # 50 ms, 100 ms, 200 ms of backoff (+ start-up)


async def test_readiness_timeout_kills_and_retries(kit):
    kit.child(
        "silent",
        "--no-ready",
        readiness={"notify": True, "timeout": "300ms"},
        backoff=FAST_BACKOFF,
        max_restarts=1,
    )
    async with running(kit.plan()) as (sup, _):
        runner = sup.runner("silent")
        await wait_for(runner, "fatal")
        assert runner.lifecycle.last_exit is not None
        assert runner.lifecycle.last_exit.signal == 9
        assert "not ready within 0.3s" in runner.lifecycle.reason


async def test_tcp_and_exec_readiness_probes(kit):
    kit.child("tcp", "--listen-tcp", "18931", readiness={"tcp": "127.0.0.1:18931"})
    kit.child("exe", readiness={"exec": ["true"]})
    async with running(kit.plan()) as (sup, _):
        assert sup.runner("tcp").state == "running"
        assert sup.runner("exe").state == "running"


async def test_fatal_dependency_fails_its_dependents(kit):
    kit.child("base", "--no-ready", "--exit-after", "0", restart_policy="never")
    kit.child("top", depends_on=["base"])
    async with running(kit.plan()) as (sup, _):
        top = sup.runner("top")
        assert top.state == "fatal"
        assert "dependency `base` is exited" in top.lifecycle.reason
        assert [name for name, _, _ in kit.records()] == ["base"]


async def test_missing_command_is_reported(kit):
    kit.tables.append('[processes.ghost]\ncommand = ["no-such-program-xyz"]\nmax_restarts = 0')
    async with running(kit.plan()) as (sup, _):
        ghost = sup.runner("ghost")
        assert ghost.state == "fatal"
        assert "command not found: no-such-program-xyz" in ghost.lifecycle.reason


async def test_shutdown_goes_in_reverse_order_and_escalates_to_sigkill(kit):
    kit.child("db")
    kit.child("web", "--ignore-term", depends_on=["db"], stop_timeout="500ms")
    async with running(kit.plan()) as (sup, changes):
        before = time.time()
        await sup.shutdown()
        await changes.until("db", "stopped")
        web, db = sup.runner("web"), sup.runner("db")
        assert web.lifecycle.last_exit is not None and web.lifecycle.last_exit.signal == 9
        assert "did not stop within 0.5s" in web.lifecycle.last_exit.reason
        stopped = {c.child: c.time for c in changes if c.state == "stopped"}
        assert stopped["web"] <= stopped["db"]
        [(_, _, db_term)] = kit.records("term")
        assert db_term - before >= 0.5  # db was asked to stop only after web was gone
        assert db.state == "stopped"


async def test_a_child_flooding_stdout_never_stalls(kit):
    kit.child("flood", "--flood", str(100 * 1024 * 1024))
    kit.child("calm")
    with trio.fail_after(60):
        async with running(kit.plan()) as (sup, _):
            flood = sup.runner("flood")
            assert flood.state == "running"  # it got past 100 MB of output to READY=1
            assert any("flooded" in line.line for line in flood.log.tail(50))
            assert flood.log.lines >= 1_000_000
            log_file = kit.dir / "run" / "logs" / "flood.log"
            # 10 MiB per file by default, 3 backups kept: rotation happened and stopped there
            assert log_file.with_name("flood.log.3").exists()
            assert not log_file.with_name("flood.log.4").exists()
            assert log_file.with_name("flood.log.1").stat().st_size <= 10 * 1024 * 1024
            assert sup.status()  # the supervisor still answers


async def test_socket_activation_keeps_connections_made_during_a_restart(kit):
    kit.child("agent", "--serve-socket", table="agents")
    async with running(kit.plan()) as (sup, _):
        agent = sup.runner("agent")
        assert agent.spec.socket is not None
        path = str(agent.spec.socket)
        assert oct(os.stat(path).st_mode & 0o777) == "0o600"
        first_pid = agent.pid

        def ask(text: bytes) -> bytes:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(path)
                s.sendall(text)
                return s.recv(1024)

        assert await trio.to_thread.run_sync(ask, b"one") == f"{first_pid}:one".encode()
        await sup.stop("agent")
        # nobody serves now, yet the launcher's socket accepts and queues the connection
        early = socket.socket(socket.AF_UNIX)
        early.settimeout(10)
        early.connect(path)
        early.sendall(b"queued")
        await sup.start("agent")
        answer = await trio.to_thread.run_sync(early.recv, 1024)
        early.close()
        assert answer == f"{agent.pid}:queued".encode()
        assert agent.pid != first_pid
        assert any("serving inherited=True" in line.line for line in agent.log.tail(100))


async def test_an_agent_without_socket_activation_gets_the_path(kit):
    kit.child("plain", "--serve-socket", table="agents", socket_activation=False)
    async with running(kit.plan()) as (sup, _):
        agent = sup.runner("plain")
        assert any("serving inherited=False" in line.line for line in agent.log.tail(50))

        def ask() -> bytes:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(str(agent.spec.socket))
                s.sendall(b"hi")
                return s.recv(100)

        assert await trio.to_thread.run_sync(ask) == f"{agent.pid}:hi".encode()


async def test_http_and_unix_readiness_probes(kit, short_dir):
    kit.child("web", "--listen-tcp", "18932", readiness={"http": "http://127.0.0.1:18933/"})
    kit.child(
        "sock",
        "--serve-socket",
        table="agents",
        socket_activation=False,
        readiness={"unix": "agents/sock.sock"},
    )
    kit.tables.append(
        "[processes.http]\n"
        f'command = ["{sys.executable}", "-m", "http.server", "18933", "--bind", "127.0.0.1"]\n'
        'readiness = { http = "http://127.0.0.1:18933/", timeout = "10s" }'
    )
    async with running(kit.plan()) as (sup, _):
        assert sup.runner("http").state == "running"
        assert sup.runner("sock").state == "running"
        assert sup.runner("web").state == "running"


async def test_missed_watchdog_restarts_the_child(kit):
    kit.child("sleepy", watchdog="300ms", backoff=FAST_BACKOFF, max_restarts=1)
    kit.child("awake", "--watchdog", watchdog="300ms")
    async with running(kit.plan()) as (sup, _):
        sleepy, awake = sup.runner("sleepy"), sup.runner("awake")
        await wait_for(sleepy, "fatal")
        assert "watchdog: no WATCHDOG=1 within 0.3s" in sleepy.lifecycle.reason
        assert awake.state == "running" and awake.lifecycle.restarts == 0


async def test_a_crashed_childs_grandchildren_do_not_linger(kit):
    kit.child("parent", "--grandchild", "--exit-after", "0.3", restart_policy="never")
    async with running(kit.plan()) as (sup, _):
        runner = sup.runner("parent")
        await wait_for(runner, "exited")
        [pid] = [
            int(log.line.split()[1])
            for log in runner.log.tail(100)
            if log.line.startswith("grandchild")
        ]
        with trio.fail_after(2):
            while pid_alive(pid):
                await trio.sleep(0.01)


async def test_manual_stop_start_restart(kit):
    kit.child("svc")
    async with running(kit.plan()) as (sup, _):
        runner = sup.runner("svc")
        first = runner.pid
        await sup.restart("svc")
        assert runner.state == "running" and runner.pid != first
        await sup.stop("svc")
        assert runner.state == "stopped" and runner.pid is None
        await sup.start("svc")
        assert runner.state == "running"
        status = {s.name: s for s in sup.status()}["svc"]
        assert status.pid == runner.pid and status.rss and status.threads and status.fds


async def test_reload_restarts_only_what_changed(kit):
    kit.child("same")
    kit.child("changing")
    async with running(kit.plan()) as (sup, _):
        same_pid, changing_pid = sup.runner("same").pid, sup.runner("changing").pid
        kit.tables.pop()
        kit.child("changing", "--ready-after", "0.01")
        kit.child("added")
        changes = await sup.reload(kit.plan())
        assert changes == ["~changing", "+added"]
        await wait_for(sup.runner("changing"), "running")
        await wait_for(sup.runner("added"), "running")
        assert sup.runner("same").pid == same_pid
        assert sup.runner("changing").pid != changing_pid


async def test_ready_from_a_short_lived_helper_like_systemd_notify_counts(kit):
    # systemd-notify has exited by the time the datagram is read: it must still count.
    kit.tables.append(
        '[processes.sh]\ncommand = ["/bin/sh", "-c", "systemd-notify --ready; exec sleep 600"]\n'
        'readiness = { notify = true, timeout = "5s" }\nmax_restarts = 0'
    )
    async with running(kit.plan()) as (sup, _):
        runner = sup.runner("sh")
        assert runner.state == "running" and runner.lifecycle.restarts == 0
        assert runner.ready_latency is not None and runner.ready_latency < 2
