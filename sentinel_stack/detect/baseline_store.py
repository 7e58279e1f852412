"""Where a baseline lives on disk, in what shape, and how a running detector keeps it there.

One JSON file (``[detector] baseline_file``, default ``baseline.json`` in the state dir),
replaced atomically. The detector saves it when it changed, at most every `save_every`
seconds and as soon as learning ends. The file is also the way to talk to a running
detector: `sentinel-stack baseline reset` deletes it, and the detector, seeing its file
gone, starts learning anew; `baseline learn FILE` writes a complete one, and the detector,
seeing a file it did not write, loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from sentinel_stack.detect.baselines import (
    BaselineLimits,
    BaselineModel,
    BaselineStoreLike,
    Profile,
)
from sentinel_stack.probe.replay import read_recording

if TYPE_CHECKING:
    from sentinel_stack.config.schema import DetectorConfig

__all__ = [
    "BaselineDocument",
    "BaselineStore",
    "baseline_path",
    "from_document",
    "learn_recording",
    "read_baseline",
    "to_document",
    "write_baseline",
]

log = logging.getLogger("sentinel_stack.detect.baselines")
FORMAT_VERSION = 1


class ProfileDocument(msgspec.Struct, omit_defaults=True):
    children: list[str] = []
    connects: list[str] = []
    paths: list[str] = []
    saturated: list[str] = []


class BaselineDocument(msgspec.Struct, kw_only=True):
    version: int = FORMAT_VERSION
    window: float
    learned_seconds: float
    complete: bool
    sources: list[str] = []
    updated: float = 0.0
    executables: dict[str, ProfileDocument] = {}


_DECODER = msgspec.json.Decoder(BaselineDocument)


def baseline_path(
    config: DetectorConfig | None, base_dir: Path | None, state_dir: Path | None
) -> Path | None:
    """``baseline_file`` (relative to the config's directory), else the state dir's."""
    if config is not None and config.baseline_file:
        path = Path(config.baseline_file).expanduser()
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        return path
    return state_dir / "baseline.json" if state_dir is not None else None


def to_document(model: BaselineModel, now: float) -> BaselineDocument:
    return BaselineDocument(
        window=model.window,
        learned_seconds=model.learned_seconds,
        complete=not model.learning,
        sources=list(model.sources),
        updated=now,
        executables={
            exe: ProfileDocument(
                sorted(p.children), sorted(p.connects), sorted(p.paths), sorted(p.saturated)
            )
            for exe, p in sorted(model.profiles.items())
        },
    )


def from_document(
    document: BaselineDocument, window: float, limits: BaselineLimits | None = None
) -> BaselineModel:
    """A model with the config's ``window``; a complete document stays complete."""
    model = BaselineModel(window, limits or BaselineLimits())
    model.learned_seconds = window if document.complete else min(document.learned_seconds, window)
    model.sources = list(document.sources)
    for exe, p in document.executables.items():
        model.profiles[exe] = Profile(
            set(p.children), set(p.connects), set(p.paths), set(p.saturated)
        )
    return model


def read_baseline(path: Path) -> BaselineDocument | None:
    """The document at ``path``; None when there is none. Raises ValueError when unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(
            f"{path}: not a baseline file ({exc}); `sentinel-stack baseline reset` removes it"
        ) from None


def write_baseline(path: Path, document: BaselineDocument) -> int:
    """Atomically replace ``path``; returns the new file's mtime in ns."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(document), indent=1) + b"\n")
    tmp.replace(path)
    return path.stat().st_mtime_ns


def learn_recording(model: BaselineModel, recording: Path) -> tuple[int, int]:
    """Learn every kernel event of a probe recording; (events learnt, lines skipped)."""
    learnt = skipped = 0
    for _number, event, _error in read_recording(recording):
        if event is None:
            skipped += 1
            continue
        if hasattr(event, "lineage"):  # kernel events, not probe health or alerts
            model.observe(event, force_learn=True)  # type: ignore[arg-type]
            learnt += 1
    model.sources.append(f"recording:{recording}")
    return learnt, skipped


class BaselineStore(BaselineStoreLike):
    def __init__(self, path: Path, save_every: float = 60.0) -> None:
        self.path = path
        self.save_every = save_every
        self._mtime: int | None = None  # of the file this detector last wrote or read
        self._saved_at: float | None = None
        self.saves = 0

    def load(self, window: float, limits: BaselineLimits | None = None) -> BaselineModel:
        try:
            document = read_baseline(self.path)
        except ValueError as exc:
            broken = self.path.with_name(self.path.name + ".unreadable")
            log.warning("%s; moved aside to %s, learning anew", exc, broken)
            with contextlib.suppress(OSError):
                self.path.replace(broken)
            document = None
        if document is None:
            model = BaselineModel(window, limits or BaselineLimits())
            model.sources.append("live")
            return model
        self._mtime = self._stat()
        return from_document(document, window, limits)

    def sync(self, model: BaselineModel, now: float) -> BaselineModel:
        """Called every tick: follow a reset or a replaced file, else save when due."""
        current = self._stat()
        if self._mtime is not None and current is None:
            log.info("baseline file %s removed: learning anew", self.path)
            self._mtime = None
            fresh = BaselineModel(model.window, model.limits, sources=["live"])
            fresh.changed = True
            return fresh
        if current is not None and current != self._mtime:
            replaced = self.load(model.window, model.limits)
            log.info("baseline file %s replaced: loaded it", self.path)
            return replaced
        if not model.changed:
            return model
        just_completed = not model.learning and self._saved_at is not None
        due = self._saved_at is None or now - self._saved_at >= self.save_every
        if due or just_completed:
            try:
                self._mtime = write_baseline(self.path, to_document(model, now))
            except OSError as exc:
                log.warning("could not save the baseline to %s: %s", self.path, exc)
                self._saved_at = now  # try again at the next interval, not every tick
                return model
            self._saved_at = now
            self.saves += 1
            model.changed = False
        return model

    def _stat(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
