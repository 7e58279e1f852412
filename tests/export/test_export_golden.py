"""Golden files: every exporter on the `default` and `full` profiles and configs/edge.toml.

The expected output lives in tests/export/golden/<target>/<config>/, one file per exported
file. After an intended change to an exporter (or to the profiles), regenerate and review
the diff:

    .venv/bin/pytest -q tests/export/test_export_golden.py --update-golden
    # or: SENTINEL_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/export/test_export_golden.py
    git diff tests/export/golden/

Output must be deterministic: the default install prefix (/opt/sentinel-stack), no paths of
this machine, no timestamps; `test_output_names_nothing_of_this_machine` checks that.
"""

from __future__ import annotations

import shutil
import sys

import pytest

from tests.export.exports import CONFIGS, GOLDEN, TARGETS, export

REGENERATE = "regenerate with `pytest tests/export/test_export_golden.py --update-golden`"


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("target", TARGETS)
def test_matches_golden(target: str, config: str, update_golden: bool) -> None:
    files = export(target, config)
    golden = GOLDEN / target / config
    if update_golden:
        shutil.rmtree(golden, ignore_errors=True)
        for path, text in files.items():
            (golden / path).parent.mkdir(parents=True, exist_ok=True)
            (golden / path).write_text(text)
        pytest.skip(f"rewrote {golden}")
    expected = {
        p.relative_to(golden).as_posix(): p.read_text() for p in golden.rglob("*") if p.is_file()
    }
    assert sorted(files) == sorted(expected), f"other files than the golden set; {REGENERATE}"
    for path, text in files.items():
        assert text == expected[path], f"{target}/{config}/{path} differs; {REGENERATE}"


@pytest.mark.parametrize("target", TARGETS)
def test_output_names_nothing_of_this_machine(target: str) -> None:
    first = export(target, "full")
    assert export(target, "full") == first
    machine = {sys.prefix, sys.executable, str(GOLDEN.parents[2])}
    for path, text in first.items():
        for value in machine:
            assert value not in text, f"{path} names {value}"
