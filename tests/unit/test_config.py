"""Every class of config error names file, line, key path and gives a hint."""

from pathlib import Path

import pytest

from sentinel_stack.config import ConfigError, load_config, load_config_text
from sentinel_stack.config.durations import format_duration, parse_duration
from sentinel_stack.config.plan import build_plan
from sentinel_stack.config.profiles import PROFILES, embedded_default, render_profile

ENV = {"HOME": "/home/x", "PATH": "/usr/bin:/bin"}


def issues(text: str, env: dict[str, str] | None = None) -> list:
    with pytest.raises(ConfigError) as caught:
        loaded = load_config_text(text, "stack.toml", ENV if env is None else env)
        build_plan(loaded, env or ENV, run_dir=Path("/tmp/run"))
    return caught.value.issues


def plan(text: str, env: dict[str, str] | None = None):
    loaded = load_config_text(text, "stack.toml", ENV if env is None else env)
    return build_plan(loaded, env or ENV, run_dir=Path("/tmp/run"))


def test_unknown_key_suggests_the_close_one_with_line_and_path():
    [issue] = issues('[processes.web]\ncommand = "true"\nrestart_polcy = "always"\n')
    assert issue.line == 3
    assert issue.key_path == "processes.web.restart_polcy"
    assert "unknown key `restart_polcy`, did you mean `restart_policy`?" in str(issue)
    assert str(issue).startswith("stack.toml:3: processes.web.restart_polcy:")


def test_unknown_key_without_a_close_match_lists_allowed_keys():
    [issue] = issues("[stack]\nzzz = 1\n")
    assert "allowed keys here:" in issue.hint and "shutdown_timeout" in issue.hint


def test_every_error_is_reported_not_just_the_first():
    text = """
[stack]
name = "Bad Name"
shutdown_timeout = "soon"

[processes.a]
command = []
restart_policy = "sometimes"
"""
    found = issues(text)
    paths = {i.key_path for i in found}
    assert paths == {
        "stack.name",
        "stack.shutdown_timeout",
        "processes.a.command",
        "processes.a.restart_policy",
    }
    lines = {i.key_path: i.line for i in found}
    assert lines["stack.shutdown_timeout"] == 4
    assert lines["processes.a.restart_policy"] == 8


def test_missing_required_key():
    [issue] = issues("[processes.a]\nargs = []\n")
    assert issue.key_path == "processes.a.command"
    assert "missing required key `command`" in issue.message
    assert issue.line == 1


def test_toml_syntax_error_has_a_line():
    [issue] = issues('[stack]\nname = "x\n')
    assert issue.line == 2
    assert "TOML syntax error" in issue.message


def test_interpolation_default_value_and_unset_variable():
    p = plan('[processes.a]\ncommand = ["echo", "${HOME}", "${NOPE:-fallback}", "$${HOME}"]\n')
    assert p.child("a").argv == ("echo", "/home/x", "fallback", "${HOME}")
    [issue] = issues('[processes.a]\ncommand = ["echo"]\nenv = { X = "${MISSING}" }\n')
    assert issue.key_path == "processes.a.env.X"
    assert issue.line == 3
    assert "MISSING is not set" in issue.message and "${MISSING:-value}" in issue.hint


def test_dependency_cycle_is_an_error():
    text = """
[processes.a]
command = "true"
depends_on = ["b"]
[processes.b]
command = "true"
depends_on = ["c"]
[processes.c]
command = "true"
depends_on = ["a"]
"""
    [issue] = issues(text)
    assert issue.message.startswith("dependency cycle: a -> b -> c -> a")
    assert issue.line == 4


def test_unknown_dependency_is_an_error():
    [issue] = issues('[processes.a]\ncommand = "true"\ndepends_on = ["ghost"]\n')
    assert "`a` depends on `ghost`, which is not defined" in issue.message
    assert issue.line == 3


def test_duplicate_name_across_tables_is_an_error():
    [issue] = issues('[processes.x]\ncommand = "true"\n[agents.x]\ncommand = "true"\n')
    assert "the name `x` is used twice" in issue.message
    assert issue.line == 3


def test_two_children_claiming_one_port_or_socket():
    text = """
[processes.a]
command = "true"
ports = [8081]
[processes.b]
command = "true"
ports = [8081]
[agents.one]
command = "true"
socket = "shared.sock"
[agents.two]
command = "true"
socket = "shared.sock"
"""
    found = issues(text)
    messages = " / ".join(i.message for i in found)
    assert "TCP port 8081 is claimed by both `a`" in messages
    assert "shared.sock is claimed by both `one`" in messages


def test_builtin_component_missing_from_installation_is_an_error(monkeypatch):
    import sentinel_stack.config.plan as plan_module

    monkeypatch.setitem(plan_module.BUILTIN_MODULES, "detector", "sentinel_stack.not_there")
    [issue] = issues("[detector]\n")
    assert "not part of this installation" in issue.message
    assert issue.line == 1


def test_durations():
    assert parse_duration("250ms") == 0.25
    assert parse_duration("2m") == 120
    assert parse_duration(3) == 3.0
    for bad in ("soon", "-1s", True, "1 fortnight"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_duration(0.25) == "250ms" and format_duration(90) == "90s"


def test_plan_orders_dependencies_and_wires_agent_sockets():
    text = """
[processes.web]
command = "web"
depends_on = ["db"]
[processes.db]
command = "db"
[agents.waf]
command = "waf"
"""
    p = plan(text)
    assert p.names.index("db") < p.names.index("web")
    assert p.levels() == [["db", "waf"], ["web"]]
    waf = p.child("waf")
    assert waf.socket == Path("/tmp/run/agents/waf.sock")
    assert waf.socket_activation and waf.readiness.kind == "notify"
    assert p.child("web").env["SENTINEL_AGENT_WAF_SOCKET"] == "/tmp/run/agents/waf.sock"


def test_subset_keeps_dependencies_when_asked():
    p = plan(
        '[processes.a]\ncommand="a"\n[processes.b]\ncommand="b"\ndepends_on=["a"]\n'
        '[processes.c]\ncommand="c"\n'
    )
    assert p.subset({"b"}, with_dependencies=True).names == ("a", "b")
    only_b = p.subset({"b"}, with_dependencies=False)
    assert only_b.names == ("b",) and only_b.child("b").depends_on == ()


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_is_a_valid_config(profile):
    loaded = load_config_text(render_profile(profile), "init.toml")
    assert build_plan(loaded, run_dir=Path("/tmp/run")).names


def test_embedded_default_runs_the_demo_upstream():
    p = plan(embedded_default())
    assert "demo" in p.names


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert "cannot read the config" in str(caught.value)
