"""`scripts/simulate-attacks`: run harmless attack scenarios against a running demo stack and
report, for each, the alerts expected, the alerts that fired and the time to alert.

The attacks go through the proxy to the demo upstream's vulnerable routes, so the stack's
own upstream process performs them (the probe watches the stack, not this script). Loopback
only; a sandbox under a tempdir; everything removed afterwards. docs/simulations.md.

``--benign-minutes N`` instead sends benign traffic for N minutes and counts the alerts
(the false-positive check: the target is none).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import h11
import trio

from sentinel_stack.control.client import ControlClient, ControlFailed, NoStack
from sentinel_stack.demo.alertwatch import AlertWatcher
from sentinel_stack.demo.http import HttpConnection, NotLoopback, loopback_endpoint
from sentinel_stack.demo.profile import demo_run_dir, sandbox_root, trusts_loopback
from sentinel_stack.demo.report import (
    BenignResult,
    ScenarioResult,
    benign_json,
    exit_status,
    expected_seen,
    render_benign,
    render_line,
    render_table,
    results_json,
    scenario_result,
)
from sentinel_stack.demo.sandbox import SandboxError, sandbox
from sentinel_stack.demo.scenarios import (
    SCENARIOS,
    Action,
    Exec,
    Fetch,
    ReadFile,
    Scenario,
    Target,
    select_scenarios,
)
from sentinel_stack.demo.traffic import TrafficStats, generate

EXIT_MISSED = 1
EXIT_NO_STACK = 3
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
USER_AGENT = "sentinel-simulate-attacks/1"


class StackProblem(Exception):
    """The stack cannot be attacked as asked; the message says what to do."""


@dataclass(frozen=True)
class StackInfo:
    run_dir: Path
    proxy: str
    children: dict[str, str]  # name -> state
    trusts_forwarded: bool

    @property
    def notes(self) -> list[str]:
        notes = []
        for name in ("probe", "detector"):
            if self.children.get(name) != "running":
                state = self.children.get(name, "not in this stack")
                notes.append(f"note: the {name} is {state}: expect alerts to be missing")
        return notes


def discover(run_dir: Path, proxy: str | None) -> StackInfo:
    """Ask the launcher for its children and config; the proxy URL comes from the config
    unless given."""
    from sentinel_stack.config.loader import ConfigError, load_config

    try:
        with ControlClient(run_dir / "control.sock", timeout=10.0) as client:
            status = client.request("status")
    except NoStack:
        raise StackProblem(
            f"no stack answers on {run_dir / 'control.sock'}; start one with "
            "`sentinel-stack demo`, or pass --run-dir DIR"
        ) from None
    children = {c["name"]: str(c.get("state", "?")) for c in status.get("children", [])}
    trusted: list[str] = []
    try:
        config = load_config(Path(status["stack"]["config"])).config
        if proxy is None and config.proxy is not None and config.proxy.listen:
            proxy = f"http://{config.proxy.listen[0]}"
        trusted = list(config.proxy.trusted_proxies) if config.proxy else []
    except (ConfigError, OSError, KeyError):
        pass  # the stack's config is not ours to read: use the flags and defaults
    proxy = proxy or "http://127.0.0.1:8080"
    try:
        loopback_endpoint(proxy)
    except NotLoopback:
        raise StackProblem(
            f"the stack's proxy listens on {proxy}, and the simulations only talk to loopback; "
            "pass --proxy http://127.0.0.1:PORT"
        ) from None
    return StackInfo(run_dir, proxy, children, trusts_loopback(trusted))


class Attacker:
    """Sends scenario actions to the vulnerable routes through the proxy."""

    def __init__(self, proxy: str, action_timeout: float) -> None:
        host, port, _ = loopback_endpoint(proxy)
        self.http = HttpConnection(host, port)
        self.action_timeout = action_timeout

    async def get(self, target: str) -> tuple[int, bytes]:
        response = await self.http.request(
            "GET", target, [("user-agent", USER_AGENT), ("accept", "*/*")]
        )
        return response.status, response.body

    async def preflight(self) -> None:
        try:
            status, _ = await self.get("/_vuln/status")
        except OSError as exc:
            raise StackProblem(f"the proxy does not answer ({exc}); is the stack up?") from exc
        if status != 200:
            raise StackProblem(
                f"GET /_vuln/status answered {status}: the vulnerable demo routes are off. "
                "Start the stack with `sentinel-stack demo` (only it enables them)."
            )

    async def perform(self, action: Action) -> str | None:
        """Run one action; None when it did what it should, else why not."""
        try:
            with trio.fail_after(self.action_timeout):
                return await self._perform(action)
        except trio.TooSlowError:
            return f"no answer within {self.action_timeout:g} s"
        except (OSError, h11.ProtocolError) as exc:
            return f"request failed: {exc!r}"

    async def _perform(self, action: Action) -> str | None:
        if isinstance(action, Exec):
            body = json.dumps({"argv": list(action.argv)}).encode()
            headers = [("user-agent", USER_AGENT), ("content-type", "application/json")]
            response = await self.http.request("POST", "/_vuln/exec", headers, body)
            if response.status != 200:
                return f"/_vuln/exec answered {response.status}: {response.body[:200]!r}"
            result = json.loads(response.body)
            if result.get("timed_out") or result.get("returncode") != 0:
                tail = (result.get("stderr") or "").strip()[-200:]
                return f"exit status {result.get('returncode')}: {tail}"
            return None
        if isinstance(action, ReadFile):
            query = "path=" + quote(action.path, safe="/")
            query += f"&tag={quote(action.tag)}" if action.tag else ""
            status, body = await self.get("/_vuln/file?" + query)
        else:
            assert isinstance(action, Fetch)
            status, body = await self.get("/_vuln/fetch?url=" + quote(action.url, safe=":/"))
        return None if status == 200 else f"answered {status}: {body[:200]!r}"


def random_loopback(rng: random.Random) -> str:
    """An address of 127.0.0.0/8 other than 127.0.0.1 (Linux routes all of it to lo)."""
    return f"127.{rng.randint(1, 254)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"


@asynccontextmanager
async def listening(kind: str, host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A loopback listener for one scenario (port 0 when none): a reverse-shell catcher that
    sends ``id`` then ``exit``, or an HTTP server standing for an internal service."""
    if kind == "none":
        yield 0
        return
    listeners = await trio.open_tcp_listeners(0, host=host)
    port = listeners[0].socket.getsockname()[1]

    async def answer(stream: trio.SocketStream) -> None:
        with trio.move_on_after(10):
            if kind == "shell":
                await stream.send_all(b"id\nexit\n")
            else:
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        break
                    request += chunk
                body = b'{"Code": "Success", "simulated": true}'
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
                await stream.send_all(head.encode() + b"\r\n" + body)
            while await stream.receive_some(4096):  # until the other side hangs up
                pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, answer, listeners)
        try:
            yield port
        finally:
            nursery.cancel_scope.cancel()


@dataclass(frozen=True)
class RunSettings:
    timeout: float  # per scenario: from sending the attack to the last expected alert
    settle: float  # after the last expected alert, keep collecting others this long
    action_timeout: float
    sandbox_root: Path


async def run_scenarios(
    scenarios: Sequence[Scenario],
    watcher: AlertWatcher,
    attacker: Attacker,
    settings: RunSettings,
    progress: Callable[[ScenarioResult], None] = lambda result: None,
) -> list[ScenarioResult]:
    results = []
    rng = random.Random()
    with sandbox(settings.sandbox_root) as box:
        for scenario in scenarios:
            host = random_loopback(rng) if scenario.listener == "http" else "127.0.0.1"
            async with listening(scenario.listener, host) as port:
                target = Target(box, sys.executable, port, host)
                start = trio.current_time()
                error = await attacker.perform(scenario.action(target))
            expected, since = scenario.expected, start
            done = await watcher.wait_until(
                lambda alerts: expected_seen(expected, since, alerts),  # noqa: B023  # awaited here
                start + settings.timeout,
            )
            if done:
                await trio.sleep(settings.settle)  # a fixed look-out window, not a wait
            end = trio.current_time()
            name, summary, expected = scenario.name, scenario.summary, scenario.expected
            result = scenario_result(name, summary, expected, start, end, watcher.alerts, error)
            progress(result)
            results.append(result)
    return results


async def run_benign(
    seconds: float, watcher: AlertWatcher, proxy: str, forwarded_for: bool, rate: float
) -> BenignResult:
    stats = TrafficStats()
    start = trio.current_time()
    await generate(proxy, rate=rate, duration=seconds, forwarded_for=forwarded_for, stats=stats)
    end = trio.current_time()
    alerts = tuple(a for a in watcher.alerts if start <= a.received <= end)
    return BenignResult(end - start, stats.sent, dict(stats.by_status), dict(stats.errors), alerts)


async def _main(args: argparse.Namespace, info: StackInfo) -> int:
    scenarios = select_scenarios(args.only)
    watcher = AlertWatcher(info.run_dir / "control.sock", info.run_dir / "events.sock")
    context = {"run_dir": str(info.run_dir), "proxy": info.proxy}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signals, nursery.cancel_scope)
        await nursery.start(watcher.run)
        try:
            if args.benign_minutes is not None:
                forwarded = info.trusts_forwarded and not args.no_forwarded_for
                benign = await run_benign(
                    args.benign_minutes * 60, watcher, info.proxy, forwarded, args.rate
                )
                _say(args, render_benign(benign), benign_json(benign, context))
                return 0 if benign.passed else EXIT_MISSED
            attacker = Attacker(info.proxy, args.action_timeout)
            await attacker.preflight()
            settings = RunSettings(
                args.timeout, args.settle, args.action_timeout, args.sandbox_root
            )
            while True:
                results = await run_scenarios(scenarios, watcher, attacker, settings, _progress)
                notes = info.notes
                _say(args, render_table(results, notes), results_json(results, context, notes))
                if args.every is None:
                    return exit_status(results)
                await trio.sleep(args.every)  # the demo's attack cadence
        finally:
            nursery.cancel_scope.cancel()


async def _stop_on_signals(scope: trio.CancelScope) -> None:
    """SIGTERM (the supervisor stopping the demo) cancels the run: the sandbox is removed."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _progress(result: ScenarioResult) -> None:
    print(render_line(result), file=sys.stderr, flush=True)


def _say(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(data), flush=True)
    else:
        stamp = time.strftime("%H:%M:%S")
        print(f"[{stamp}] {text}\n" if args.every is not None else text, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simulate-attacks",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Scenarios: " + ", ".join(s.name for s in SCENARIOS) + ". See docs/simulations.md.",
    )
    parser.add_argument(
        "--run-dir",
        type=Path,
        help="the stack's run directory (default: $SENTINEL_RUN_DIR, else the demo's)",
    )
    parser.add_argument("--proxy", help="proxy URL, loopback only (default: from the config)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this scenario")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for a scenario's alerts"
    )
    parser.add_argument(
        "--settle", type=float, default=0.3, help="seconds to keep collecting other alerts"
    )
    parser.add_argument("--action-timeout", type=float, default=15.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--sandbox-root", type=Path, default=sandbox_root(), help="(default: %(default)s)"
    )
    parser.add_argument(
        "--every", type=float, metavar="SECONDS", help="repeat forever (the demo's generator)"
    )
    parser.add_argument(
        "--benign-minutes",
        type=float,
        metavar="N",
        help="send benign traffic for N minutes (fractions allowed) and count alerts instead",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="benign requests per second")
    parser.add_argument(
        "--no-forwarded-for",
        action="store_true",
        help="benign traffic: never vary clients with X-Forwarded-For",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            expected = ", ".join(scenario.expected)
            techniques = ", ".join(scenario.techniques)
            print(f"{scenario.name:22} {expected:50} {techniques:18} {scenario.summary}")
        return 0
    try:
        select_scenarios(args.only)
        if args.proxy:
            loopback_endpoint(args.proxy)
    except (ValueError, NotLoopback) as exc:
        parser.error(str(exc))
    run_dir = args.run_dir or (
        Path(os.environ["SENTINEL_RUN_DIR"])
        if os.environ.get("SENTINEL_RUN_DIR")
        else demo_run_dir(PACKAGE_ROOT, os.environ)
    )
    try:
        info = discover(run_dir, args.proxy)
        return trio.run(_main, args, info)
    except KeyboardInterrupt:
        return 130
    except (*_PROBLEMS, BaseExceptionGroup) as exc:
        problems = _leaves(exc)
        if any(isinstance(p, KeyboardInterrupt) for p in problems):
            return 130
        if not all(isinstance(p, _PROBLEMS) for p in problems):
            raise
        for problem in problems:
            print(f"simulate-attacks: {problem}", file=sys.stderr)
        return EXIT_NO_STACK


_PROBLEMS = (StackProblem, NoStack, SandboxError, ControlFailed)


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) groups: trio nurseries wrap what their tasks raise."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `--list | head`: the reader left; nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
