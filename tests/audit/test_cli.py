"""`sentinel-stack audit verify|export` exit codes and output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentinel_stack.cli.main import main
from tests.audit.logkit import LogKit


@pytest.fixture
def kit(tmp_path: Path) -> LogKit:
    kit = LogKit(tmp_path)
    kit.write(20)
    (tmp_path / "stack.toml").write_text(
        '[stack]\nname = "t"\n\n[audit]\ndir = "log"\nkey_file = "keys/stack-audit.key"\n'
    )
    return kit


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_uses_the_config_and_exits_0(
    kit: LogKit, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "audit", "verify", "-c", str(kit.root / "stack.toml"))
    assert code == 0, out
    assert out.startswith("OK: audit log") and "sealed" in out
    assert f"the signing key {kit.key_file}" in out


def test_verify_names_the_first_bad_record_and_exits_1(
    kit: LogKit, capsys: pytest.CaptureFixture[str]
) -> None:
    path = kit.files()[1]
    lines = kit.lines(path)
    lines[2] = lines[2].replace(b"spawned", b"spawnex")
    kit.set_lines(path, lines)
    code, out, _ = run(
        capsys, "audit", "verify", str(kit.dir), "--public-key", str(kit.dir / "audit.pub")
    )
    assert code == 1
    assert f"first bad record: {path.name}:3" in out
    code, out, _ = run(
        capsys, "audit", "verify", str(kit.dir), "--json", "-c", str(kit.root / "stack.toml")
    )
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["first_bad"]["file"] == path.name and report["first_bad"]["line"] == 3


def test_verify_of_a_missing_path_is_a_usage_error(
    kit: LogKit, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "audit", "verify", str(kit.root / "nope.jsonl"))
    assert code == 2 and "no such file" in err


def test_verify_one_file_as_a_segment(kit: LogKit, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "audit", "verify", str(kit.files()[1]), "-c", str(kit.root / "stack.toml")
    )
    assert code == 0 and out.startswith("OK: audit segment")


def test_export_formats(kit: LogKit, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "audit", "export", str(kit.dir))
    lines = out.splitlines()
    assert code == 0 and len(lines) == sum(len(kit.lines(p)) for p in kit.files())
    assert out.encode() == b"".join(p.read_bytes() for p in kit.files())  # verbatim
    _, out, _ = run(capsys, "audit", "export", "--format", "cef", str(kit.dir))
    assert all(line.startswith("CEF:0|sentinel-stack|") for line in out.splitlines())
    _, out, _ = run(
        capsys, "audit", "export", "--format", "syslog", "--since", "1700000005", str(kit.dir)
    )
    assert out and all(line.startswith("<") for line in out.splitlines())
    assert len(out.splitlines()) < len(lines)  # --since left the early records out
