"""Rule files: schema, lists and macros across files, overrides, and errors with positions."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel_stack.detect.engine import RuleEngine
from sentinel_stack.detect.folding import AlertFolder
from sentinel_stack.detect.rules_loader import RulesError, load_rule_texts, load_rules
from tests.detect.detectkit import exec_, fired

BUILTIN = {"stack_upstreams": ["demo"], "stack_agents": [], "stack_children": ["demo"]}

LISTS = """\
[lists]
shells = ["sh", "bash"]

[macros]
spawned = "evt.kind = kernel.exec"
"""

RULE = """\
[[rules]]
id = "shell"
description = "a shell"
condition = "spawned and proc.name in shells"
severity = "high"
tactic = "execution"
technique = "T1059.004"
output = "shell %proc.name by {proc.pname}"
"""


def load(*texts: str) -> object:
    return load_rule_texts([(f"f{i}.toml", text) for i, text in enumerate(texts)], BUILTIN)


def problems(*texts: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        load(*texts)
    return [str(issue) for issue in caught.value.issues]


def engine_for(*texts: str) -> RuleEngine:
    ruleset = load(*texts)
    return RuleEngine(ruleset, folder=AlertFolder(window=0.0, per_minute=1e9, burst=10**9))  # type: ignore[arg-type]


def test_lists_and_macros_are_shared_across_files() -> None:
    ruleset = load(LISTS, RULE)
    rule = ruleset.rule("shell")  # type: ignore[attr-defined]
    assert rule is not None
    assert rule.tags == ("attack.T1059.004", "attack.execution")
    assert rule.where == "f1.toml:1"
    assert fired(engine_for(LISTS, RULE), exec_(["bash"], comm="bash")) == ["shell"]


def test_a_condition_error_names_the_file_line_and_column_of_the_condition() -> None:
    text = RULE.replace(
        'condition = "spawned and proc.name in shells"',
        "condition = '''\n  spawned\n  and proc.nmae in shells\n'''",
    )
    found = problems(LISTS, text)
    assert len(found) == 1
    assert found[0].startswith("f1.toml:6:7: rule shell: unknown field `proc.nmae`\n")
    assert "hint: did you mean `proc.name`" in found[0]


def test_every_problem_is_reported_not_only_the_first() -> None:
    bad_tactic = RULE.replace('"execution"', '"exectuion"').replace('"shell"', '"a"', 1)
    bad_output = RULE.replace("{proc.pname}", "%proc.pnam").replace('"shell"', '"b"', 1)
    bad_key = RULE.replace('severity = "high"', 'severity = "high"\nseverty = 1').replace(
        '"shell"', '"c"', 1
    )
    found = problems(LISTS, bad_tactic + "\n" + bad_output + "\n" + bad_key)
    assert len(found) == 3
    assert (
        "rule a: tactic 'exectuion' is not an ATT&CK tactic (did you mean `execution`" in found[0]
    )
    assert found[1].startswith("f1.toml:17:31: rule b: unknown field `proc.pnam` in the output")
    assert "f1.toml:24: rule c: Object contains unknown field `severty`" in found[2]
    assert "allowed keys" in found[2]


def test_toml_syntax_errors_have_a_line() -> None:
    found = problems('[[rules]]\nid = "x"\ncondition = "unterminated\n')
    assert found[0].startswith("f0.toml:3:")
    assert "TOML syntax error" in found[0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('severity = "high"', 'severity = "urgent"'), "severity 'urgent': use one of info, low"),
        (('technique = "T1059.004"', 'technique = "1059"'), "write an ATT&CK id"),
        (('output = "shell %proc.name by {proc.pname}"', ""), "needs an `output` template"),
        (('condition = "spawned and proc.name in shells"', ""), "needs a `condition`"),
    ],
)
def test_rule_fields_are_checked(change: tuple[str, str], message: str) -> None:
    found = problems(LISTS, RULE.replace(*change))
    assert any(message in p for p in found), found


def test_duplicates_and_builtin_lists_are_refused() -> None:
    found = problems(LISTS, LISTS, RULE + "\n" + RULE)
    assert any("list `shells` is defined twice (also at f0.toml:2)" in p for p in found)
    assert any("macro `spawned` is defined twice" in p for p in found)
    assert any("rule shell: rule id defined twice" not in p for p in found)
    found = problems('[lists]\nstack_upstreams = ["x"]\n')
    assert "built-in list" in found[0] and "append_lists.stack_upstreams" in found[0]


def test_append_lists_extends_a_list_from_another_file() -> None:
    extra = '[append_lists]\nshells = ["zsh"]\nstack_upstreams = ["api"]\n'
    ruleset = load(LISTS, RULE, extra)
    assert ruleset.lists["shells"] == ("sh", "bash", "zsh")  # type: ignore[attr-defined]
    assert ruleset.lists["stack_upstreams"] == ("demo", "api")  # type: ignore[attr-defined]
    assert "no list `shellz`" in problems('[append_lists]\nshellz = ["x"]\n')[0]


def test_a_later_file_overrides_a_rule_by_id() -> None:
    override = '[[rules]]\nid = "shell"\nenabled = false\n'
    assert load(LISTS, RULE, override).enabled == ()  # type: ignore[attr-defined]
    severity = '[[rules]]\nid = "shell"\nseverity = "low"\n'
    assert load(LISTS, RULE, severity).rule("shell").severity == "low"  # type: ignore[attr-defined]
    found = problems(LISTS, RULE, '[[rules]]\nid = "shell"\noutput = "x"\n')
    assert "cannot change output without a condition" in found[0]


def test_exceptions_suppress_named_value_sets() -> None:
    text = (
        RULE
        + """
[[rules.exceptions]]
name = "trusted_parents"
fields = ["proc.pname", "proc.name"]
values = [["cron", "sh"], ["sshd", "bash"]]
"""
    )
    eng = engine_for(LISTS, text)
    from sentinel_stack.probe import events as ev
    from tests.detect.detectkit import LAUNCHER_A

    def shell(name: str, parent: str) -> object:
        return exec_([name], comm=name, lineage=[ev.Ancestor(5, parent), LAUNCHER_A])

    assert fired(eng, shell("sh", "cron"), shell("bash", "sshd")) == []
    assert fired(eng, shell("bash", "cron"), shell("sh", "nginx")) == ["shell", "shell"]


def test_exceptions_appended_by_an_override_file() -> None:
    local = """
[[rules]]
id = "shell"
[[rules.exceptions]]
name = "ci"
fields = ["proc.pname"]
comps = ["in"]
values = [["gitlab-runner", "jenkins"]]
"""
    eng = engine_for(LISTS, RULE, local)
    from sentinel_stack.probe import events as ev
    from tests.detect.detectkit import LAUNCHER_A

    ci = exec_(["sh"], comm="sh", lineage=[ev.Ancestor(5, "jenkins"), LAUNCHER_A])
    assert fired(eng, ci) == []
    assert fired(eng, exec_(["sh"], comm="sh")) == ["shell"]


def test_exception_shape_errors() -> None:
    exception = '[[rules.exceptions]]\nname = "e"\nfields = ["proc.name", "proc.pid"]\n'
    text = RULE + exception + 'values = [["sh"]]\n'
    assert "has 1 items for 2 fields" in problems(LISTS, text)[0]
    text = RULE + '[[rules.exceptions]]\nname = "e"\nfields = ["proc.pid"]\nvalues = ["x"]\n'
    assert "`proc.pid` is a number" in problems(LISTS, text)[0]


def test_threshold_and_sequence_are_validated() -> None:
    base = RULE.replace("output", "output")
    assert (
        "threshold.count must be 2 or more"
        in problems(LISTS, base + '[rules.threshold]\ncount = 1\nwindow = "5s"\n')[0]
    )
    seq = (
        '[[rules]]\nid = "s"\nseverity = "low"\noutput = "x"\n'
        '[rules.sequence]\nwindow = "5s"\n[[rules.sequence.steps]]\ncondition = "spawned"\n'
    )
    assert "two or more steps" in problems(LISTS, seq)[0]
    seq += '[[rules.sequence.steps]]\ncondition = "proc.nam = x"\n'
    found = problems(LISTS, seq)
    assert found[0].startswith("f1.toml:10:14: rule s: unknown field `proc.nam`")


def test_the_bundled_directory_loads(tmp_path: Path) -> None:
    assert (
        len(load_rules(Path(__file__).resolve().parents[2] / "configs" / "rules", BUILTIN).rules)
        == 20
    )
    with pytest.raises(RulesError, match="not a directory"):
        load_rules(tmp_path / "missing", BUILTIN)
