"""Reading a policy from disk: a directory of ``.rego`` and ``data.json`` files, or an OPA
bundle ``.tar.gz``, into memory, with a revision for drift detection.

Layout follows OPA bundles: a ``data.json`` in directory ``a/b/`` is mounted at
``data.a.b``; an optional ``.manifest`` may carry a ``revision``. Files named
``*_test.rego`` are policy tests: they are kept apart, never compiled into the policy that
serves traffic, and run by `run_policy_tests`.

The *digest* is a SHA-256 over every file read (path and bytes, in path order), so it
changes whenever anything on disk changes, whatever the manifest says; the *revision* is
the manifest's revision when it has one, else the digest.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

# A bundle is read into memory whole; this bounds what a corrupt or hostile one can cost.
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


class PolicySourceError(Exception):
    """A policy that cannot be read; ``where`` names the file (and line, when known)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Everything a policy needs, read from disk: module texts, data, identity."""

    origin: str
    modules: Mapping[str, str]
    test_modules: Mapping[str, str]
    data: Mapping[str, Any]
    digest: str
    revision: str
    roots: tuple[str, ...] = field(default_factory=tuple)


def load_policy_source(path: Path) -> PolicySource:
    """Read a policy directory or ``.tar.gz`` bundle; raises `PolicySourceError`."""
    if path.is_dir():
        files = dict(_directory_files(path))
    elif path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        files = dict(_bundle_files(path))
    elif not path.exists():
        raise PolicySourceError(str(path), "no such policy directory or bundle")
    else:
        raise PolicySourceError(str(path), "expected a directory or an OPA bundle .tar.gz")
    return policy_source_from_files(str(path), files)


def policy_digest(path: Path) -> str:
    """The digest of what is on disk now, to compare with the running policy's digest."""
    return load_policy_source(path).digest


def policy_source_from_files(origin: str, files: Mapping[str, bytes]) -> PolicySource:
    """Build a `PolicySource` from relative POSIX paths and their bytes (pure)."""
    hasher = hashlib.sha256()
    modules: dict[str, str] = {}
    tests: dict[str, str] = {}
    data: dict[str, Any] = {}
    manifest: dict[str, Any] = {}
    for name in sorted(files):
        content = files[name]
        hasher.update(name.encode() + b"\0" + len(content).to_bytes(8, "big") + content)
        where = f"{origin}:{name}"
        base = PurePosixPath(name).name
        if name.endswith(".rego"):
            text = _text(content, where)
            (tests if name.endswith("_test.rego") else modules)[name] = text
        elif base == "data.json":
            _mount(data, PurePosixPath(name).parent.parts, _json(content, where), where)
        elif base == ".manifest":
            loaded = _json(content, where)
            if not isinstance(loaded, dict):
                raise PolicySourceError(where, "the manifest must be a JSON object")
            manifest = loaded
    if not modules:
        raise PolicySourceError(origin, "no .rego policy modules found (tests alone do not serve)")
    digest = "sha256:" + hasher.hexdigest()
    revision = manifest.get("revision")
    roots = manifest.get("roots", [])
    return PolicySource(
        origin=origin,
        modules=modules,
        test_modules=tests,
        data=data,
        digest=digest,
        revision=revision if isinstance(revision, str) and revision else digest,
        roots=tuple(r for r in roots if isinstance(r, str)) if isinstance(roots, list) else (),
    )


def _directory_files(root: Path) -> Iterator[tuple[str, bytes]]:
    total = 0
    for file in sorted(root.rglob("*")):
        if not file.is_file() or not _wanted(file.name):
            continue
        relative = file.relative_to(root).as_posix()
        if any(part.startswith(".") for part in relative.split("/")[:-1]):
            continue  # editor and VCS directories (.git/...) are not policy
        content = file.read_bytes()
        total += len(content)
        if total > MAX_BUNDLE_BYTES:
            raise PolicySourceError(str(root), f"policy files exceed {MAX_BUNDLE_BYTES} bytes")
        yield relative, content


def _bundle_files(bundle: Path) -> Iterator[tuple[str, bytes]]:
    total = 0
    try:
        with tarfile.open(bundle, "r:gz") as archive:
            for member in archive:
                if not member.isfile() or not _wanted(PurePosixPath(member.name).name):
                    continue
                parts = [p for p in PurePosixPath(member.name).parts if p not in ("", ".", "/")]
                if ".." in parts:
                    raise PolicySourceError(f"{bundle}:{member.name}", "path escapes the bundle")
                total += member.size
                if total > MAX_BUNDLE_BYTES:
                    raise PolicySourceError(str(bundle), f"bundle exceeds {MAX_BUNDLE_BYTES} bytes")
                handle = archive.extractfile(member)
                if handle is not None:
                    yield "/".join(parts), handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PolicySourceError(str(bundle), f"cannot read bundle: {exc}") from None


def _wanted(name: str) -> bool:
    return name.endswith(".rego") or name in ("data.json", ".manifest")


def _text(content: bytes, where: str) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicySourceError(where, f"not UTF-8 text (byte {exc.start})") from None


def _json(content: bytes, where: str) -> Any:
    try:
        return json.loads(_text(content, where))
    except json.JSONDecodeError as exc:
        raise PolicySourceError(f"{where}:{exc.lineno}", f"invalid JSON: {exc.msg}") from None


def _mount(data: dict[str, Any], parts: tuple[str, ...], value: Any, where: str) -> None:
    """Place ``value`` at ``data[parts...]``, merging objects as OPA does."""
    if not parts:
        if not isinstance(value, dict):
            raise PolicySourceError(where, "a top-level data.json must be a JSON object")
        _merge(data, value, where)
        return
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise PolicySourceError(where, f"data path {'.'.join(parts)} conflicts with a value")
        node = child
    leaf = parts[-1]
    if isinstance(node.get(leaf), dict) and isinstance(value, dict):
        _merge(node[leaf], value, where)
    elif leaf in node:
        raise PolicySourceError(where, f"data path {'.'.join(parts)} is defined twice")
    else:
        node[leaf] = value


def _merge(into: dict[str, Any], value: dict[str, Any], where: str) -> None:
    for key, item in value.items():
        if isinstance(into.get(key), dict) and isinstance(item, dict):
            _merge(into[key], item, where)
        elif key in into:
            raise PolicySourceError(where, f"data key {key!r} is defined twice")
        else:
            into[key] = item
