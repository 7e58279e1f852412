"""Upstream groups: pick a target, send through the pool, learn from the outcome, retry.

One `UpstreamGroup` per `[upstreams.NAME]`. Target choice combines three pure cores:
health (active checks + passive ejection), a breaker per target, and the balancer.
Retries follow `decide_retry`: only before the response head, only when the body can be
sent again, never past the request's deadline.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from sentinel_stack.config.schema import UpstreamConfig
from sentinel_stack.proxy.balancing import Balancer, parse_target
from sentinel_stack.proxy.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from sentinel_stack.proxy.health import (
    ActiveCheckPolicy,
    UpstreamHealth,
    http_check_passed,
    is_passive_failure,
)
from sentinel_stack.proxy.metrics import BREAKER_STATES, ProxyMetrics
from sentinel_stack.proxy.retry import AttemptFailure, Retry, RetryPolicy, decide_retry
from sentinel_stack.proxy.upstream_pool import (
    Header,
    RequestBody,
    UpstreamConnectError,
    UpstreamError,
    UpstreamPool,
    UpstreamResponse,
    UpstreamTarget,
    UpstreamTimeouts,
)


class NoTargetAvailable(Exception):
    """Every target of the upstream is unhealthy, ejected or behind an open breaker."""


@dataclass(frozen=True)
class Sent:
    target: UpstreamTarget
    response: UpstreamResponse
    attempts: int


class UpstreamGroup:
    def __init__(
        self,
        name: str,
        config: UpstreamConfig,
        pool: UpstreamPool,
        metrics: ProxyMetrics,
        breaker: BreakerPolicy,
        retry_on_status: tuple[int, ...] = (),
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.pool = pool
        self.metrics = metrics
        targets = [
            UpstreamTarget(t.host, t.port, "h2c" if target.startswith("h2c://") else "http")
            for target in config.targets
            for t in [parse_target(target.removeprefix("h2c://").removeprefix("http://"))]
        ]
        self.targets = targets
        self.balancer: Balancer[UpstreamTarget] = Balancer(targets, config.balance)
        self.health: UpstreamHealth[UpstreamTarget] = UpstreamHealth(
            targets, ActiveCheckPolicy.from_config(config.health_check)
        )
        self.breakers = {t: CircuitBreaker(breaker) for t in targets}
        self.retry = RetryPolicy.from_config(config, retry_on_status)
        self.timeouts = UpstreamTimeouts(
            connect=config.connect_timeout,
            read=config.read_timeout,
            write=config.read_timeout,
            total=config.total_timeout,
        )
        self.rng = rng or random.Random()

    def _candidates(self, now: float) -> set[UpstreamTarget]:
        return {
            t
            for t in self.health.available(now)
            if self.breakers[t].state(now) is not BreakerState.OPEN
        }

    def _learn(self, target: UpstreamTarget, failed: bool, now: float, kind: str = "") -> None:
        self.breakers[target].record(not failed, now)
        self.health.record_response(target, failed, now)
        if kind:
            self.metrics.upstream_failures.labels(self.name, kind).inc()

    @asynccontextmanager
    async def send(
        self,
        method: str,
        path: bytes,
        headers: list[Header],
        body: RequestBody,
        *,
        body_buffered: bool,
        deadline: float,
    ) -> AsyncIterator[Sent]:
        """Yield the first usable response; raise the last error when every attempt failed."""
        tried: list[UpstreamTarget] = []
        attempt = 0
        while True:
            attempt += 1
            now = trio.current_time()
            target = self.balancer.pick(self._candidates(now), self.rng, avoid=tried)
            if target is None or not self.breakers[target].allow(now):
                raise NoTargetAvailable(f"upstream `{self.name}` has no available target")
            tried.append(target)
            self.balancer.acquire(target)
            yielded = False
            retry: Retry | None = None
            try:
                async with self.pool.request(
                    target, method.encode(), path, headers, body, self.timeouts
                ) as response:
                    now = trio.current_time()
                    failed = is_passive_failure(response.status)
                    if failed and response.status in self.retry.retry_on_status:
                        decision = decide_retry(
                            self.retry,
                            method=method,
                            failure=AttemptFailure.STATUS,
                            status=response.status,
                            attempts_made=attempt,
                            body_sent=True,
                            body_buffered=body_buffered,
                            rng=self.rng,
                            now=now,
                            deadline=deadline,
                        )
                        retry = decision if isinstance(decision, Retry) else None
                    self._learn(target, failed, now, "status" if failed else "")
                    if retry is None:
                        yielded = True
                        yield Sent(target, response, attempt)
                        return
            except UpstreamError as error:
                if yielded:
                    raise
                kind = (
                    "connect"
                    if isinstance(error, UpstreamConnectError)
                    else type(error).__name__.removeprefix("Upstream").lower()
                )
                now = trio.current_time()
                self._learn(target, True, now, kind)
                # Nothing reached the upstream (refused, or timed out waiting for a slot or
                # the connect): as safe to try elsewhere as a refused connect, for any method.
                decision = decide_retry(
                    self.retry,
                    method=method,
                    failure=AttemptFailure.CONNECT_ERROR
                    if not error.request_sent
                    else AttemptFailure.RESET_BEFORE_HEADERS,
                    attempts_made=attempt,
                    body_sent=error.request_sent,
                    body_buffered=body_buffered,
                    rng=self.rng,
                    now=now,
                    deadline=deadline,
                )
                if not isinstance(decision, Retry):
                    raise
                retry = decision
            finally:
                self.balancer.release(target)
            await trio.sleep(retry.delay)

    async def check_health(self) -> None:
        """Active health checks until cancelled (none when the config says `kind = "none"`)."""
        check = self.config.health_check
        if check.kind == "none":
            return
        while True:
            async with trio.open_nursery() as nursery:
                for target in self.targets:
                    nursery.start_soon(self._check_one, target)
            self.metrics.upstream_available.labels(self.name).set(
                len(self.health.available(trio.current_time()))
            )
            await trio.sleep(check.interval)

    async def _check_one(self, target: UpstreamTarget) -> None:
        check = self.config.health_check
        passed = False
        with trio.move_on_after(check.timeout):
            try:
                if check.kind == "tcp":
                    stream = await trio.open_tcp_stream(target.host, target.port)
                    await stream.aclose()
                    passed = True
                else:
                    timeouts = UpstreamTimeouts(
                        check.timeout, check.timeout, check.timeout, check.timeout
                    )
                    async with self.pool.request(
                        target, b"GET", check.path.encode(), timeouts=timeouts
                    ) as response:
                        await response.read()
                        passed = http_check_passed(response.status)
            except (OSError, UpstreamError):
                passed = False
        self.health.record_check(target, passed, trio.current_time())

    def status(self) -> dict[str, Any]:
        now = trio.current_time()
        snapshot = {str(h.target.authority.decode()): h for h in self.health.snapshot(now)}
        targets = []
        for target in self.targets:
            key = target.authority.decode()
            state = self.breakers[target].state(now)
            self.metrics.upstream_breaker.labels(self.name, key).set(
                BREAKER_STATES.get(str(state), 0)
            )
            health = snapshot.get(key)
            targets.append(
                {
                    "target": key,
                    "scheme": target.scheme,
                    "available": self.health.is_available(target, now),
                    "health": str(health.active) if health else "unknown",
                    "breaker": str(state),
                    "in_flight": self.balancer.in_flight(target),
                }
            )
        return {"balance": self.config.balance, "targets": targets}


def build_groups(
    upstreams: Mapping[str, UpstreamConfig],
    pool: UpstreamPool,
    metrics: ProxyMetrics,
    breaker: BreakerPolicy,
    retry_on_status: tuple[int, ...],
) -> dict[str, UpstreamGroup]:
    return {
        name: UpstreamGroup(name, config, pool, metrics, breaker, retry_on_status)
        for name, config in upstreams.items()
    }
