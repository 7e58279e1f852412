"""The rate limiter: first matching rule, its bucket key, a GCRA step, a bounded key table.

Pure: the caller passes ``now`` (monotonic seconds) with every decision; nothing here reads
a clock, opens a socket or keeps module-level state, so tests drive it with a fake clock.

Memory is bounded by ``max_keys``. A key is only ever forgotten when it is *idle* (its TAT
is not in the future, so its bucket is full and forgetting it changes no decision). When
every slot holds an active key, a new key is not admitted to the table: it shares the
rule's single *overflow bucket* instead, which is itself rate limited, so a flood of fresh
keys (spoofed IPs, random API keys) can neither grow memory nor evade the limit.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sentinel_agents.ratelimit.config import KeyPart, RateLimitConfig, RateLimitRule, RuleMatch
from sentinel_agents.ratelimit.gcra import NS_PER_S, GcraLimit, gcra_step, is_idle

# How many table entries one insertion may inspect to find an idle one; bounds the worst
# case of a decision when the table is full of active keys.
_EVICTION_SCAN = 16


@dataclass(frozen=True, slots=True)
class RateLimitRequest:
    """The request facts rules can match and key on. Header names must be lower-case."""

    method: str
    path: str
    client_ip: str
    route: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RateLimitResult:
    """One decision, with what a 429 and the ``RateLimit-*`` headers need.

    ``allowed`` is what the proxy must do; ``would_block`` is True when the rule would have
    refused but dry-run let the request through. Durations are seconds from ``now``:
    ``retry_after`` is 0 unless refused (or would have been), ``reset`` is the time until
    the bucket is full again. ``rule`` is None when no rule matched (no limit applies).
    """

    allowed: bool
    rule: str | None
    limit: int
    remaining: int
    retry_after: float
    reset: float
    window: float
    would_block: bool = False
    overflow: bool = False


UNLIMITED = RateLimitResult(
    allowed=True, rule=None, limit=0, remaining=0, retry_after=0.0, reset=0.0, window=0.0
)


@dataclass(slots=True)
class RuleCounters:
    """Running totals for one rule, for metrics and the TUI."""

    allowed: int = 0
    blocked: int = 0
    would_block: int = 0
    overflow: int = 0


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    index: int
    rule: RateLimitRule
    matches: Callable[[RateLimitRequest], bool]
    key_of: Callable[[RateLimitRequest], tuple[object, ...]]
    dry_run: bool


class RateLimiter:
    """Decides requests against an ordered rule list; one instance per agent process."""

    def __init__(self, config: RateLimitConfig) -> None:
        self._config = config
        self._rules = tuple(
            _CompiledRule(
                index=i,
                rule=rule,
                matches=_matcher(rule.match),
                key_of=_key_builder(i, rule.key),
                dry_run=config.dry_run or rule.dry_run,
            )
            for i, rule in enumerate(config.rules)
        )
        self._tats: OrderedDict[tuple[object, ...], int] = OrderedDict()
        self._overflow_tats: dict[int, int] = {}
        self.counters: dict[str, RuleCounters] = {r.name: RuleCounters() for r in config.rules}
        self.evictions = 0

    def inherit(self, previous: RateLimiter) -> int:
        """Take over the buckets of ``previous`` for every rule that is unchanged (equal
        definition, wherever it now sits in the list), so a reload that edits one rule does
        not hand every client a fresh burst. Returns the number of keys carried over."""
        moved: dict[int, int] = {}
        for old in previous._rules:
            for new in self._rules:
                if new.rule == old.rule and new.index not in moved.values():
                    moved[old.index] = new.index
                    break
        carried = 0
        for key, tat in previous._tats.items():  # oldest first: the LRU order survives
            index = key[0]
            if index in moved and len(self._tats) < self._config.max_keys:
                assert isinstance(index, int)
                self._tats[(moved[index], *key[1:])] = tat
                carried += 1
        for index, tat in previous._overflow_tats.items():
            if index in moved:
                self._overflow_tats[moved[index]] = tat
        for old in previous._rules:
            if old.index in moved:
                self.counters[old.rule.name] = previous.counters[old.rule.name]
        return carried

    @property
    def config(self) -> RateLimitConfig:
        """The rules this limiter was built from."""
        return self._config

    def __len__(self) -> int:
        """Number of tracked keys (excluding the per-rule overflow buckets)."""
        return len(self._tats)

    def decide(self, request: RateLimitRequest, now: float, cost: int = 1) -> RateLimitResult:
        """Decide ``request`` at monotonic time ``now`` (seconds); ``cost`` units are spent."""
        for compiled in self._rules:
            if compiled.matches(request):
                return self._apply(compiled, compiled.key_of(request), round(now * NS_PER_S), cost)
        return UNLIMITED

    def rule_for(self, request: RateLimitRequest) -> RateLimitRule | None:
        """The rule that would decide ``request`` (the first that matches), if any."""
        for compiled in self._rules:
            if compiled.matches(request):
                return compiled.rule
        return None

    def evict_idle(self, now: float, budget: int = 1024) -> int:
        """Forget up to ``budget`` idle keys, least recently used first; returns how many.

        Optional housekeeping for quiet periods: the table never exceeds ``max_keys``
        without it, but calling this lets memory shrink back after a burst of clients.
        """
        now_ns = round(now * NS_PER_S)
        evicted = 0
        for _ in range(min(budget, len(self._tats))):
            key, tat = next(iter(self._tats.items()))
            if not is_idle(tat, now_ns):
                self._tats.move_to_end(key)
                continue
            del self._tats[key]
            evicted += 1
        self.evictions += evicted
        return evicted

    def is_tracked(self, request: RateLimitRequest) -> bool:
        """True when the bucket deciding ``request`` has its own table entry."""
        for compiled in self._rules:
            if compiled.matches(request):
                return compiled.key_of(request) in self._tats
        return False

    def _apply(
        self, compiled: _CompiledRule, key: tuple[object, ...], now_ns: int, cost: int
    ) -> RateLimitResult:
        limit = compiled.rule.limit
        counters = self.counters[compiled.rule.name]
        tats = self._tats
        overflow = False
        tat = tats.get(key)
        if tat is not None:
            tats.move_to_end(key)
        elif len(tats) < self._config.max_keys or self._make_room(now_ns):
            tat = 0
        else:
            overflow = True
            counters.overflow += 1
            tat = self._overflow_tats.get(compiled.index, 0)
        outcome = gcra_step(limit, tat, now_ns, cost)
        if outcome.allowed:
            if overflow:
                self._overflow_tats[compiled.index] = outcome.new_tat
            else:
                tats[key] = outcome.new_tat
            counters.allowed += 1
            return _result(
                compiled.rule.name,
                limit,
                outcome.remaining,
                0,
                outcome.reset_ns,
                allowed=True,
                would_block=False,
                overflow=overflow,
            )
        if compiled.dry_run:
            # The state is left as a refusal leaves it, so dry-run counts what enforcing would.
            counters.would_block += 1
            return _result(
                compiled.rule.name,
                limit,
                0,
                outcome.retry_after_ns,
                outcome.reset_ns,
                allowed=True,
                would_block=True,
                overflow=overflow,
            )
        counters.blocked += 1
        return _result(
            compiled.rule.name,
            limit,
            0,
            outcome.retry_after_ns,
            outcome.reset_ns,
            allowed=False,
            would_block=False,
            overflow=overflow,
        )

    def _make_room(self, now_ns: int) -> bool:
        """Evict one idle key, looking at no more than `_EVICTION_SCAN` entries.

        Active keys met on the way are moved to the back: they are not evictable now, and
        rotating them keeps later scans from re-reading the same ones.
        """
        tats = self._tats
        for _ in range(min(_EVICTION_SCAN, len(tats))):
            key, tat = next(iter(tats.items()))
            if is_idle(tat, now_ns):
                del tats[key]
                self.evictions += 1
                return True
            tats.move_to_end(key)
        return False


def _result(
    rule: str,
    limit: GcraLimit,
    remaining: int,
    retry_after_ns: int,
    reset_ns: int,
    *,
    allowed: bool,
    would_block: bool,
    overflow: bool,
) -> RateLimitResult:
    return RateLimitResult(
        allowed=allowed,
        rule=rule,
        limit=limit.burst,
        remaining=remaining,
        retry_after=retry_after_ns / NS_PER_S,
        reset=max(0, reset_ns) / NS_PER_S,
        window=limit.tolerance_ns / NS_PER_S,
        would_block=would_block,
        overflow=overflow,
    )


def _matcher(match: RuleMatch) -> Callable[[RateLimitRequest], bool]:
    """A closure testing only the conditions the rule sets (fast path for empty matches)."""
    routes = frozenset(match.routes)
    prefixes = match.path_prefixes
    methods = frozenset(match.methods)
    headers = match.headers

    def matches(request: RateLimitRequest) -> bool:
        if routes and request.route not in routes:
            return False
        if methods and request.method.upper() not in methods:
            return False
        if prefixes and not request.path.startswith(prefixes):
            return False
        for header in headers:
            value = request.headers.get(header.name)
            if value is None or (header.value is not None and value != header.value):
                return False
        return True

    if not (routes or prefixes or methods or headers):
        return lambda _request: True
    return matches


def _key_builder(
    index: int, parts: tuple[KeyPart, ...]
) -> Callable[[RateLimitRequest], tuple[object, ...]]:
    """A closure building the bucket key; the rule index keeps rules' buckets apart.

    A missing header keys as the empty string: clients that omit it share one bucket
    rather than escaping the limit.
    """
    getters: list[Callable[[RateLimitRequest], str]] = []
    for part in parts:
        if part.source == "client_ip":
            getters.append(lambda r: r.client_ip)
        elif part.source == "path":
            getters.append(lambda r: r.path)
        elif part.source == "route":
            getters.append(lambda r: r.route)
        elif part.source == "method":
            getters.append(lambda r: r.method.upper())
        elif part.source == "header":
            name = part.header
            getters.append(lambda r, name=name: r.headers.get(name, ""))  # type: ignore[misc]
    if len(getters) == 1:
        only = getters[0]
        return lambda r: (index, only(r))
    if not getters:  # "global": one bucket for the rule
        return lambda _r: (index,)
    return lambda r: (index, *(get(r) for get in getters))
