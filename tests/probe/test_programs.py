"""Composition of the bpftrace programs: pure text in, text out, no kernel needed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sentinel_stack.probe.config import (
    DEFAULT_SENSITIVE_PATHS,
    DEFAULT_WATCH_PATHS,
    PROGRAM_NAMES,
    PathPattern,
    default_bpf_dir,
    expand_patterns,
)
from sentinel_stack.probe.programs import (
    STRLEN,
    CompositionError,
    ProgramSet,
    compose,
    load_programs,
    prefix_test,
    scope_predicate,
    traversal_scan,
)
from sentinel_stack.probe.scope import ScopeFilter

BPF = default_bpf_dir()
HOST = ScopeFilter(mode="host", probe_pid=4242)
TREE = ScopeFilter(mode="tree", probe_pid=4242, root_pid=100, seed_pids=frozenset({100, 101}))
CGROUP = ScopeFilter(
    mode="cgroup",
    probe_pid=4242,
    cgroup_dir=Path("/sys/fs/cgroup/unified/sentinel-stack.demo"),
    cgroup_relpath="/sentinel-stack.demo",
    cgroup_ids=frozenset({77, 78}),
)
SENSITIVE = expand_patterns(map(PathPattern.parse, DEFAULT_SENSITIVE_PATHS), ["/root"])
WATCHED = expand_patterns(map(PathPattern.parse, DEFAULT_WATCH_PATHS), ["/root", "/home/ann"])


def full(scope: ScopeFilter) -> str:
    return compose(load_programs(BPF, PROGRAM_NAMES, scope), scope, SENSITIVE, WATCHED)


@pytest.mark.parametrize("scope", [HOST, TREE, CGROUP], ids=lambda s: s.mode)
def test_every_placeholder_is_expanded(scope: ScopeFilter) -> None:
    script = full(scope)
    assert "{{" not in script and "}}" not in script
    assert "BEGIN" in script and 'print(("ready"' in script


def test_host_scope_only_excludes_the_probe_and_its_children() -> None:
    assert scope_predicate(HOST) == "(pid != 4242 && curtask->real_parent->tgid != 4242)"
    script = full(HOST)
    assert "@scope" not in script and "@stack_cg" not in script


def test_tree_scope_tracks_pids_in_the_kernel_and_seeds_them() -> None:
    script = full(TREE)
    assert "tracepoint:task:task_newtask" in script
    assert "@scope[100] = 1; @scope[101] = 1;" in script
    assert "(@scope[pid] || @scope[curtask->real_parent->tgid]) && pid != 4242" in script


def test_cgroup_scope_tracks_the_subtree_by_id_and_path_prefix() -> None:
    script = full(CGROUP)
    assert "@stack_cg[77] = 1; @stack_cg[78] = 1;" in script
    assert '"/sentinel-stack.demo/", 21) == 0' in script
    assert "(@stack_cg[cgroup] && pid != 4242" in script


def test_every_map_is_cleared_at_end_so_bpftrace_prints_nothing() -> None:
    script = full(TREE)
    end = script[script.index("END") :]
    used = set(re.findall(r"@[a-z_]+", script[: script.index("END")]))
    cleared = set(re.findall(r"clear\((@[a-z_]+)\)", end))
    assert used == cleared


def test_no_substring_pattern_means_no_strcontains() -> None:
    # strcontains costs ~0.5 s of start-up per probe: the defaults must not need it.
    assert "strcontains" not in full(HOST)
    with_star = compose(
        load_programs(BPF, ["open"], HOST), HOST, [PathPattern.parse("*/.ssh/id_")], []
    )
    assert 'strcontains(str(uptr($ptr_why)), "/.ssh/id_")' in with_star


def test_home_patterns_must_be_expanded_first() -> None:
    with pytest.raises(CompositionError, match="expand"):
        compose(load_programs(BPF, ["open"], HOST), HOST, [PathPattern.parse("~/.ssh/id_")], [])


def test_unknown_placeholder_names_the_file() -> None:
    programs = ProgramSet({"broken": "tracepoint:a:b { print(({{NOPE}})); }"})
    with pytest.raises(CompositionError, match=r"broken\.bt.*\{\{NOPE\}\}"):
        compose(programs, HOST, [], [])


def test_wrong_placeholder_arity_is_reported() -> None:
    programs = ProgramSet({"broken": "  {{CLASSIFY_WATCHED($hit)}}"})
    with pytest.raises(CompositionError, match="takes 2 arguments"):
        compose(programs, HOST, [], [])


_TERM = re.compile(r"\*\(uint(\d+) \*\)uptr\(P(?: \+ (\d+))?\) == (0x[0-9a-f]+)")


def _reads(expression: str, first_word: str) -> list[tuple[int, bytes]]:
    """(offset, bytes) of every comparison in a prefix test."""
    found = []
    for term in expression.strip("()").split(" && "):
        if term.startswith(first_word):
            found.append((0, int(term.split(" == ")[1], 16).to_bytes(8, "little")))
            continue
        match = _TERM.fullmatch(term)
        assert match, term
        size, offset = int(match[1]) // 8, int(match[2] or 0)
        found.append((offset, int(match[3], 16).to_bytes(size, "little")))
    return found


@pytest.mark.parametrize(
    "prefix", ["/etc/shadow", "/var/log", "/root", "/a", "/etc/security/opasswd", "/etc/x.d/"]
)
def test_prefix_words_spell_the_prefix_and_never_read_past_it(prefix: str) -> None:
    data = prefix.encode()
    reads = _reads(prefix_test("P", data, "$w0"), "$w0")
    covered = bytearray(len(data))
    for offset, chunk in reads:
        assert offset + len(chunk) <= len(data), "a read goes past the prefix"
        assert data[offset : offset + len(chunk)] == chunk
        covered[offset : offset + len(chunk)] = b"\1" * len(chunk)
    assert all(covered), "some byte of the prefix is never compared"


def _simulate_traversal(code: list[str], path: bytes) -> bool:
    """Run the generated window scan over `path` followed by a NUL and garbage."""
    text = "\n".join(code)
    windows = int(re.search(r"while \(\$tr_i < (\d+)\)", text)[1])  # type: ignore[index]
    pattern = int(re.search(r"== (0x2f2e2e)", text)[1], 16)  # type: ignore[index]
    memory = path + b"\0" + b"../../../" * 30
    for i in range(windows):
        value = int.from_bytes(memory[i * 2 : i * 2 + 4], "little")
        if value & 0xFF == 0 or value & 0xFF00 == 0:
            return False
        if value & 0xFFFFFF == pattern or value >> 8 == pattern:
            return True
    return False


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (b"../etc/passwd", True),
        (b"/var/www/../../etc/shadow", True),
        (b"a/../b", True),
        (b"ab/../b", True),
        (b"/etc/passwd", False),
        (b"/etc/..hidden/x", False),
        (b"/x/..", False),
        (b"", False),
        (b"/" + b"a" * 100 + b"/../x", True),
    ],
)
def test_traversal_scan_finds_dot_dot_slash_before_the_nul(path: bytes, expected: bool) -> None:
    assert _simulate_traversal(traversal_scan("$why", "P", 2), path) is expected


def test_traversal_scan_stays_within_strlen() -> None:
    text = "\n".join(traversal_scan("$why", "P", 2))
    windows = int(re.search(r"while \(\$tr_i < (\d+)\)", text)[1])  # type: ignore[index]
    assert (windows - 1) * 2 + 4 <= STRLEN + 2


@pytest.mark.parametrize("path", sorted(BPF.rglob("*.bt")), ids=lambda p: p.name)
def test_every_program_says_what_it_observes_and_what_it_costs(path: Path) -> None:
    header = path.read_text().split("\n\n")[0]
    assert header.startswith(f"// {path.relative_to(BPF).as_posix()} -- ")
    assert "Cost:" in header
