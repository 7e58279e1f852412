"""Read a config file into a `StackConfig`, or fail with every problem and where it is."""

from __future__ import annotations

import difflib
import os
import sys
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pydantic
from pydantic import BaseModel

from sentinel_stack.config.interpolate import interpolate
from sentinel_stack.config.locate import KeyPath, index_lines, line_of
from sentinel_stack.config.schema import StackConfig


@dataclass(frozen=True)
class ConfigIssue:
    """One thing wrong with a config: what, where (file, line, key path) and what to do."""

    message: str
    path: KeyPath = ()
    hint: str = ""
    file: str = "<config>"
    line: int | None = None

    @property
    def key_path(self) -> str:
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" {self.key_path}:" if self.path else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"{where}:{key} {self.message}{hint}"


@dataclass
class ConfigError(Exception):
    """Raised with every issue found, not just the first."""

    issues: list[ConfigIssue] = field(default_factory=list)

    def __str__(self) -> str:
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in the config:"
        return "\n".join([head, *(str(issue) for issue in self.issues)])


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config and where it came from, for later error reporting."""

    config: StackConfig
    source: str
    path: Path | None
    text: str
    base_dir: Path  # relative paths in the config resolve against this

    def issue(self, message: str, path: KeyPath, hint: str = "") -> ConfigIssue:
        line = line_of(index_lines(self.text), path)
        return ConfigIssue(message, tuple(path), hint, self.source, line)


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    f"cannot read the config: {exc.strerror}",
                    file=str(path),
                    hint="check the path, or run `sentinel-stack init` to write one",
                )
            ]
        ) from exc
    return load_config_text(text, str(path), environ, path=path, base_dir=path.parent.resolve())


def load_config_text(
    text: str,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    *,
    path: Path | None = None,
    base_dir: Path | None = None,
) -> LoadedConfig:
    """Parse, interpolate and validate; raise `ConfigError` listing every issue."""
    env = {"SENTINEL_PYTHON": sys.executable, **(os.environ if environ is None else environ)}
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_issue(exc, source)]) from exc
    index = index_lines(text)
    data, interpolation_errors = interpolate(raw, env)
    issues = [
        ConfigIssue(str(err), err.path, err.hint, source, line_of(index, err.path))
        for err in interpolation_errors
    ]
    try:
        config = StackConfig.model_validate(data)
    except pydantic.ValidationError as exc:
        issues.extend(_validation_issues(exc, data, source, index))
        raise ConfigError(issues) from None
    if issues:
        raise ConfigError(issues)
    return LoadedConfig(config, source, path, text, base_dir or Path.cwd())


def _syntax_issue(exc: tomllib.TOMLDecodeError, source: str) -> ConfigIssue:
    message = str(exc)
    line = None
    marker = "(at line "
    if marker in message:
        head, _, tail = message.partition(marker)
        message = head.strip()
        digits = tail.split(",")[0]
        line = int(digits) if digits.isdigit() else None
    return ConfigIssue(
        f"TOML syntax error: {message}",
        hint="see https://toml.io for the syntax; strings need quotes",
        file=source,
        line=line,
    )


def _validation_issues(
    exc: pydantic.ValidationError, data: object, source: str, index: dict[KeyPath, int]
) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        path = _data_path(data, error["loc"])
        key = path[-1] if path else ""
        message, hint = error["msg"], ""
        match error["type"]:
            case "extra_forbidden":
                allowed = _allowed_keys(StackConfig, path[:-1])
                message = f"unknown key `{key}`"
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                if close:
                    message += f", did you mean `{close[0]}`?"
                elif allowed:
                    hint = "allowed keys here: " + ", ".join(sorted(allowed))
            case "missing":
                message = f"missing required key `{key}`"
                hint = "add it; `sentinel-stack init` writes a commented example"
            case "value_error":
                message = message.removeprefix("Value error, ")
        issues.append(ConfigIssue(message, path, hint, source, line_of(index, path)))
    return issues


def _data_path(data: object, loc: Sequence[str | int]) -> KeyPath:
    """Keep the parts of pydantic's location that are real keys (drop union tags)."""
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:  # noqa: SIM114  (apart, so mypy narrows)
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
        elif index == len(loc) - 1 and isinstance(part, str | int):
            path.append(part)  # a key that is missing or unknown: still name it
    return tuple(path)


def _allowed_keys(model: type[BaseModel], path: Sequence[str | int]) -> list[str]:
    """The field names of the model that sits at ``path`` in the schema."""
    annotation: object = model
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field_info = annotation.model_fields.get(str(part))
            if field_info is None:
                return []
            annotation = field_info.annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: object) -> object:
    """`X | None` → `X`; `Annotated[X, ...]` → `X`."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation
