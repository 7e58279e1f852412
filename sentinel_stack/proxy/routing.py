"""Which route a request takes: path normalisation, then a first-match scan of ordered rules.

Matching runs on a *normalised* path so that `/api/../admin` cannot slip past a rule for
`/admin`. The raw path is still what goes upstream (rewriting it would break upstreams that
give meaning to `//` or encoded bytes); instead, paths on which a decoding upstream could
disagree with the route chosen here are refused (see `normalize_path`).

Rules are ordered once, when the table is built: higher ``priority`` first, then the more
specific path condition (exact > regex > longer prefix > none), then config order. The first
rule whose host, path, method and header conditions all hold wins.

Path regexes come from config, but they run against attacker-chosen paths, so they are
compiled with RE2 (linear time, no catastrophic backtracking) when `google-re2` is installed.
Without it, Python's `re` is used; `REGEX_ENGINE` says which one is active.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol
from urllib.parse import unquote

if TYPE_CHECKING:
    from sentinel_stack.config.schema import RouteConfig

__all__ = [
    "REGEX_ENGINE",
    "PathReason",
    "PathRejection",
    "Route",
    "RouteTable",
    "normalize_host",
    "normalize_path",
]


class _Pattern(Protocol):
    def fullmatch(self, string: str) -> object | None: ...


def _compile_python(pattern: str) -> _Pattern:
    return re.compile(pattern)


try:
    import re2

    _RE2_OPTIONS = re2.Options()
    _RE2_OPTIONS.log_errors = False  # errors become ValueErrors with the route id instead

    def _compile(pattern: str) -> _Pattern:
        try:
            compiled: _Pattern = re2.compile(pattern, _RE2_OPTIONS)
        except re2.error as exc:
            detail = exc.args[0] if exc.args else exc
            text = detail.decode() if isinstance(detail, bytes) else str(detail)
            raise ValueError(f"{text} (RE2 syntax: no backreferences or look-around)") from exc
        return compiled

    REGEX_ENGINE: Literal["re2", "re"] = "re2"
except ImportError:  # pragma: no cover - exercised only where google-re2 is missing
    _compile = _compile_python
    REGEX_ENGINE = "re"


class PathReason(enum.StrEnum):
    """Why a request path cannot be routed; the front answers 400 for each of these."""

    NOT_ORIGIN_FORM = "path does not start with '/'"
    BAD_PERCENT_ENCODING = "'%' not followed by two hex digits"
    NUL_BYTE = "path contains a NUL byte"
    INVALID_CHARACTER = "path contains a control, space or non-ASCII character"
    ESCAPES_ROOT = "'..' segments climb above the root"
    ENCODED_SEPARATOR = "path contains %2F, %5C or a backslash"
    DOT_SEGMENT_PARAMS = "a segment is empty, '.' or '..' before its ';' parameters"
    AMBIGUOUS_SEGMENT = "an encoded separator hides a '.' or '..' segment"


@dataclass(frozen=True, slots=True)
class PathRejection:
    """A path refused by `normalize_path`, with the raw path for the access log."""

    reason: PathReason
    path: str

    @property
    def status(self) -> int:
        return 400


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_DOTS = (".", "..")


def normalize_path(
    raw: str, *, encoded_separators: Literal["reject", "keep"] = "reject"
) -> str | PathRejection:
    """The path a route is matched against, or why there is none.

    *raw* is the path as received: ASGI ``raw_path`` decoded as latin-1 with the query cut
    off, never ASGI's ``path``, which is already percent-decoded. Exactly this is
    normalised, in this order:

    1. ``%XX`` of an unreserved character (``A-Z a-z 0-9 - . _ ~``) is decoded; every other
       ``%XX`` stays encoded with upper-case hex (RFC 3986 §6.2.2.1-2). So ``%2e`` becomes
       ``.`` and takes part in step 3. Only one layer is decoded (``%252e`` stays).
    2. Empty segments collapse: ``//`` becomes ``/``.
    3. ``.`` and ``..`` segments are resolved (RFC 3986 §5.2.4), keeping a trailing slash.

    Refused (a `PathRejection`): a path not starting with ``/`` (no ``*`` or absolute form),
    a bad ``%`` escape, NUL raw or as ``%00``, raw control/space/non-ASCII characters, ``..``
    climbing above the root (RFC 3986 would clamp it; a request that tries is refused), and,
    in a path that needs step 2 or 3, a segment that is ``.``, ``..`` or empty before ``;``
    parameters (``/api/..;/admin``: servlet containers drop the parameters, then resolve).
    ``%2F``, ``%5C`` and a raw backslash are refused too: WSGI/ASGI servers decode ``%2F``
    into ``/`` before the application routes, so ``/admin%2Fusers`` would miss a ``/admin``
    rule here yet reach ``/admin/users`` there. With ``encoded_separators="keep"`` they stay
    (one segment, as RFC 3986 says) unless they hide a dot segment (``/a%2F..%2Fb``); use
    that only for upstreams that never decode them.

    Not handled: ``;`` parameters elsewhere are kept as part of their segment, so a servlet
    upstream sees ``/admin;x/y`` as ``/admin/y`` while a ``/admin`` prefix here does not
    match it; and paths are case-sensitive, unlike on Windows upstreams.

    The result is idempotent: ``normalize_path(normalize_path(p)) == normalize_path(p)``.
    """
    if not raw.startswith("/"):
        return PathRejection(PathReason.NOT_ORIGIN_FORM, raw)
    decoded = _decode_unreserved(raw)
    if isinstance(decoded, PathReason):
        return PathRejection(decoded, raw)
    if "%2F" in decoded or "%5C" in decoded or "\\" in decoded:
        if encoded_separators == "reject":
            return PathRejection(PathReason.ENCODED_SEPARATOR, raw)
        loose = unquote(decoded).replace("\\", "/").split("/")
        if any(segment.split(";", 1)[0] in _DOTS for segment in loose[1:]):
            return PathRejection(PathReason.AMBIGUOUS_SEGMENT, raw)
    resolved = _resolve_segments(decoded)
    if isinstance(resolved, PathReason):
        return PathRejection(resolved, raw)
    return resolved


def _decode_unreserved(raw: str) -> str | PathReason:
    if "%" not in raw:
        # Fast path: nothing to decode, only characters to vet.
        if "\x00" in raw:
            return PathReason.NUL_BYTE
        if not (raw.isascii() and raw.isprintable()) or " " in raw:
            return PathReason.INVALID_CHARACTER
        return raw
    out: list[str] = []
    i, size = 0, len(raw)
    while i < size:
        char = raw[i]
        if char == "%":
            digits = raw[i + 1 : i + 3]
            if len(digits) != 2 or not _HEX.issuperset(digits):
                return PathReason.BAD_PERCENT_ENCODING
            octet = chr(int(digits, 16))
            if octet == "\x00":
                return PathReason.NUL_BYTE
            out.append(octet if octet in _UNRESERVED else "%" + digits.upper())
            i += 3
            continue
        if char == "\x00":
            return PathReason.NUL_BYTE
        if char <= " " or char > "~":
            return PathReason.INVALID_CHARACTER
        out.append(char)
        i += 1
    return "".join(out)


def _resolve_segments(path: str) -> str | PathReason:
    if "//" not in path and "/." not in path:
        return path
    parts = path.split("/")[1:]
    kept: list[str] = []
    trailing = False
    last = len(parts) - 1
    for index, segment in enumerate(parts):
        if segment in ("", "."):
            trailing = index == last
        elif segment == "..":
            if not kept:
                return PathReason.ESCAPES_ROOT
            kept.pop()
            trailing = index == last
        elif segment[:1] in ".;%" and unquote(segment).split(";", 1)[0] in ("", *_DOTS):
            # `..;x` is `..` to servlet containers, `;x` an empty segment they drop.
            return PathReason.DOT_SEGMENT_PARAMS
        else:
            kept.append(segment)
            trailing = False
    if not kept:
        return "/"
    return "/" + "/".join(kept) + ("/" if trailing else "")


def normalize_host(host: str) -> str:
    """A Host header or `:authority` as routes see it: lower case, no port, no trailing dot.

    IPv6 literals keep their brackets (``[::1]:8080`` → ``[::1]``).
    """
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host[:-1] if host.endswith(".") else host


@dataclass(frozen=True, slots=True)
class Route:
    """One routing rule and what the proxy does with a request it matches.

    At most one of ``path``, ``path_prefix`` and ``path_regex`` is set; none means any path.
    ``host`` is an exact name or ``*.example.com`` (one or more labels before the suffix,
    not the bare ``example.com``); ``None`` or ``*`` means any host. ``methods`` empty means
    any method. ``headers`` are (name, value) pairs that must all be present, names compared
    case-insensitively and values exactly. ``path_regex`` must match the whole normalised path.
    """

    id: str
    upstream: str
    host: str | None = None
    path: str | None = None
    path_prefix: str | None = None
    path_regex: str | None = None
    methods: frozenset[str] = frozenset()
    headers: tuple[tuple[str, str], ...] = ()
    priority: int = 0
    agents: tuple[str, ...] | None = None
    failure_mode: Literal["open", "closed"] | None = None  # None: each agent's own setting
    inspect_body: bool = False
    max_body: int = 1024 * 1024

    @classmethod
    def from_config(cls, config: RouteConfig) -> Route:
        return cls(
            id=config.id,
            upstream=config.upstream,
            host=config.host,
            path=config.path,
            path_prefix=config.path_prefix,
            path_regex=config.path_regex,
            methods=frozenset(m.upper() for m in config.methods),
            headers=tuple(config.headers.items()),
            priority=config.priority,
            agents=tuple(config.agents) if config.agents is not None else None,
            failure_mode=config.failure_mode,
            inspect_body=config.inspect_body,
            max_body=config.max_body,
        )


_EXACT, _REGEX, _PREFIX, _ANY_PATH = range(4)


@dataclass(frozen=True, slots=True)
class _Rule:
    """A route compiled for matching; `sort_key` encodes priority, specificity and order."""

    route: Route
    sort_key: tuple[int, int, int, int]
    host_exact: str | None
    host_suffix: str | None
    exact: str | None
    prefix: str | None
    regex: _Pattern | None
    methods: frozenset[str]
    headers: tuple[tuple[str, str], ...]

    def matches(self, host: str, path: str, method: str, headers: dict[str, list[str]]) -> bool:
        if self.host_exact is not None and host != self.host_exact:
            return False
        if self.host_suffix is not None and not (
            host.endswith(self.host_suffix) and len(host) > len(self.host_suffix)
        ):
            return False
        if self.exact is not None and path != self.exact:
            return False
        if self.prefix is not None and not _under_prefix(path, self.prefix):
            return False
        if self.regex is not None and self.regex.fullmatch(path) is None:
            return False
        if self.methods and method not in self.methods:
            return False
        return all(value in headers.get(name, ()) for name, value in self.headers)


def _under_prefix(path: str, prefix: str) -> bool:
    # Segment-aware: `/api` covers `/api` and `/api/x`, never `/apix`; `/api/` needs the slash.
    if prefix.endswith("/"):
        return path.startswith(prefix)
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] == "/")


def _compile_rule(route: Route, order: int) -> _Rule:
    where = f"route `{route.id}`"
    conditions = [k for k in ("path", "path_prefix", "path_regex") if getattr(route, k)]
    if len(conditions) > 1:
        raise ValueError(f"{where}: set one of {' / '.join(conditions)}, not several")
    exact = _config_path(where, "path", route.path) if route.path else None
    prefix = _config_path(where, "path_prefix", route.path_prefix) if route.path_prefix else None
    regex = None
    if route.path_regex:
        try:
            regex = _compile(route.path_regex)
        except (ValueError, re.error) as exc:
            raise ValueError(f"{where}: path_regex {route.path_regex!r} is invalid: {exc}") from exc
    if exact is not None:
        specificity, length = _EXACT, 0
    elif regex is not None:
        specificity, length = _REGEX, 0
    elif prefix is not None:
        specificity, length = _PREFIX, len(prefix)
    else:
        specificity, length = _ANY_PATH, 0
    host = (route.host or "*").strip().lower()
    host_exact = host_suffix = None
    if host.startswith("*.") and len(host) > 2:
        host_suffix = "." + normalize_host(host[2:])
    elif host != "*":
        if "*" in host:
            raise ValueError(f"{where}: host {route.host!r}: only a leading `*.` is supported")
        host_exact = normalize_host(host)
    return _Rule(
        route=route,
        sort_key=(-route.priority, specificity, -length, order),
        host_exact=host_exact,
        host_suffix=host_suffix,
        exact=exact,
        prefix=prefix,
        regex=regex,
        methods=frozenset(m.upper() for m in route.methods),
        headers=tuple((name.lower(), value) for name, value in route.headers),
    )


def _config_path(where: str, key: str, value: str) -> str:
    normalised = normalize_path(value)
    if isinstance(normalised, str):
        return normalised
    raise ValueError(f"{where}: {key} {value!r} is not a usable path: {normalised.reason}")


class RouteTable:
    """An immutable, ordered set of routes; build a new table to change routes."""

    __slots__ = ("_rules", "_uses_headers")

    def __init__(self, routes: Sequence[Route]) -> None:
        """Compile and order *routes*; raises ValueError naming the route that is unusable."""
        seen: set[str] = set()
        for route in routes:
            if route.id in seen:
                raise ValueError(f"route id `{route.id}` is used twice; ids must be unique")
            seen.add(route.id)
        rules = [_compile_rule(route, order) for order, route in enumerate(routes)]
        self._rules = tuple(sorted(rules, key=lambda rule: rule.sort_key))
        self._uses_headers = any(rule.headers for rule in rules)

    @classmethod
    def from_config(cls, routes: Sequence[RouteConfig]) -> RouteTable:
        return cls([Route.from_config(route) for route in routes])

    @property
    def routes(self) -> tuple[Route, ...]:
        """The routes in the order they are tried."""
        return tuple(rule.route for rule in self._rules)

    def match(
        self,
        host: str,
        path: str,
        method: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> Route | None:
        """The first route matching the request, or None (the front answers 404).

        *path* must be the output of `normalize_path` (matching a raw path would let dot
        segments and encodings choose the route); *host* may carry a port and any case.
        """
        index: dict[str, list[str]] = {}
        if self._uses_headers:
            for name, value in headers:
                index.setdefault(name.lower(), []).append(value)
        host = normalize_host(host)
        method = method.upper()
        for rule in self._rules:
            if rule.matches(host, path, method, index):
                return rule.route
        return None
