"""The stack view: which child a process belongs to, allowed egress, config and status."""

from __future__ import annotations

import pytest

from sentinel_stack.config.loader import ConfigError, load_config_text
from sentinel_stack.detect.context import StackView, parse_egress
from sentinel_stack.detect.wiring import apply_status, builtin_lists, view_from_config
from sentinel_stack.probe import events as ev


def event(pid: int, *ancestors: int, cgroup: str | None = None) -> ev.ExecEvent:
    return ev.ExecEvent(
        time=1.0,
        pid=pid,
        comm="x",
        cgroup_path=cgroup,
        lineage=[ev.Ancestor(a, "p") for a in ancestors],
    )


def test_stack_child_by_cgroup_then_by_pid_then_the_launcher() -> None:
    view = StackView(launcher_pid=1)
    view.child_started("demo", 10)
    assert view.stack_child(event(99, cgroup="/user.slice/sentinel-stack.default/waf")) == "waf"
    assert view.stack_child(event(50, 40, 10, 1)) == "demo"
    assert view.stack_child(event(60, 1)) == "launcher"
    assert view.stack_child(event(70, 2)) is None
    assert view.is_stack_main(event(10, 1)) is True
    assert view.is_stack_main(event(11, 1)) is True  # the launcher started it: a child
    assert view.is_stack_main(event(50, 10, 1)) is False


def test_state_changes_move_pids() -> None:
    view = StackView()
    view.observe_state("demo", "running", 10)
    view.observe_state("demo", "backoff", 10)
    view.observe_state("demo", "running", 11)
    assert view.pids == {11: "demo"}


@pytest.mark.parametrize(
    ("entry", "address", "port", "allowed"),
    [
        ("10.0.0.5:5432", "10.0.0.5", 5432, True),
        ("10.0.0.5:5432", "10.0.0.5", 5433, False),
        ("10.0.0.0/8", "10.9.9.9", 1, True),
        ("*:443", "93.184.216.34", 443, True),
        ("[::1]:6379", "::1", 6379, True),
        ("localhost:6379-6380", "127.0.0.1", 6380, True),
        ("localhost:6379-6380", "::ffff:127.0.0.1", 6379, True),
        ("127.0.0.1", "127.0.0.2", 80, False),
    ],
)
def test_egress_entries(entry: str, address: str, port: int, allowed: bool) -> None:
    view = StackView(egress=(parse_egress(entry),))
    assert view.egress_allowed(None, address, port) is allowed


@pytest.mark.parametrize("bad", ["db.internal:5432", "10.0.0.1:http", "*:70000"])
def test_bad_egress_entries_say_why(bad: str) -> None:
    with pytest.raises(ValueError, match="allowed egress"):
        parse_egress(bad)


CONFIG = """
[processes.api]
command = ["true"]

[agents.waf]
command = ["true"]

[upstreams.shop]
targets = ["127.0.0.1:8081"]
process = "api"
allowed_destinations = ["10.0.0.5:5432"]

[detector]
allowed_egress = ["*:443"]
"""


def test_the_view_from_config_and_status() -> None:
    view = view_from_config(load_config_text(CONFIG).config)
    assert view.upstreams == {"api"} and view.upstream_process == {"shop": "api"}
    assert view.kinds == {"api": "process", "waf": "agent", "detector": "detector"}
    assert view.egress_allowed("api", "10.0.0.5", 5432)
    assert not view.egress_allowed("waf", "10.0.0.5", 5432)
    assert view.egress_allowed("waf", "1.1.1.1", 443)
    apply_status(
        view,
        {
            "stack": {"pid": 1},
            "children": [
                {"name": "api", "kind": "process", "pid": 10, "state": "running"},
                {"name": "waf", "kind": "agent", "pid": None, "state": "backoff"},
            ],
        },
    )
    assert view.launcher_pid == 1 and view.pids == {10: "api"}
    assert builtin_lists(view) == {
        "stack_upstreams": ["api"],
        "stack_agents": ["waf"],
        "stack_children": ["api", "detector", "waf"],
    }


def test_a_bad_allowed_egress_is_a_config_error_with_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text('[detector]\nallowed_egress = ["db:5432"]\n')
    assert caught.value.issues[0].line == 2
    assert "host names are not resolved" in caught.value.issues[0].message
