"""The scenario table: contract rule ids, disjoint expectations, sandboxed, loopback-only."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sentinel_stack.demo.scenarios import (
    MEMFD_PAYLOAD,
    PTRACE_PAYLOAD,
    SCAN_PAYLOAD,
    SCENARIOS,
    Exec,
    Fetch,
    ReadFile,
    Sandbox,
    Target,
    select_scenarios,
)

# The default rule ids of the detection contract (/work/notes/detect-contract.md, issue #7).
CONTRACT_IDS = {
    "web_server_spawned_shell", "web_server_unexpected_child", "reverse_shell_socket_stdio",
    "reverse_shell_dev_tcp", "reverse_shell_netcat_exec", "sensitive_file_read",
    "traversal_read", "setuid_bit_set", "privilege_change", "fileless_exec_memfd",
    "exec_from_tmp_or_shm", "network_tool_run", "ptrace_attach", "cron_write",
    "authorized_keys_write", "log_tampering", "loopback_port_scan", "upstream_ssrf",
    "probe_event_loss", "crash_loop",
}  # fmt: skip

# Issue #7 lists these simulations; each must be in the table.
REQUIRED = {
    "web_shell", "reverse_shell", "sensitive_read", "traversal", "setuid_bit", "memfd_exec",
    "shm_exec", "ptrace", "cron_write", "authorized_keys_write", "log_tampering", "port_scan",
    "ssrf",
}  # fmt: skip


@pytest.fixture
def target(tmp_path: Path) -> Target:
    return Target(Sandbox(tmp_path / "run-abc", "abc"), "/usr/bin/python3", 40123)


def test_every_required_scenario_is_in_the_table_once() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
    assert set(names) == REQUIRED


def test_expected_ids_are_contract_ids_and_no_two_scenarios_share_one() -> None:
    seen: dict[str, str] = {}
    for scenario in SCENARIOS:
        assert scenario.expected, scenario.name
        for rule in scenario.expected:
            assert rule in CONTRACT_IDS, f"{scenario.name}: {rule} is not a contract id"
            assert rule not in seen, f"{rule} expected by {seen.get(rule)} and {scenario.name}"
            seen[rule] = scenario.name


def test_writes_stay_in_the_sandbox(target: Target) -> None:
    """Every path a shell action names lies in the sandbox, or is the run's /dev/shm file,
    or is one of the read-only sources (/bin/true, /etc/shadow)."""
    box = target.sandbox
    allowed_reads = {"/bin/true", "/etc/shadow"}
    for scenario in SCENARIOS:
        action = scenario.action(target)
        if not isinstance(action, Exec) or action.argv[:2] != ("/bin/sh", "-c"):
            continue
        for word in shlex.split(action.argv[2].replace(";", " ; ")):
            if word.startswith("/") and word not in allowed_reads:
                path = Path(word)
                assert path.is_relative_to(box.dir) or path == box.shm_file, (scenario.name, word)


def test_real_persistence_paths_are_never_named(target: Target) -> None:
    for scenario in SCENARIOS:
        text = re.sub(
            re.escape(str(target.sandbox.dir)) + r"[^\s'\"]*", "", repr(scenario.action(target))
        )
        for real in ("/etc/cron", "/.ssh", "/var/log", "/var/spool"):
            assert real not in text, (scenario.name, real)


def test_sandbox_mirrors_the_real_tree(target: Target) -> None:
    box = target.sandbox
    assert str(box.cron_file).endswith("/etc/cron.d/sentinel-sim")
    assert str(box.authorized_keys).endswith("/.ssh/authorized_keys")
    assert str(box.log_file).startswith(str(box.dir / "var" / "log"))
    assert box.shm_file == Path("/dev/shm/sentinel-sim-abc")
    assert set(box.seeded_files) == {box.log_file, box.rotated_log}
    for path in (box.cron_file, box.authorized_keys, box.log_file, box.setuid_copy):
        assert path.parent in box.directories


def test_listener_scenarios_use_the_listener_port(target: Target) -> None:
    listening = [s for s in SCENARIOS if s.listener != "none"]
    assert {s.name for s in listening} == {"reverse_shell", "ssrf"}
    for scenario in listening:
        assert "127.0.0.1:40123" in repr(scenario.action(target)).replace("/", ":")


def test_actions_are_argv_or_requests_and_loopback_only(target: Target) -> None:
    for scenario in SCENARIOS:
        action = scenario.action(target)
        if isinstance(action, Exec):
            assert all(isinstance(a, str) for a in action.argv)
            assert action.argv[0].startswith("/"), "absolute programs: the probe matches paths"
        elif isinstance(action, Fetch):
            assert action.url.startswith("http://127.0.0.1:")
        else:
            assert isinstance(action, ReadFile)
            assert "../" in action.path


def test_python_payloads_compile() -> None:
    for name, code in {
        "memfd": MEMFD_PAYLOAD,
        "ptrace": PTRACE_PAYLOAD,
        "scan": SCAN_PAYLOAD,
    }.items():
        compile(code, name, "exec")


def test_select_keeps_table_order_and_names_unknown_scenarios() -> None:
    assert select_scenarios(None) == SCENARIOS
    chosen = select_scenarios(["ssrf", "web_shell"])
    assert [s.name for s in chosen] == ["web_shell", "ssrf"]
    with pytest.raises(ValueError, match="no scenario named nope; choose from"):
        select_scenarios(["web_shell", "nope"])
