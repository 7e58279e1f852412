"""Compose the bpftrace programs in bpf/ into the one script bpftrace runs.

The .bt files stay readable: where the scope predicate, the common task header or a path
match belongs they hold a placeholder (``{{IN_SCOPE}}``, ``{{TASK}}``,
``{{CLASSIFY_OPEN($why, args->filename, args->flags)}}``...). `compose` expands them from a
`ScopeFilter` and the configured path patterns. It is pure: the same inputs give the same
text, which the tests pin down without a kernel.

One bpftrace process runs every program: the scope maps are shared and bpftrace pays its
start-up (BTF parsing, compilation) once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel_stack.probe.config import PathPattern
from sentinel_stack.probe.scope import ScopeFilter

__all__ = [
    "STRLEN",
    "WRITE_FLAGS",
    "CompositionError",
    "ProgramSet",
    "compose",
    "load_programs",
]

# Bytes bpftrace's str() reads. 128 is what bpftrace 0.17's 512-byte stack allows with a
# full task header in the same record (see docs/probe.md).
STRLEN = 128
# O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND: an open that may change the file.
WRITE_FLAGS = 0x643
CLONE_THREAD = 0x10000

# The common head of every record emitted in a process context: time (CLOCK_MONOTONIC ns),
# pid, tid, ppid, uid, euid, gid, cgroup v2 id, process start (boot-time ns), comm.
TASK_HEADER = (
    "nsecs, (uint64)pid, (uint64)tid, (uint64)curtask->real_parent->tgid, uid,"
    " (uint64)curtask->cred->euid.val, gid, cgroup,"
    " (uint64)curtask->group_leader->start_boottime, comm"
)

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)(?:\(([^)]*)\))?\}\}")
_MAP = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*")


class CompositionError(ValueError):
    """A program file uses a placeholder wrongly; the message names file and placeholder."""


@dataclass(frozen=True, slots=True)
class ProgramSet:
    """The sources of the programs to run, by name (``exec``, ``scope/tree``...)."""

    sources: Mapping[str, str]

    def names(self) -> list[str]:
        return list(self.sources)


def load_programs(bpf_dir: Path, names: Sequence[str], scope: ScopeFilter) -> ProgramSet:
    """Read the requested programs plus the scope tracker the scope needs and ready.bt."""
    wanted = list(names)
    if scope.mode == "tree":
        wanted.insert(0, "scope/tree")
    elif scope.mode == "cgroup":
        wanted.insert(0, "scope/cgroup")
    wanted.append("ready")
    sources: dict[str, str] = {}
    for name in wanted:
        path = bpf_dir / f"{name}.bt"
        try:
            sources[name] = path.read_text()
        except OSError as exc:
            raise CompositionError(f"cannot read bpftrace program {path}: {exc}") from exc
    return ProgramSet(sources)


def scope_predicate(scope: ScopeFilter) -> str:
    """The in-kernel test "the current task is in scope and is not the probe or its child"."""
    me = scope.probe_pid
    not_self = f"pid != {me} && curtask->real_parent->tgid != {me}"
    if scope.mode == "host":
        return f"({not_self})"
    if scope.mode == "tree":
        return f"((@scope[pid] || @scope[curtask->real_parent->tgid]) && {not_self})"
    return f"(@stack_cg[cgroup] && {not_self})"


def scope_seed(scope: ScopeFilter) -> str:
    """BEGIN statements that load the scope maps with what existed when the probe started."""
    if scope.mode == "tree":
        return " ".join(f"@scope[{pid}] = 1;" for pid in sorted(scope.seed_pids))
    if scope.mode == "cgroup":
        return " ".join(f"@stack_cg[{cg}] = 1;" for cg in sorted(scope.cgroup_ids))
    return ""


def _literal(text: str) -> str:
    # PathPattern.parse already refused quotes, backslashes, control and non-ASCII bytes.
    return f'"{text}"'


def _word(data: bytes) -> str:
    return f"{int.from_bytes(data, 'little'):#x}"


def _read(pointer: str, offset: int | str, size: int) -> str:
    address = pointer if offset == 0 else f"{pointer} + {offset}"
    return f"*(uint{size * 8} *)uptr({address})"


def prefix_test(pointer: str, prefix: bytes, first_word: str) -> str:
    """An expression true when the user string at `pointer` starts with `prefix`.

    Compares whole little-endian words instead of bytes: bpftrace 0.17 unrolls strncmp into
    per-byte branches, which made compiling and verifying a dozen patterns take seconds.
    No read goes past the prefix's last byte, so a path ending just before an unmapped
    page still matches (a read that faults returns 0 and simply fails the comparison).
    `first_word` names a variable already holding the first 8 bytes (used when len >= 8).
    """
    n = len(prefix)
    terms: list[str] = []
    if n >= 8:
        terms.append(f"{first_word} == {_word(prefix[:8])}")
        offset = 8
        while offset + 8 <= n:
            terms.append(f"{_read(pointer, offset, 8)} == {_word(prefix[offset : offset + 8])}")
            offset += 8
        if offset < n:  # the tail, read as an 8-byte word overlapping the previous one
            terms.append(f"{_read(pointer, n - 8, 8)} == {_word(prefix[n - 8 :])}")
    else:
        offset = 0
        for size in (4, 2, 1):
            if n - offset >= size:
                chunk = prefix[offset : offset + size]
                terms.append(f"{_read(pointer, offset, size)} == {_word(chunk)}")
                offset += size
    return "(" + " && ".join(terms) + ")"


def traversal_scan(out: str, pointer: str, bit: int) -> list[str]:
    """Statements setting `bit` in `out` when the user string at `pointer` contains "../".

    A bounded loop over 4-byte windows at a stride of 2 (each window tests the pattern at
    its first and second byte) stops at the terminating NUL, so it never reads beyond it.
    strcontains() did the same in 0.5 s of compilation and verification per probe.
    """
    windows = STRLEN // 2 - 1
    return [
        "$tr_i = 0;",
        f"while ($tr_i < {windows}) {{",
        f"  $tr_v = {_read(pointer, '$tr_i * 2', 4)};",
        "  if (($tr_v & 0xff) == 0 || ($tr_v & 0xff00) == 0) { break; }",
        "  if (($tr_v & 0xffffff) == 0x2f2e2e || ($tr_v >> 8) == 0x2f2e2e) {",
        f"    {out} = {out} | {bit};",
        "    break;",
        "  }",
        "  $tr_i++;",
        "}",
    ]


def _substring_tests(pointer: str, patterns: Sequence[PathPattern]) -> list[str]:
    # strcontains needs its own str() read (with a shared variable bpftrace 0.17 overflows
    # the 512-byte BPF stack at STRLEN 128) and costs ~0.5 s of start-up per probe: "*"
    # patterns are supported but not used by default.
    return [
        f"strcontains(str(uptr({pointer})), {_literal(p.text)})" for p in patterns if p.substring
    ]


def _classify(
    out: str, pointer: str, patterns: Sequence[PathPattern], bit: int, guard: str | None = None
) -> list[str]:
    if any(p.kind == "home" for p in patterns):
        raise CompositionError("'~/' path patterns must be expanded (expand_patterns) first")
    prefixes = [p.text.encode() for p in patterns if p.kind == "prefix"]
    tests = [prefix_test(pointer, prefix, "$w0") for prefix in prefixes]
    tests += _substring_tests(pointer, patterns)
    if not tests:
        return []
    body: list[str] = []
    if any(len(prefix) >= 8 for prefix in prefixes):
        body.append(f"$w0 = {_read(pointer, 0, 8)};")
    body += [f"if ({test}) {{ {out} = {out} | {bit}; }}" for test in tests]
    if guard is None:
        return body
    return [f"if ({guard}) {{", *("  " + line for line in body), "}"]


@dataclass(frozen=True, slots=True)
class _Context:
    scope: ScopeFilter
    sensitive: tuple[PathPattern, ...]
    watched: tuple[PathPattern, ...]
    maps: tuple[str, ...]


def _args(raw: str | None, count: int, name: str) -> list[str]:
    parts = [part.strip() for part in (raw or "").split(",")] if raw else []
    if len(parts) != count or not all(parts):
        raise CompositionError(f"{{{{{name}(...)}}}} takes {count} arguments, got {raw!r}")
    return parts


def _classify_open(ctx: _Context, raw: str | None) -> list[str]:
    out, raw_pointer, flags = _args(raw, 3, "CLASSIFY_OPEN")
    # Loaded once: dereferencing `args` inside the loop is rejected by the verifier
    # ("dereference of modified ctx ptr").
    pointer = f"$ptr_{out[1:]}"
    lines = [f"{pointer} = (uint64){raw_pointer};", f"{out} = 0;"]
    lines += _classify(out, pointer, ctx.sensitive, 1)
    lines += traversal_scan(out, pointer, 2)
    lines += _classify(out, pointer, ctx.watched, 4, guard=f"{flags} & {WRITE_FLAGS:#x}")
    return lines


def _classify_watched(ctx: _Context, raw: str | None) -> list[str]:
    out, raw_pointer = _args(raw, 2, "CLASSIFY_WATCHED")
    pointer = f"$ptr_{out[1:]}"
    return [
        f"{pointer} = (uint64){raw_pointer};",
        f"{out} = 0;",
        *_classify(out, pointer, ctx.watched, 1),
    ]


def _cgroup_under_stack(ctx: _Context, raw: str | None) -> list[str]:
    out, path = _args(raw, 2, "CGROUP_UNDER_STACK")
    prefix = ctx.scope.cgroup_relpath + "/"
    return [
        f"{out} = strncmp(str({path}), {_literal(prefix)}, {len(prefix.encode())}) == 0 ? 1 : 0;"
    ]


_Expander = Callable[[_Context, str | None], list[str]]

_STATEMENTS: dict[str, _Expander] = {
    "CLASSIFY_OPEN": _classify_open,
    "CLASSIFY_WATCHED": _classify_watched,
    "CGROUP_UNDER_STACK": _cgroup_under_stack,
}


def _expression(ctx: _Context, name: str) -> str | None:
    if name == "IN_SCOPE":
        return scope_predicate(ctx.scope)
    if name == "TASK":
        return TASK_HEADER
    if name == "SEED":
        return scope_seed(ctx.scope)
    if name == "CLEAR_MAPS":
        return " ".join(f"clear({m});" for m in ctx.maps)
    return None


def _strip_comments(source: str) -> str:
    # Whole-line comments only: they document placeholders, which must not be expanded.
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("//"))


def _expand(name: str, source: str, ctx: _Context) -> str:
    out: list[str] = []
    for line in source.splitlines():
        match = _PLACEHOLDER.fullmatch(line.strip())
        if match and match[1] in _STATEMENTS:
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + stmt for stmt in _STATEMENTS[match[1]](ctx, match[2]))
            continue

        def substitute(m: re.Match[str]) -> str:
            value = _expression(ctx, m[1])
            if value is None or m[2] is not None:
                raise CompositionError(f"{name}.bt: unknown or misplaced placeholder {m[0]}")
            return value

        out.append(_PLACEHOLDER.sub(substitute, line))
    return "\n".join(out)


def compose(
    programs: ProgramSet,
    scope: ScopeFilter,
    sensitive: Sequence[PathPattern],
    watched: Sequence[PathPattern],
) -> str:
    """The complete bpftrace script for this scope and these path patterns."""
    stripped = {name: _strip_comments(text) for name, text in programs.sources.items()}
    body = "\n".join(stripped.values())
    maps = tuple(sorted(set(_MAP.findall(_PLACEHOLDER.sub("", body)))))
    if scope.mode == "tree":
        maps = tuple(sorted({*maps, "@scope"}))
    elif scope.mode == "cgroup":
        maps = tuple(sorted({*maps, "@stack_cg"}))
    ctx = _Context(scope, tuple(sensitive), tuple(watched), maps)
    parts = [f"// {name}.bt\n{_expand(name, text, ctx)}" for name, text in stripped.items()]
    return "\n\n".join(parts) + "\n"
