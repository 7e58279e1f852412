"""Benign traffic for the demo: shoppers browsing the demo upstream through the proxy.

`BenignMix` (pure, seeded) picks what each request is: a weighted mix of the shop's pages and
API calls, from a pool of clients each with its own user agent and, when the proxy trusts
loopback's X-Forwarded-For (the demo's config does), its own address from the documentation
ranges (RFC 5737). `generate` sends them at a steady rate over a few keep-alive connections.

Run alone: ``python -m sentinel_stack.demo.traffic --target http://127.0.0.1:8080 --rate 5``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import h11
import trio

from sentinel_stack.demo.http import HttpConnection, NotLoopback, loopback_endpoint

__all__ = ["BenignMix", "PlannedRequest", "TrafficStats", "generate"]

Header = tuple[str, str]

USER_AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "demo-shop-mobile/3.2.1 (Android 14)",
)
CLIENT_NETWORKS = ("192.0.2.", "198.51.100.", "203.0.113.")
NOTES = ("gift wrap please", "leave at the door", "", "", "call before delivery")
SEARCHES = ("keyboard", "monitor", "headset", "usb hub", "desk lamp")


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    method: str
    target: str
    headers: tuple[Header, ...]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class _Client:
    address: str
    user_agent: str
    language: str


class BenignMix:
    """What an ordinary day looks like, request by request. Deterministic for a seed."""

    def __init__(self, rng: random.Random, *, forwarded_for: bool, clients: int = 24) -> None:
        self.rng = rng
        self.forwarded_for = forwarded_for
        self.clients = [
            _Client(
                rng.choice(CLIENT_NETWORKS) + str(rng.randint(2, 254)),
                rng.choice(USER_AGENTS),
                rng.choice(("en-US,en;q=0.9", "fr-FR,fr;q=0.8,en;q=0.5", "de-DE,de;q=0.9")),
            )
            for _ in range(clients)
        ]
        self._kinds = (
            (self._page, 15),
            (self._items, 25),
            (self._item, 25),
            (self._missing_item, 4),
            (self._order, 15),
            (self._health, 4),
            (self._search, 7),
            (self._echo, 5),
        )

    def next(self) -> PlannedRequest:
        make = self.rng.choices([k for k, _ in self._kinds], weights=[w for _, w in self._kinds])[0]
        client = self.rng.choice(self.clients)
        headers = [("user-agent", client.user_agent), ("accept-language", client.language)]
        if self.forwarded_for:
            headers.append(("x-forwarded-for", client.address))
        method, target, accept, body = make()
        headers.append(("accept", accept))
        if body:
            headers.append(("content-type", "application/json"))
        return PlannedRequest(method, target, tuple(headers), body)

    def _page(self) -> tuple[str, str, str, bytes]:
        return "GET", "/", "text/html,application/xhtml+xml,*/*;q=0.8", b""

    def _items(self) -> tuple[str, str, str, bytes]:
        return "GET", "/api/items", "application/json", b""

    def _item(self) -> tuple[str, str, str, bytes]:
        return "GET", f"/api/items/{self.rng.randint(1, 3)}", "application/json", b""

    def _missing_item(self) -> tuple[str, str, str, bytes]:
        return "GET", f"/api/items/{self.rng.randint(4, 40)}", "application/json", b""

    def _order(self) -> tuple[str, str, str, bytes]:
        order = {
            "item": self.rng.randint(1, 3),
            "quantity": self.rng.randint(1, 4),
            "note": self.rng.choice(NOTES),
        }
        return "POST", "/api/orders", "application/json", json.dumps(order).encode()

    def _health(self) -> tuple[str, str, str, bytes]:
        return "GET", "/healthz", "application/json", b""

    def _search(self) -> tuple[str, str, str, bytes]:
        query = self.rng.choice(SEARCHES).replace(" ", "+")
        return "GET", f"/api/echo?q={query}&page={self.rng.randint(1, 5)}", "*/*", b""

    def _echo(self) -> tuple[str, str, str, bytes]:
        payload = {"event": "cart_view", "items": self.rng.randint(0, 5)}
        return "POST", "/api/echo", "application/json", json.dumps(payload).encode()


@dataclass
class TrafficStats:
    sent: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


async def generate(
    target: str,
    *,
    rate: float,
    duration: float | None,
    forwarded_for: bool,
    stats: TrafficStats,
    seed: int | None = None,
    connections: int = 4,
) -> None:
    """Send the mix to ``target`` at ``rate`` requests/s for ``duration`` s (None: forever).

    A request that fails is counted in ``stats.errors`` and the traffic goes on; a slow
    server makes requests queue on the few connections, it never grows their number.
    """
    host, port, _ = loopback_endpoint(target)
    mix = BenignMix(random.Random(seed), forwarded_for=forwarded_for)
    send, receive = trio.open_memory_channel[PlannedRequest](connections)

    async def worker() -> None:
        async with HttpConnection(host, port) as connection:
            async for planned in receive:
                try:
                    with trio.fail_after(10):
                        response = await connection.request(
                            planned.method, planned.target, planned.headers, planned.body
                        )
                    stats.by_status[response.status] += 1
                except (OSError, trio.TooSlowError, h11.ProtocolError) as exc:
                    stats.errors[type(exc).__name__] += 1
                stats.sent += 1

    async with trio.open_nursery() as nursery:
        for _ in range(connections):
            nursery.start_soon(worker)
        async with send:
            start = trio.current_time()
            interval = 1.0 / rate
            due = start
            while duration is None or due - start < duration:
                await trio.sleep_until(due)  # pacing, not waiting for a condition
                await send.send(mix.next())
                due += interval


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentinel-stack-demo-traffic", description=__doc__)
    parser.add_argument("--target", default="http://127.0.0.1:8080", help="the proxy (loopback)")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per second")
    parser.add_argument("--duration", type=float, help="seconds (default: until stopped)")
    parser.add_argument(
        "--forwarded-for",
        action="store_true",
        help="vary client addresses with X-Forwarded-For (only if the proxy trusts loopback)",
    )
    parser.add_argument("--seed", type=int, help="make the mix reproducible")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    try:
        loopback_endpoint(args.target)
    except NotLoopback as exc:
        parser.error(str(exc))
    stats = TrafficStats()

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_report, stats)
            await generate(
                args.target,
                rate=args.rate,
                duration=args.duration,
                forwarded_for=args.forwarded_for,
                stats=stats,
                seed=args.seed,
            )
            nursery.cancel_scope.cancel()

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(run)
    print(_summary(stats), flush=True)
    return 0


def _summary(stats: TrafficStats) -> str:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(stats.by_status.items()))
    errors = sum(stats.errors.values())
    return f"benign traffic: {stats.sent} requests ({statuses or 'none'}), {errors} errors"


async def _report(stats: TrafficStats, every: float = 60.0) -> None:
    while True:
        await trio.sleep(every)  # a periodic log line, not a wait
        print(_summary(stats), flush=True)


if __name__ == "__main__":
    sys.exit(cli())
