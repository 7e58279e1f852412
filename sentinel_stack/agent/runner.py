"""`run_agent`: the whole life of an agent process, from argv to exit status.

Order of events: parse flags; take the socket (bound from ``--socket``, inherited with socket
activation, or bound from ``$SENTINEL_AGENT_SOCKET``); `Agent.on_start`; listen; report
``READY=1``; serve. On SIGTERM or SIGINT: report ``STOPPING=1``, drain, `Agent.on_stop`, exit 0.
A second signal during the drain cuts it short. The same program therefore runs under the
launcher, under systemd, and by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import signal
import socket
import stat
from collections.abc import Sequence
from pathlib import Path

import trio

from sentinel_stack.agent.base import Agent
from sentinel_stack.agent.logs import configure_logging
from sentinel_stack.agent.server import AgentServer
from sentinel_stack.child.activation import listen_sockets
from sentinel_stack.child.sdnotify import notify, watchdog_interval
from sentinel_stack.protocol import Limits

__all__ = ["AgentStartupError", "build_parser", "run_agent"]

log = logging.getLogger("sentinel_stack.agent")

EXIT_USAGE = 2
SOCKET_ENV = "SENTINEL_AGENT_SOCKET"


class AgentStartupError(Exception):
    """The agent cannot start (no socket, socket in use, `on_start` failed)."""


def build_parser(agent: Agent) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"sentinel-agent-{agent.name}",
        description=f"The {agent.name!r} security agent of sentinel-stack.",
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        help=f"Unix socket to listen on; by default the one inherited with LISTEN_FDS, "
        f"else ${SOCKET_ENV}",
    )
    parser.add_argument("--name", help=f"agent name in handshake and logs (default {agent.name})")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=Limits().max_concurrency,
        metavar="N",
        help="events decided at once per connection (default %(default)s)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may take (default %(default)s)",
    )
    parser.add_argument(
        "--health-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds between health reports to the proxy (default %(default)s)",
    )
    return parser


def run_agent(agent: Agent, argv: Sequence[str] | None = None) -> int:
    """Run ``agent`` as a process; returns the exit status (``sys.exit(run_agent(...))``)."""
    args = build_parser(agent).parse_args(argv)
    if args.name:
        agent.name = args.name
    configure_logging(args.log_level, agent.name)
    try:
        sock, where, owned = _take_socket(agent.name, args.socket)
    except AgentStartupError as error:
        log.error("cannot start: %s", error)  # noqa: TRY400 - the message is the whole story
        return EXIT_USAGE
    server = AgentServer(
        agent,
        limits=Limits(max_concurrency=args.max_concurrency),
        health_interval=args.health_interval,
        drain_timeout=args.drain_timeout,
    )
    try:
        trio.run(_serve, server, sock, where)
    except AgentStartupError as error:
        log.error("cannot start: %s", error)  # noqa: TRY400
        return 1
    finally:
        if owned is not None:
            owned.unlink(missing_ok=True)
    log.info("stopped", extra={"served": server.served, "errors": server.errors})
    return 0


async def _serve(server: AgentServer, sock: socket.socket, where: str) -> None:
    agent = server.agent
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    try:
        await agent.on_start()
    except Exception as error:
        raise AgentStartupError(f"on_start failed: {error!r}") from error
    async with trio.open_nursery() as nursery:
        await nursery.start(_handle_signals, server, nursery.cancel_scope)
        if (interval := watchdog_interval()) is not None:
            nursery.start_soon(_keep_watchdog_fed, interval / 2)
        await nursery.start(_run_server, server, listener, nursery.cancel_scope)
        notify("READY=1", f"STATUS=serving on {where}")
        log.info(
            "ready",
            extra={"socket": where, "events": [str(e) for e in agent.subscribed_events()]},
        )
    await agent.on_stop()


async def _run_server(
    server: AgentServer,
    listener: trio.SocketListener,
    done: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    await server.serve(listener, task_status=task_status)
    done.cancel()  # the drain is over: stop the signal and watchdog tasks too


async def _handle_signals(
    server: AgentServer,
    everything: trio.CancelScope,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    # Installed before READY so an early SIGTERM drains instead of killing the process.
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        task_status.started()
        async for signum in signals:
            if not server.draining:
                log.info("draining", extra={"signal": signal.Signals(signum).name})
                notify("STOPPING=1", "STATUS=draining")
                server.drain()
            else:
                log.warning("second signal: stopping without waiting for in-flight requests")
                everything.cancel()


async def _keep_watchdog_fed(period: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await trio.sleep(period)


def _take_socket(name: str, path: str | None) -> tuple[socket.socket, str, Path | None]:
    """The listening socket, a description of it, and the path to remove at exit if ours.

    In order: ``--socket``; sockets inherited with socket activation; the path the launcher
    names in ``SENTINEL_AGENT_SOCKET`` when it does not bind the socket itself.
    """
    if path is not None:
        return _bind(Path(path)), path, Path(path)
    inherited = listen_sockets()
    if len(inherited) == 1:
        (label, sock), *_ = inherited.items()
        return sock, f"inherited fd ({label})", None
    if name in inherited:
        return inherited[name], f"inherited fd ({name})", None
    if inherited:
        raise AgentStartupError(
            f"{len(inherited)} sockets inherited ({', '.join(inherited)}) and none is named "
            f"{name!r}; set LISTEN_FDNAMES or pass --socket"
        )
    if path := os.environ.get(SOCKET_ENV):
        return _bind(Path(path)), path, Path(path)
    raise AgentStartupError(
        "no socket to serve: pass --socket PATH, or start the agent with socket activation "
        f"(LISTEN_FDS, as sentinel-stack and systemd do) or {SOCKET_ENV}"
    )


def _bind(path: Path) -> socket.socket:
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
        sock.listen(socket.SOMAXCONN)
    except OSError as error:
        sock.close()
        raise AgentStartupError(f"cannot listen on {path}: {error.strerror}") from error
    return sock


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a dead agent; refuse to steal one a live agent serves."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise AgentStartupError(f"{path} exists and is not a socket; choose another --socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(os.fspath(path))
        except OSError as error:
            if error.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise AgentStartupError(f"cannot check {path}: {error.strerror}") from error
        else:
            raise AgentStartupError(f"another process already serves {path}")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
