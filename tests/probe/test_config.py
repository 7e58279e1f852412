"""Configuration: path patterns, environment contract, command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_stack.probe.__main__ import build_parser, config_from_args
from sentinel_stack.probe.config import PathPattern, ProbeConfig, expand_patterns


def test_pattern_kinds() -> None:
    assert PathPattern.parse("/etc/shadow").kind == "prefix"
    assert PathPattern.parse("*authorized_keys") == PathPattern("authorized_keys", "substring")
    assert PathPattern.parse("~/.ssh/id_") == PathPattern("/.ssh/id_", "home")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("etc/shadow", "must be absolute"),
        ('/etc/"x', "ASCII without quotes"),
        ("/etc/caf\u00e9", "ASCII"),
        ("*", "empty"),
        ("/" + "a" * 200, "longer than"),
    ],
)
def test_bad_patterns_are_explained(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PathPattern.parse(raw)


def test_home_patterns_expand_to_each_home() -> None:
    patterns = [PathPattern.parse("~/.ssh/authorized_keys"), PathPattern.parse("/var/log")]
    expanded = expand_patterns(patterns, ["/root", "/home/ann/"])
    assert [str(p) for p in expanded] == [
        "/home/ann/.ssh/authorized_keys",
        "/root/.ssh/authorized_keys",
        "/var/log",
    ]


def test_patterns_match_like_the_kernel_side() -> None:
    assert PathPattern.parse("/etc/shadow").matches("/etc/shadow-")
    assert not PathPattern.parse("/etc/shadow").matches("/tmp/etc/shadow")
    assert PathPattern.parse("*/.ssh/id_").matches("/home/x/.ssh/id_rsa")


def test_environment_contract() -> None:
    config = ProbeConfig.from_environment(
        {
            "SENTINEL_EVENTS_SOCKET": "/run/x/events.sock",
            "SENTINEL_STACK_CGROUP": "/sys/fs/cgroup/unified/sentinel-stack.x",
            "SENTINEL_STACK_PID": "321",
            "SENTINEL_CHILD_NAME": "kernel-probe",
        }
    )
    assert config.events_socket == Path("/run/x/events.sock")
    assert config.stack_cgroup == Path("/sys/fs/cgroup/unified/sentinel-stack.x")
    assert (config.stack_pid, config.source) == (321, "kernel-probe")
    with pytest.raises(ValueError, match="not a pid"):
        ProbeConfig.from_environment({"SENTINEL_STACK_PID": "launcher"})


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_EVENTS_SOCKET", "/from/env.sock")
    args = build_parser().parse_args(
        [
            "run",
            "--events-socket",
            "/from/flag.sock",
            "--scope",
            "host",
            "--backend",
            "procfs",
            "--sensitive-path",
            "/srv/secret",
            "--watch-path",
            "~/.bashrc",
            "--program",
            "tcp",
            "--program",
            "exec",
        ]
    )
    config = config_from_args(args)
    assert config.events_socket == Path("/from/flag.sock")
    assert (config.scope, config.backend) == ("host", "procfs")
    assert [str(p) for p in config.sensitive] == ["/srv/secret"]
    assert [str(p) for p in config.watched] == ["~/.bashrc"]
    assert config.programs == ("exec", "tcp")
