"""Behaviour baselines: what each executable of the stack normally does, and what it never did.

Per executable (its path, or ``comm:<name>`` when the probe could not read one) the model
learns three sets for a learning window:

- children: the executables it execs (from `kernel.exec`, the parent being lineage[0]);
- connect destinations: ``loopback:<port>`` (IPv4 and IPv6 loopback alike; ports in the
  kernel's ephemeral range 32768-60999 are one bucket, ``loopback:ephemeral``, since what
  listens there changes every run), exact ``address:port`` for private and link-local
  addresses, and ``network/24:port`` (``/48`` for IPv6) for public ones, which CDNs and
  load balancers rotate within;
- file path prefixes: the directory of each open the probe reports (sensitive, traversal,
  watched writes: the probe filters the rest in the kernel), cut to `depth` components.

The window counts time the detector ran, not wall time, so a stack that is down for a
night does not end its learning with nothing learned. After the window, anything outside
the sets raises ``baseline_new_child`` / ``baseline_new_connect`` (medium) or
``baseline_new_path`` (low); deviations of an executable with no profile at all are low.
A set that would outgrow its cap while learning is marked *saturated* and never alerts:
behaviour that varied is no baseline. Pure: time comes in; files are `baseline_store`'s.
"""

from __future__ import annotations

import functools
import ipaddress
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sentinel_stack.detect.alert import Alert, FieldValue, ProcessInfo, Severity
from sentinel_stack.detect.events import DetectEvent
from sentinel_stack.detect.folding import AlertFolder
from sentinel_stack.detect.pipeline import BaseAnalyzer, Components, PipelineContext
from sentinel_stack.probe import events as ev

__all__ = [
    "CATEGORIES",
    "BaselineAnalyzer",
    "BaselineLimits",
    "BaselineModel",
    "Profile",
    "connect_key",
    "detector_components",
    "path_prefix",
]

CATEGORIES = ("children", "connects", "paths")
RULES: dict[str, tuple[str, Severity]] = {
    "children": ("baseline_new_child", "medium"),
    "connects": ("baseline_new_connect", "medium"),
    "paths": ("baseline_new_path", "low"),
}
EPHEMERAL_PORTS = range(32768, 61000)
_EINPROGRESS = -115
# A tick longer than this is the detector having been stopped: not learning time.
MAX_TICK = 5.0


@dataclass(frozen=True, slots=True)
class BaselineLimits:
    depth: int = 3
    max_executables: int = 1024
    max_children: int = 256
    max_connects: int = 512
    max_paths: int = 512

    def cap(self, category: str) -> int:
        return {
            "children": self.max_children,
            "connects": self.max_connects,
            "paths": self.max_paths,
        }[category]


@dataclass(slots=True)
class Profile:
    children: set[str] = field(default_factory=set)
    connects: set[str] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)
    saturated: set[str] = field(default_factory=set)

    def items(self, category: str) -> set[str]:
        found: set[str] = getattr(self, category)
        return found


@dataclass
class BaselineModel:
    """The learnt sets and the learning clock. `observe` learns or judges one event."""

    window: float
    limits: BaselineLimits = field(default_factory=BaselineLimits)
    learned_seconds: float = 0.0
    profiles: dict[str, Profile] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    # An executable-count overflow while learning: later ones are unprofiled.
    overflowed: int = 0
    changed: bool = False

    @property
    def learning(self) -> bool:
        return self.learned_seconds < self.window

    @property
    def active(self) -> bool:
        """Judging deviations: learning is over and something was learnt."""
        return not self.learning and bool(self.profiles)

    def advance(self, seconds: float) -> None:
        """Count ``seconds`` of running time towards the window."""
        if self.learning:
            self.learned_seconds = min(self.window, self.learned_seconds + max(0.0, seconds))
            self.changed = True

    def observe(self, event: ev.KernelEvent, force_learn: bool = False) -> list[Alert]:
        """Learn (while learning, or with ``force_learn``) or judge one kernel event."""
        facts = list(facts_of(event, self.limits.depth))
        if not facts:
            return []
        if self.learning or force_learn:
            for exe, category, item in facts:
                self._learn(exe, category, item)
            return []
        if not self.profiles:
            return []
        alerts = []
        for exe, category, item in facts:
            profile = self.profiles.get(exe)
            if profile is not None and (
                category in profile.saturated or item in profile.items(category)
            ):
                continue
            alerts.append(_anomaly(event, exe, category, item, profile is not None))
        return alerts

    def _learn(self, exe: str, category: str, item: str) -> None:
        profile = self.profiles.get(exe)
        if profile is None:
            if len(self.profiles) >= self.limits.max_executables:
                self.overflowed += 1
                return
            profile = self.profiles[exe] = Profile()
        if category in profile.saturated:
            return
        items = profile.items(category)
        if item in items:
            return
        if len(items) >= self.limits.cap(category):
            profile.saturated.add(category)
            items.clear()  # no longer a baseline: keep no memory for it
        else:
            items.add(item)
        self.changed = True


def executable(exe: str | None, comm: str) -> str:
    return exe or f"comm:{comm or '?'}"


def facts_of(event: ev.KernelEvent, depth: int) -> Iterable[tuple[str, str, str]]:
    """(executable, category, item) the event tells of; nothing for other kinds."""
    if isinstance(event, ev.ExecEvent):
        if event.lineage:
            parent = event.lineage[0]
            child = event.exe or event.filename or f"comm:{event.comm}"
            yield executable(parent.exe, parent.comm), "children", child
        return
    me = executable(event.exe, event.comm)
    if isinstance(event, ev.ConnectEvent):
        if event.result is not None and event.result not in (0, _EINPROGRESS):
            return
        key = connect_key(event)
        if key is not None:
            yield me, "connects", key
    elif isinstance(event, ev.OpenEvent | ev.FileChangeEvent) and event.path:
        yield me, "paths", path_prefix(event.path, depth)


def connect_key(event: ev.ConnectEvent) -> str | None:
    """The bucketed destination (see the module docstring); None for non-IP sockets."""
    if event.remote is None or not event.family.startswith("inet"):
        return None
    return _bucket(event.remote.address, event.remote.port)


@functools.lru_cache(maxsize=4096)  # parsing addresses is most of a connect's cost
def _bucket(text: str, port: int) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return f"loopback:{'ephemeral' if port in EPHEMERAL_PORTS else port}"
    if address.is_private or address.is_link_local:
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{host}:{port}"
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return f"{network}:{port}"


def path_prefix(path: str, depth: int) -> str:
    """The directory of ``path`` (``..`` resolved lexically), at most ``depth`` deep."""
    normal = posixpath.normpath(path)
    directory = posixpath.dirname(normal) or "."
    absolute = directory.startswith("/")
    parts = [p for p in directory.split("/") if p][:depth]
    return ("/" if absolute else "") + "/".join(parts) if parts else ("/" if absolute else ".")


def _anomaly(event: ev.KernelEvent, exe: str, category: str, item: str, profiled: bool) -> Alert:
    rule, severity = RULES[category]
    if not profiled:
        severity = "low"
    what = {
        "children": f"{exe} started {item}, which it never started while learning",
        "connects": f"{exe} connected to {item}, a destination it never used while learning",
        "paths": f"{exe} opened a path under {item}, where it never went while learning",
    }[category]
    if not profiled:
        what = f"{what} (no profile for {exe})"
    fields: dict[str, FieldValue] = {"exe": exe, "category": category, "item": item}
    fields["profiled"] = profiled
    if isinstance(event, ev.OpenEvent | ev.FileChangeEvent):
        fields["path"] = event.path
    return Alert(
        time=event.time,
        rule=rule,
        severity=severity,
        summary=what,
        tags=["baseline", "anomaly"],
        fields=fields,
        process=ProcessInfo(
            pid=event.pid,
            comm=event.comm,
            exe=event.exe,
            argv=event.argv,
            uid=event.uid,
            lineage=[{"pid": a.pid, "comm": a.comm, "exe": a.exe} for a in event.lineage],
        ),
    )


class BaselineAnalyzer(BaseAnalyzer):
    """The model in the pipeline; saves it through ``store`` (see `baseline_store`).

    A deviation that repeats (a new child started every request) folds through the rules
    engine's `AlertFolder`, keyed by executable and item: one alert, then one with the count.
    """

    name = "baselines"

    def __init__(
        self,
        model: BaselineModel,
        store: BaselineStoreLike | None = None,
        folder: AlertFolder | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.folder = folder or AlertFolder(window=600.0)
        self._last_tick: float | None = None

    def observe(self, event: DetectEvent, now: float) -> list[Alert]:
        if not isinstance(event, ev.KernelEvent):
            return []
        alerts: list[Alert] = []
        for alert in self.model.observe(event):
            key = f"{alert.fields.get('exe')}|{alert.fields.get('item')}"
            alerts += self.folder.admit(alert, key, now)
        return alerts

    def tick(self, now: float) -> list[Alert]:
        if self._last_tick is not None:
            elapsed = now - self._last_tick
            if elapsed <= MAX_TICK:
                self.model.advance(elapsed)
        self._last_tick = now
        if self.store is not None:
            self.model = self.store.sync(self.model, now)
        return self.folder.flush(now)


class BaselineStoreLike:
    """What the analyzer needs of a store: give the model back, saved or replaced."""

    def sync(self, model: BaselineModel, now: float) -> BaselineModel:
        return model


def detector_components(context: PipelineContext) -> Components:
    """Baselines when `[detector] baseline_window` > 0 or a learnt baseline file exists."""
    from sentinel_stack.detect.baseline_store import BaselineStore, baseline_path

    config = context.config.detector if context.config is not None else None
    window = config.baseline_window if config is not None else 3600.0
    path = baseline_path(config, _base_dir(context), context.state_dir)
    store = BaselineStore(path) if path is not None else None
    model = store.load(window) if store is not None else BaselineModel(window)
    if window <= 0 and not model.profiles:
        return Components()
    dedup = float(getattr(config, "dedup_window", 600.0))
    return Components(analyzers=[BaselineAnalyzer(model, store, AlertFolder(window=dedup))])


def _base_dir(context: PipelineContext) -> Path | None:
    return context.config_path.parent if context.config_path is not None else None
