"""Scope resolution and its pure helpers."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from sentinel_stack.probe.config import ProbeConfig
from sentinel_stack.probe.procfs import (
    container_id_from_cgroup,
    parse_cgroup_v2_path,
    parse_stat,
    parse_status_ids,
)
from sentinel_stack.probe.scope import descendants, parse_cgroup2_mount, resolve_scope

MOUNTINFO = """\
22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
"""


def test_cgroup2_mount_in_a_hybrid_layout() -> None:
    assert parse_cgroup2_mount(MOUNTINFO) == Path("/sys/fs/cgroup/unified")
    assert parse_cgroup2_mount("") is None


def test_descendants_follow_the_tree_and_ignore_loops() -> None:
    parents = {2: 1, 3: 2, 4: 3, 5: 1, 6: 6}
    assert descendants(2, parents) == {2, 3, 4}
    assert descendants(6, parents) == {6}


def test_parse_stat_with_a_hostile_comm() -> None:
    stat = "1234 (a) b (c) S 77 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0 0"
    assert parse_stat(stat) == ("a) b (c", 77, 98765)


def test_status_ids_and_cgroup_path() -> None:
    status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\n"
    assert parse_status_ids(status) == (1000, 0, 100)
    assert parse_cgroup_v2_path("4:memory:/x\n0::/sentinel-stack.demo/proxy\n") == (
        "/sentinel-stack.demo/proxy"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/system.slice/docker-" + "a" * 64 + ".scope", "a" * 64),
        ("/docker/" + "b" * 64, "b" * 64),
        ("/kubepods/burstable/pod1/" + "c" * 64, "c" * 64),
        ("/system.slice/cri-containerd-" + "d" * 64 + ".scope", "d" * 64),
        ("/user.slice/session-1.scope", None),
        (None, None),
    ],
)
def test_container_ids_from_cgroup_paths(path: str | None, expected: str | None) -> None:
    assert container_id_from_cgroup(path) == expected


def test_host_scope() -> None:
    scope = resolve_scope(replace(ProbeConfig(), scope="host"), probe_pid=123)
    assert scope.mode == "host" and scope.probe_pid == 123


def test_tree_scope_seeds_the_tree_without_the_probe() -> None:
    config = replace(ProbeConfig(), stack_pid=os.getppid())
    scope = resolve_scope(config, probe_pid=os.getpid())
    assert scope.mode == "tree" and scope.root_pid == os.getppid()
    assert os.getppid() in scope.seed_pids and os.getpid() not in scope.seed_pids


def test_cgroup_scope_must_exist_below_the_mount(tmp_path: Path) -> None:
    config = replace(ProbeConfig(), stack_cgroup=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="SENTINEL_STACK_CGROUP"):
        resolve_scope(config, probe_pid=1)
