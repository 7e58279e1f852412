"""The condition language: syntax, positions, names, types, every operator, null semantics."""

from __future__ import annotations

from typing import Any

import pytest

from sentinel_stack.detect.context import StackView
from sentinel_stack.detect.expr import (
    Definitions,
    ExprError,
    Origin,
    check,
    compile_for,
    parse,
)
from sentinel_stack.detect.expr.compiler import Predicate
from sentinel_stack.probe import events as ev
from sentinel_stack.proxy.telemetry import AccessRecord

LISTS = {"shells": ("sh", "bash"), "ports": (22, 4444), "servers": ("nginx", "python3")}


def defs(**macros: str) -> Definitions:
    return Definitions(dict(LISTS), {name: parse(text) for name, text in macros.items()})


def predicate(text: str, kind: str = "kernel.exec", **macros: str) -> Predicate | bool:
    return compile_for(check(parse(text), defs(**macros)), kind, StackView())


def matches(text: str, event: Any, **macros: str) -> bool:
    from sentinel_stack.detect.engine import kind_of

    compiled = predicate(text, kind_of(event) or "kernel.exec", **macros)
    return compiled if isinstance(compiled, bool) else bool(compiled(event))


def error(text: str, **macros: str) -> ExprError:
    with pytest.raises(ExprError) as caught:
        check(parse(text, Origin("r.toml", 7, 12, "rule x")), defs(**macros))
    return caught.value


def exec_event(**kw: Any) -> ev.ExecEvent:
    base: dict[str, Any] = {
        "time": 1.0,
        "pid": 10,
        "ppid": 9,
        "comm": "bash",
        "exe": "/usr/bin/bash",
        "argv": ["bash", "-c", "echo hi"],
        "uid": 1000,
        "euid": 1000,
        "lineage": [ev.Ancestor(9, "nginx", "/usr/sbin/nginx"), ev.Ancestor(1, "systemd")],
    }
    base.update(kw)
    return ev.ExecEvent(**base)


E = exec_event()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("proc.name = bash", True),
        ("proc.name == 'bash'", True),
        ('proc.name != "bash"', False),
        ("proc.pid < 11", True),
        ("proc.pid <= 9", False),
        ("proc.pid > 9", True),
        ("proc.pid >= 11", False),
        ("proc.name in (sh, bash)", True),
        ("proc.name in shells", True),
        ("proc.name in (zsh, shells)", True),  # a list name inside (...) splices
        ("proc.name not in shells", False),
        ("proc.ancestors.name intersects servers", True),
        ("proc.ancestors.name intersects (apache2, caddy)", False),
        ("proc.cmdline contains 'echo hi'", True),
        ("proc.cmdline contains (nope, echo)", True),
        ("proc.argv contains -c", True),
        ("proc.cmdline icontains 'ECHO HI'", True),
        ("proc.ancestors.name icontains NGINX", True),
        ("proc.exe startswith /usr/", True),
        ("proc.exe startswith (/tmp/, /dev/shm/)", False),
        ("proc.exe endswith bash", True),
        ("proc.exe glob /usr/*/bash", True),
        ("proc.exe glob (/tmp/*, /usr/bin/b?sh)", True),
        ("proc.ancestors.exe glob */nginx", True),
        ("proc.exe exists", True),
        ("proc.container_id exists", False),
        ("user.uid = user.euid", True),
        ("proc.pid > proc.ppid", True),
        ("proc.name in proc.ancestors.name", False),
        ("not proc.name = bash or proc.pid = 10", True),
        ("proc.name = bash and (proc.pid = 1 or proc.pid = 10)", True),
        ("not (proc.name = bash and proc.pid = 10)", False),
        ("proc.pid in (0x0a, 0o13)", True),
        ("proc.pid = '10'", True),
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert matches(text, E) is expected


def test_null_fields_never_match_and_not_inverts_that() -> None:
    event = exec_event(exe=None, lineage=[])
    assert not matches("proc.exe = x", event)
    assert not matches("proc.exe != x", event)  # null is not "different from x"
    assert not matches("proc.exe startswith /", event)
    assert not matches("proc.pname exists", event)
    assert matches("not proc.pname in servers", event)


def test_macros_nest_and_bool_fields_stand_alone() -> None:
    assert matches(
        "shell and web",
        E,
        shell="proc.name in shells",
        web="parented",
        parented="proc.pname = nginx",
    )
    chmod = ev.ChmodEvent(time=1.0, pid=1, comm="chmod", path="/x", mode=0o4755)
    assert matches("file.setuid and not file.setgid", chmod)


def test_a_field_the_kind_lacks_folds_the_rule_away() -> None:
    assert predicate("evt.kind = kernel.exec and proc.name = sh", "kernel.open") is False
    assert predicate("evt.kind = kernel.exec", "kernel.exec") is True
    assert predicate("fd.name = /etc/shadow", "kernel.exec") is False
    assert predicate("not fd.name = /etc/shadow", "kernel.exec") is True
    assert predicate("req.path contains ../", "access") not in (True, False)


def test_access_records_and_unknown_kinds() -> None:
    record = AccessRecord(
        time=1.0,
        source="proxy",
        request_id="r",
        method="GET",
        path="/a/../b",
        status=200,
        latency_ms=1.0,
    )
    assert matches("req.path contains ../ and req.status >= 200", record)
    assert compile_for(check(parse("evt.kind = custom.thing"), defs()), None, StackView()) not in (
        True,
        False,
    )


@pytest.mark.parametrize(
    ("text", "line", "col", "message", "hint"),
    [
        ("proc.nmae = bash", 7, 12, "unknown field `proc.nmae`", "did you mean `proc.name`"),
        ("proc.name in shelsl", 7, 25, "unknown list `shelsl`", "did you mean `shells`"),
        (
            "spawnd_process",
            7,
            12,
            "unknown macro `spawnd_process`",
            "did you mean `spawned_process`",
        ),
        ("proc.name = bash and", 7, 32, "expected a condition, found the end", ""),
        ("(proc.name = bash", 7, 29, "expected `)`", "the `(` at column 1 is not closed"),
        ("proc.name = 'bash", 7, 24, "unterminated string", ""),
        ("proc.name = bash proc.pid = 1", 7, 29, "unexpected `proc.pid`", "join conditions"),
        ("proc.pid = abc", 7, 23, "`proc.pid` is a number", ""),
        ("proc.name > 3", 7, 22, "`>` orders numbers", ""),
        ("proc.argv = bash", 7, 22, "is a list of strings", "contains"),
        ("proc.name intersects shells", 7, 22, "`intersects` compares two lists", "in …"),
        ("proc.argv in shells", 7, 22, "`in` tests one value", "intersects"),
        ("proc.name in 'sh'", 7, 25, "`in` needs a list", ""),
        ("proc.name = (sh, bash)", 7, 24, "`=` needs one value", "in (…)"),
        ("proc.pid startswith 1", 7, 21, "`startswith` works on strings", ""),
        ("proc.name", 7, 12, "`proc.name` is a string, not a condition", ""),
        ("shells", 7, 12, "`shells` is a list, not a condition", "proc.name in shells"),
        ("proc.name ! bash", 7, 22, "`!` is not an operator", "!="),
        ("", 7, 12, "the condition is empty", ""),
        ("proc.name in (sh bash)", 7, 29, "expected `,` or `)`", "commas"),
    ],
)
def test_errors_point_at_file_line_and_column(
    text: str, line: int, col: int, message: str, hint: str
) -> None:
    found = error(text, spawned_process="evt.kind = kernel.exec")
    assert (found.file, found.line, found.col) == ("r.toml", line, col), str(found)
    assert message in found.message
    assert hint in found.hint
    assert str(found).startswith(f"r.toml:{line}:{col}: (rule x)")


def test_errors_on_later_lines_of_a_multiline_condition_use_that_line() -> None:
    found = error("proc.name = bash\n  and proc.nam = x")
    assert (found.line, found.col) == (8, 7)


def test_macro_errors_point_into_the_macro_and_cycles_are_refused() -> None:
    macros = {"a": parse("b and proc.name = x"), "b": parse("a")}
    with pytest.raises(ExprError, match="macro cycle: a -> b -> a"):
        check(parse("a"), Definitions(LISTS, macros))
    bad = {"m": parse("proc.nme = x", Origin("lists.toml", 3, 5, "macro m"))}
    with pytest.raises(ExprError) as caught:
        check(parse("m"), Definitions(LISTS, bad))
    assert (caught.value.file, caught.value.line, caught.value.col) == ("lists.toml", 3, 5)


def test_no_python_evaluation_happens() -> None:
    # Anything that is not the grammar is an error, never code.
    for text in ("__import__('os').system('id')", "proc.name = bash; import os", "1 + 1"):
        with pytest.raises(ExprError):
            check(parse(text), defs())


def test_derived_file_fields() -> None:
    trunc = ev.OpenEvent(time=1.0, pid=1, comm="sh", path="/var/log/a", flags=0o1101)
    read = ev.OpenEvent(time=1.0, pid=1, comm="cat", path="/etc/shadow", flags=0)
    moved = ev.FileChangeEvent(
        time=1.0, pid=1, comm="mv", op="rename", path="/tmp/x", new_path="/etc/cron.d/x"
    )
    chmod = ev.ChmodEvent(time=1.0, pid=1, comm="chmod", path="/x", mode=0o4755)
    assert matches("file.action = truncate and fd.write", trunc)
    assert matches("file.action = read and not fd.write", read)
    assert matches("file.target = /etc/cron.d/x and fd.name = /tmp/x", moved)
    assert matches("file.target = /x and file.mode_octal = '4755' and file.mode = 2541", chmod)
