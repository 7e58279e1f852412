"""The stack as a deployment target sees it: the plan relocated, the secrets set apart.

`prepare` is pure: config text in, `Deployment` out (no files read, no clock, no
`os.environ`). It compiles the config as `up` does, but with the target's paths (install
prefix, config directory, run directory) instead of this machine's, so every exporter's
output is the same wherever it runs. Values are never baked in where the operator must
supply them: env keys that look secret, env values written as ``${VAR}``, and the
variables the config file itself interpolates come from an env file or a Secret at run
time; the exports list their names, never their values.

The event hub: no exported tier has the launcher, so the detector serves the hub itself
(standalone, docs/detection.md) at ``<run-dir>/events.sock``; the proxy, the probe and the
agents write to it (``SENTINEL_EVENTS_SOCKET``) and depend on the detector, which starts
first. Without a `[detector]` nothing serves the hub and nothing points at it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import tomli_w

from sentinel_stack.config.loader import load_config_text
from sentinel_stack.config.plan import build_plan
from sentinel_stack.config.schema import StackConfig
from sentinel_stack.supervisor.spec import ChildSpec

__all__ = [
    "Asset",
    "Deployment",
    "ExportError",
    "ExportOptions",
    "ExportedChild",
    "HealthCheck",
    "config_variables",
    "looks_secret",
    "prepare",
]

CONFIG_FILE = "sentinel-stack.toml"
REDACTED = "(not exported: the child reads it from its env file or Secret)"
HEALTHCHECK_MODULE = "sentinel_stack.export.healthcheck"
# Env keys whose values must not be written into units, compose files or manifests.
_SECRET_KEY = re.compile(
    r"SECRET|TOKEN|PASSW(OR)?D|PASSPHRASE|CREDENTIAL|PRIVATE|AUTH|COOKIE|SALT|DSN|(^|_)KEYS?($|_)",
    re.IGNORECASE,
)
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Set by the launcher for its own event hub; exported, it points at the detector's hub.
EVENTS_ENV = "SENTINEL_EVENTS_SOCKET"
DETECTOR_MODULE = "sentinel_stack.detect"
# What writes to the event hub, hence starts after the detector that serves it.
HUB_PRODUCERS = ("proxy", "probe", "agent")


class ExportError(Exception):
    """The config cannot be exported as asked; the message says what to change."""


@dataclass(frozen=True)
class ExportOptions:
    """Where the deployment puts things. Paths are absolute paths on the target."""

    prefix: str = "/opt/sentinel-stack"
    """A virtualenv (or image path) holding sentinel-stack: its ``bin/python`` runs every
    built-in component and replaces ``${SENTINEL_PYTHON}``."""
    config_dir: str | None = None  # default /etc/sentinel-stack/<stack>
    run_dir: str | None = None  # default /run/sentinel-stack/<stack>
    image: str = "sentinel-stack:latest"
    replicas: int = 2
    systemd_version: int = 252

    def __post_init__(self) -> None:
        for name in ("prefix", "config_dir", "run_dir"):
            value = getattr(self, name)
            if value is not None and not PurePosixPath(value).is_absolute():
                flag = "--" + name.replace("_", "-")
                raise ExportError(f"{flag} {value!r} must be an absolute path on the target")
        if self.replicas < 1:
            raise ExportError(f"--replicas {self.replicas}: run at least one replica")


@dataclass(frozen=True)
class Asset:
    """A file shipped beside the config (policies, rules): ``path`` is relative to the
    config directory (as the config names it) or absolute."""

    path: str
    text: str
    kind: str = "policies"  # policies, rules: one ConfigMap each on Kubernetes


@dataclass(frozen=True)
class HealthCheck:
    """What a container health check or systemd start check runs: `healthcheck` argv."""

    kind: str  # tcp, unix, http, exec
    target: tuple[str, ...]


@dataclass(frozen=True)
class ExportedChild:
    spec: ChildSpec
    """argv relocated to the target; ``env`` holds only values safe to write down."""
    supplied: tuple[str, ...] = ()
    """Env keys the operator supplies (env file, Secret): their values are never exported."""
    optional: frozenset[str] = frozenset()
    """The supplied keys that have a default in the config (may be left unset)."""

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def socket_activated(self) -> bool:
        """An agent bound by its socket unit; the detector, by the event hub's."""
        return (self.spec.kind == "agent" and self.spec.socket_activation) or (
            self.spec.kind == "detector"
        )


@dataclass(frozen=True)
class Deployment:
    stack: str
    options: ExportOptions
    python: str
    run_dir: str
    config_dir: str
    config: StackConfig
    config_text: str
    children: tuple[ExportedChild, ...]
    assets: tuple[Asset, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def base_name(self) -> str:
        """Prefix of every generated name: ``default.target`` would be systemd's own."""
        return f"sentinel-{self.stack}"

    @property
    def config_file(self) -> str:
        return f"{self.config_dir}/{CONFIG_FILE}"

    @property
    def agents_dir(self) -> str:
        return f"{self.run_dir}/agents"

    @property
    def proxy(self) -> ExportedChild | None:
        return next((c for c in self.children if c.kind == "proxy"), None)

    @property
    def detector(self) -> ExportedChild | None:
        return next((c for c in self.children if c.kind == "detector"), None)

    @property
    def events_socket(self) -> str | None:
        """Where the detector serves the event hub; None without a detector."""
        return events_socket_path(self.run_dir) if self.detector is not None else None

    def child(self, name: str) -> ExportedChild:
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(name)

    def dependencies(self, name: str) -> list[str]:
        """Everything ``name`` needs, transitively, in start order."""
        wanted = set(self.child(name).spec.depends_on)
        for child in reversed(self.children):  # dependents come after their dependencies
            if child.name in wanted:
                wanted.update(child.spec.depends_on)
        return [c.name for c in self.children if c.name in wanted]

    def health_check(self, child: ExportedChild) -> HealthCheck | None:
        """How an outside checker sees ``child`` ready: its own readiness check when it is
        not sd_notify, else what it serves (agent socket, proxy /ready, first port)."""
        check = child.spec.readiness
        if check.kind == "exec":
            return HealthCheck("exec", tuple(check.target))
        if check.kind in ("tcp", "unix", "http"):
            target = str(check.target)
            if check.kind == "http" and "://" not in target:
                target = "http://" + target
            return HealthCheck(check.kind, (target,))
        if child.kind == "agent" and child.spec.socket is not None:
            return HealthCheck("unix", (str(child.spec.socket),))
        if child.kind == "detector" and self.events_socket is not None:
            return HealthCheck("unix", (self.events_socket,))
        if child.kind == "proxy" and self.config.proxy is not None:
            return HealthCheck("http", (f"http://{self.config.proxy.admin}/ready",))
        if child.spec.ports:
            return HealthCheck("tcp", (f"127.0.0.1:{child.spec.ports[0]}",))
        return None

    def healthcheck_argv(self, check: HealthCheck, *extra: str) -> list[str]:
        tail = ["--", *check.target] if check.kind == "exec" else list(check.target)
        return [self.python, "-m", HEALTHCHECK_MODULE, *extra, check.kind, *tail]

    def env_example(self, child: ExportedChild, where: str) -> str:
        """The env file a child reads its supplied values from, with the values left out."""
        defaults = self.supplied_variables()
        lines = [
            f"# Values for `{child.name}` of stack `{self.stack}`: copy this file to {where},",
            "# fill it in, keep it private (chmod 0600). The export never writes these values.",
        ]
        for key in child.supplied:
            if key in child.optional:
                default = defaults.get(key) or ""
                lines.append(f"#{key}={default}  (optional: the config has a default)")
            else:
                lines.append(f"{key}=")
        return "\n".join(lines) + "\n"

    def config_file_text(self, edit: Callable[[dict[str, Any]], bool] | None = None) -> str:
        """The config file the target gets: the user's text as written, unless it holds a
        literal value for a secret-looking env key (then that value is replaced) or ``edit``
        changes something; then the same settings, written anew."""
        raw = tomllib.loads(self.config_text)
        changed = _redact_secrets(raw)
        if edit is not None:
            changed = edit(raw) or changed
        if not changed:
            return self.config_text
        head = (
            "# Generated by `sentinel-stack export` from the stack's config: the same settings,\n"
            "# with secret values left out (children get them from env files or a Secret)\n"
            "# and, in containers, the proxy's client listeners on all addresses.\n"
        )
        return head + tomli_w.dumps(raw)

    def supplied_variables(self) -> dict[str, str | None]:
        """Every operator-supplied name, with its config default (None: none)."""
        defaults = config_variables(tomllib.loads(self.config_text))
        names: dict[str, str | None] = {}
        for child in self.children:
            for key in child.supplied:
                names.setdefault(key, defaults.get(key))
        return names


def events_socket_path(run_dir: str) -> str:
    return f"{run_dir}/events.sock"


def looks_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def config_variables(data: object) -> dict[str, str | None]:
    """The ``${VAR}`` names a raw (uninterpolated) config uses, with their defaults."""
    found: dict[str, str | None] = {}
    for text in _strings(data):
        for match in _REFERENCE.finditer(text):
            name = match.group(1)
            if name and name != "SENTINEL_PYTHON":
                found.setdefault(name, match.group(2))
    return found


def _strings(data: object) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value)


def prepare(
    text: str,
    source: str,
    options: ExportOptions | None = None,
    assets: tuple[Asset, ...] = (),
) -> Deployment:
    """Compile ``text`` for a target. Raises `ConfigError` (bad config) or `ExportError`."""
    options = options or ExportOptions()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        load_config_text(text, source, {})  # raises ConfigError naming the line
        raise
    variables = config_variables(raw)
    python = f"{options.prefix.rstrip('/')}/bin/python"
    # A variable without a default stays a literal ${VAR}: each tier expands it at run time.
    environ = {"SENTINEL_PYTHON": python}
    environ.update({name: f"${{{name}}}" for name, default in variables.items() if not default})
    loaded = load_config_text(text, source, environ)
    config = loaded.config
    config_dir = options.config_dir or f"/etc/sentinel-stack/{config.stack.name}"
    run_dir = options.run_dir or f"/run/sentinel-stack/{config.stack.name}"
    # Relative paths in the config resolve against the config's directory on the target.
    loaded = dataclasses.replace(loaded, base_dir=Path(config_dir))
    plan = build_plan(loaded, environ={}, run_dir=Path(run_dir))
    notes = []
    outside = sorted({a.path for a in assets if a.path.startswith("/")})
    if outside:
        notes.append(
            "files at absolute paths are not shipped to Compose or Kubernetes (make them "
            "relative to the config, or put them in the image): " + ", ".join(outside)
        )
    hub = events_socket_path(run_dir) if "detector" in plan.names else None
    children = _serve_hub_first(
        tuple(
            _export_child(spec, _raw_env(raw, spec), variables, python, config_dir, hub)
            for spec in plan.children
        )
    )
    return Deployment(
        stack=config.stack.name,
        options=options,
        python=python,
        run_dir=run_dir,
        config_dir=config_dir,
        config=config,
        config_text=text,
        children=children,
        assets=assets,
        notes=tuple(notes),
    )


def _serve_hub_first(children: tuple[ExportedChild, ...]) -> tuple[ExportedChild, ...]:
    """The detector as early as its own dependencies allow (it serves the hub), and the
    hub's producers depending on it (those the detector needs itself excepted)."""
    detector = next((child for child in children if child.kind == "detector"), None)
    if detector is None:
        return children
    needed = set(detector.spec.depends_on)
    for child in reversed(children):  # `children` is in start order
        if child.name in needed:
            needed.update(child.spec.depends_on)
    before = [child for child in children if child.name in needed]
    after = []
    for child in children:
        if child.name in needed or child is detector:
            continue
        if child.kind in HUB_PRODUCERS:
            spec = dataclasses.replace(child.spec, depends_on=("detector", *child.spec.depends_on))
            child = dataclasses.replace(child, spec=spec)
        after.append(child)
    return (*before, detector, *after)


def _env_tables(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    sections = [raw.get(name) for name in ("proxy", "probe", "detector")]
    for group in ("processes", "agents"):
        tables = raw.get(group)
        if isinstance(tables, dict):
            sections += list(tables.values())
    for section in sections:
        if isinstance(section, dict) and isinstance(section.get("env"), dict):
            yield section["env"]


def _redact_secrets(raw: dict[str, Any]) -> bool:
    changed = False
    for env in _env_tables(raw):
        for key, value in env.items():
            if looks_secret(key) and isinstance(value, str) and not config_variables(value):
                env[key] = REDACTED
                changed = True
    return changed


def _raw_env(raw: Mapping[str, object], spec: ChildSpec) -> Mapping[str, object]:
    section: object = raw.get(spec.kind) if spec.kind in ("proxy", "probe") else None
    if spec.kind in ("process", "agent"):
        tables = raw.get("processes" if spec.kind == "process" else "agents", {})
        section = tables.get(spec.name) if isinstance(tables, dict) else None
    env = section.get("env", {}) if isinstance(section, dict) else {}
    return env if isinstance(env, dict) else {}


def _export_child(
    spec: ChildSpec,
    raw_env: Mapping[str, object],
    variables: Mapping[str, str | None],
    python: str,
    config_dir: str,
    events_socket: str | None,
) -> ExportedChild:
    supplied: dict[str, bool] = {}  # key -> optional
    for key, value in raw_env.items():
        referenced = config_variables(value)
        if looks_secret(key) or referenced:
            supplied[key] = bool(referenced) and all(referenced.values())
    argv = [python if arg == sys.executable else arg for arg in spec.argv]
    for arg in argv:
        for name in _PLACEHOLDER.findall(arg):
            if name in variables:
                supplied.setdefault(name, False)
    if spec.kind == "proxy":  # it reads the config file, so it interpolates every variable
        for name, default in variables.items():
            supplied.setdefault(name, bool(default))
    env = {
        key: value for key, value in spec.env.items() if key not in supplied and key != EVENTS_ENV
    }
    if events_socket is not None and spec.kind != "detector":
        env[EVENTS_ENV] = events_socket
    if spec.kind == "detector" and events_socket is not None and DETECTOR_MODULE in argv[1:3]:
        # No launcher on any exported tier: the detector serves the hub (standalone).
        argv += ["--serve-events", events_socket]
    env["SENTINEL_CONFIG"] = f"{config_dir}/{CONFIG_FILE}"
    return ExportedChild(
        spec=dataclasses.replace(spec, argv=tuple(argv), env=env, cwd=spec.cwd or config_dir),
        supplied=tuple(supplied),
        optional=frozenset(key for key, optional in supplied.items() if optional),
    )
