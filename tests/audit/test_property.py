"""Property: any change to a single byte of a closed log is caught."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel_stack.audit.keys import load_public_keys, read_witness, witness_path
from sentinel_stack.audit.layout import read_lines
from sentinel_stack.audit.verify import verify_lines
from tests.audit.logkit import T0, LogKit

Files = list[tuple[Path, bytes]]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[LogKit, Files]:
    kit = LogKit(tmp_path_factory.mktemp("audit-prop"))
    kit.write(12, records=4, max_bytes=2048)
    return kit, [(p, p.read_bytes()) for p in kit.files()]


def check(kit: LogKit, files: Files) -> bool:
    report = verify_lines(
        [read_lines(path, data) for path, data in files],
        load_public_keys(kit.key_file),
        whole=True,
        now=T0 + 1000,
        witness=lambda log_id: read_witness(witness_path(kit.key_file, log_id)),
    )
    return report.ok


def test_the_untouched_log_verifies(log: tuple[LogKit, Files]) -> None:
    assert check(*log)


@settings(max_examples=300, deadline=None)
@given(
    which=st.integers(min_value=0),
    where=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
)
def test_any_single_byte_change_is_caught(
    log: tuple[LogKit, Files], which: int, where: int, byte: int
) -> None:
    kit, original = log
    index = which % len(original)
    path, data = original[index]
    at = where % len(data)
    if data[at] == byte:
        byte = (byte + 1) % 256
    changed = data[:at] + bytes([byte]) + data[at + 1 :]
    files = list(original)
    files[index] = (path, changed)
    assert not check(kit, files)


@settings(max_examples=100, deadline=None)
@given(which=st.integers(min_value=0), drop=st.integers(min_value=0))
def test_any_single_line_removed_is_caught(
    log: tuple[LogKit, Files], which: int, drop: int
) -> None:
    kit, original = log
    index = which % len(original)
    path, data = original[index]
    lines = data.splitlines(keepends=True)
    del lines[drop % len(lines)]
    files = list(original)
    files[index] = (path, b"".join(lines))
    assert not check(kit, files)
