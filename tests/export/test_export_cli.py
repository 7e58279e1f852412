"""`sentinel-stack export`: dry run, refusal to overwrite, --force, atomic writes; the
`healthcheck` command the container tiers run; what `prepare` keeps out of the output."""

from __future__ import annotations

import http.server
import re
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel_stack.cli.main import main
from sentinel_stack.config.loader import ConfigError
from sentinel_stack.export.deployment import (
    ExportError,
    ExportOptions,
    config_variables,
    looks_secret,
    prepare,
)
from sentinel_stack.export.healthcheck import main as healthcheck
from sentinel_stack.export.writer import apply_writes, plan_writes
from tests.export.exports import HERE, config_text, deployment

EDGE = HERE / "configs" / "edge.toml"


def export_cli(*args: str) -> int:
    return main(["export", *args, "-c", str(EDGE)])


def test_dry_run_lists_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert export_cli("compose", "--out", str(out), "--dry-run") == 0
    listing = capsys.readouterr()
    assert re.search(rf"^would create +{out}/compose.yaml +\(\d+ bytes\)$", listing.out, re.M)
    assert "detector" not in listing.err  # exported now: no note about it
    assert not out.exists()


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert export_cli("systemd", "--out", str(out)) == 0
    unit = out / "units" / "sentinel-edge-proxy.service"
    original = unit.read_text()
    assert export_cli("systemd", "--out", str(out)) == 0  # same content: nothing to refuse
    assert "0 file(s) written" in capsys.readouterr().out
    unit.write_text("edited by hand\n")
    assert export_cli("systemd", "--out", str(out)) == 1
    error = capsys.readouterr().err
    assert "would be overwritten" in error and str(unit) in error and "--force" in error
    assert unit.read_text() == "edited by hand\n"
    assert export_cli("systemd", "--out", str(out), "--dry-run") == 0
    assert f"would replace  {unit}" in capsys.readouterr().out
    assert export_cli("systemd", "--out", str(out), "--force") == 0
    assert unit.read_text() == original
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporary files left


def test_cli_options_reach_the_output(tmp_path: Path) -> None:
    out = tmp_path / "k8s"
    assert (
        export_cli(
            "kubernetes",
            "--out",
            str(out),
            "--image",
            "registry.example/sentinel:1.2",
            "--replicas",
            "3",
            "--prefix",
            "/venv",
            "--config-dir",
            "/srv/edge",
        )
        == 0
    )
    text = (out / "deployment.yaml").read_text()
    assert "image: registry.example/sentinel:1.2" in text and "replicas: 3" in text
    assert "- /venv/bin/python" in text and "mountPath: /srv/edge" in text


def test_bad_options_and_configs_say_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export_cli("systemd", "--out", str(tmp_path), "--prefix", "relative/venv") == 1
    assert "--prefix 'relative/venv' must be an absolute path" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text("[stack\n")
    assert main(["export", "compose", "--out", str(tmp_path), "-c", str(broken)]) == 2
    assert "TOML syntax error" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        prepare("[processes.x]\ncommand = []\n", "x.toml")
    with pytest.raises(ExportError, match="named `netns`"):
        from sentinel_stack.export.compose import export_compose

        export_compose(prepare('[processes.netns]\ncommand = ["/bin/true"]\n', "n.toml"))


def test_writer_refuses_paths_outside_the_output(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="inside the output"):
        plan_writes({"../escape": "x"}, tmp_path)
    writes = plan_writes({"a/b.txt": "one"}, tmp_path)
    assert apply_writes(writes, tmp_path, force=False) == 1
    assert (tmp_path / "a" / "b.txt").stat().st_mode & 0o777 == 0o644


# ---- prepare ---------------------------------------------------------------------------------


def test_prepare_relocates_and_sets_apart_what_the_operator_supplies() -> None:
    edge = deployment("edge")
    app = edge.child("app")
    assert app.supplied == ("API_TOKEN", "DATABASE_URL", "LOG_LEVEL")
    assert app.optional == frozenset({"LOG_LEVEL"})
    assert "API_TOKEN" not in app.spec.env and app.spec.env["APP_MODE"] == "production"
    hub = "/run/sentinel-stack/edge/events.sock"
    assert edge.events_socket == hub
    assert all(
        c.spec.env.get("SENTINEL_EVENTS_SOCKET") == (None if c.kind == "detector" else hub)
        for c in edge.children
    )
    assert edge.child("proxy").spec.argv[0] == "/opt/sentinel-stack/bin/python"
    assert edge.child("denylist").spec.argv[0] == "/opt/sentinel-stack/bin/python"
    assert set(edge.child("proxy").supplied) == {"DATABASE_URL", "LOG_LEVEL", "QUEUE_TOKEN"}
    assert edge.children[0].name == "detector"  # first: it serves the event hub
    assert edge.child("detector").spec.argv[-2:] == ("--serve-events", hub)
    assert "detector" in edge.child("proxy").spec.depends_on
    assert "detector" not in edge.child("app").spec.depends_on  # not a hub producer
    assert edge.config_dir == "/etc/sentinel-stack/edge"
    assert edge.run_dir == "/run/sentinel-stack/edge"
    assert "s3cr3t" in config_text("edge") and "s3cr3t" not in edge.config_file_text()
    default = deployment("default")
    assert default.config_file_text() == default.config_text  # nothing to redact: verbatim
    assert sys.executable not in str([c.spec.argv for c in default.children])
    with pytest.raises(ExportError, match="--replicas 0"):
        ExportOptions(replicas=0)


def test_without_a_detector_nothing_serves_or_points_at_an_event_hub() -> None:
    minimal = deployment("minimal")
    assert minimal.detector is None and minimal.events_socket is None
    assert all("SENTINEL_EVENTS_SOCKET" not in c.spec.env for c in minimal.children)
    assert all("detector" not in c.spec.depends_on for c in minimal.children)


def test_a_detector_with_dependencies_starts_after_them_without_a_cycle() -> None:
    text = config_text("edge").replace(
        '[detector]\nrules_dir = "configs/rules"',
        '[detector]\nrules_dir = "configs/rules"\ndepends_on = ["denylist"]',
    )
    edge = prepare(text, "edge.toml")
    names = [c.name for c in edge.children]
    assert names.index("denylist") < names.index("detector") < names.index("proxy")
    assert "detector" not in edge.child("denylist").spec.depends_on  # no cycle
    assert "detector" in edge.child("custom").spec.depends_on


def test_secret_looking_keys_and_variables() -> None:
    for key in ("API_TOKEN", "DB_PASSWORD", "SIGNING_KEY", "KEY", "AWS_SECRET_ACCESS_KEY"):
        assert looks_secret(key), key
    for key in ("SENTINEL_RUN_DIR", "MONKEY_MODE", "LOG_LEVEL", "PYTHONUNBUFFERED"):
        assert not looks_secret(key), key
    found = config_variables({"a": ["${A}", "x ${B:-b} $${C} ${SENTINEL_PYTHON}"]})
    assert found == {"A": None, "B": "b"}


# ---- healthcheck -----------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ready" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_healthcheck_kinds(http_server: str, tmp_path: Path) -> None:
    assert healthcheck(["http", f"http://{http_server}/ready"]) == 0
    assert healthcheck(["http", f"http://{http_server}/other"]) == 1
    assert healthcheck(["tcp", http_server]) == 0
    path = tmp_path / "a.sock"
    assert healthcheck(["unix", str(path)]) == 1
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen()
        assert healthcheck(["unix", str(path)]) == 0
    assert healthcheck(["exec", "--", "/bin/sh", "-c", "exit 0"]) == 0
    assert healthcheck(["--wait", "0.3", "exec", "--", "/bin/false"]) == 1
