"""Baselines: learning, bucketing, anomaly alerts, persistence and the CLI's file protocol."""

from __future__ import annotations

import json
from pathlib import Path

from sentinel_stack.config.loader import load_config_text
from sentinel_stack.detect.alert import ALERT_DECODER, ALERT_ENCODER
from sentinel_stack.detect.baseline_store import (
    BaselineStore,
    from_document,
    learn_recording,
    read_baseline,
    to_document,
)
from sentinel_stack.detect.baselines import (
    BaselineAnalyzer,
    BaselineLimits,
    BaselineModel,
    connect_key,
    detector_components,
    path_prefix,
)
from sentinel_stack.detect.pipeline import PipelineContext
from sentinel_stack.probe import events as ev

PY = "/usr/bin/python3.11"
T0 = 5_000.0


def spawn(child: str, t: float = T0, parent_exe: str | None = PY) -> ev.ExecEvent:
    return ev.ExecEvent(
        time=t,
        pid=20,
        ppid=10,
        comm=child.rsplit("/", 1)[-1],
        exe=child,
        filename=child,
        lineage=[ev.Ancestor(pid=10, comm="python3", exe=parent_exe)],
    )


def connect(address: str, port: int, exe: str = PY, result: int | None = 0) -> ev.ConnectEvent:
    return ev.ConnectEvent(
        time=T0,
        pid=10,
        comm="python3",
        exe=exe,
        family="inet6" if ":" in address else "inet",
        remote=ev.Endpoint(address, port),
        result=result,
    )


def opened(path: str, exe: str = PY) -> ev.OpenEvent:
    return ev.OpenEvent(time=T0, pid=10, comm="python3", exe=exe, path=path, reasons=["sensitive"])


def learnt(*events: ev.KernelEvent, window: float = 60.0) -> BaselineModel:
    model = BaselineModel(window)
    for event in events:
        assert model.observe(event) == []
    model.advance(window)
    assert not model.learning
    return model


def test_deviations_after_learning_raise_the_three_rules() -> None:
    model = learnt(spawn("/usr/bin/git"), connect("10.0.0.5", 5432), opened("/etc/ssl/private/k"))
    assert model.observe(spawn("/usr/bin/git")) == []
    assert model.observe(connect("10.0.0.5", 5432)) == []
    assert model.observe(opened("/etc/ssl/private/other.pem")) == []
    [child] = model.observe(spawn("/bin/sh"))
    assert (child.rule, child.severity) == ("baseline_new_child", "medium")
    assert child.fields == {"exe": PY, "category": "children", "item": "/bin/sh", "profiled": True}
    assert child.process is not None and child.process.lineage[0]["pid"] == 10
    [dest] = model.observe(connect("10.0.0.6", 5432))
    assert (dest.rule, dest.severity, dest.fields["item"]) == (
        "baseline_new_connect",
        "medium",
        "10.0.0.6:5432",
    )
    [path] = model.observe(opened("/etc/shadow"))
    assert (path.rule, path.severity, path.fields["item"]) == ("baseline_new_path", "low", "/etc")
    assert ALERT_DECODER.decode(ALERT_ENCODER.encode(path)) == path


def test_nothing_is_judged_while_learning_or_with_nothing_learnt() -> None:
    model = BaselineModel(60.0)
    model.advance(30.0)
    assert model.learning
    assert model.observe(spawn("/bin/sh")) == []
    empty = BaselineModel(0.0)
    assert not empty.learning and not empty.active
    assert empty.observe(spawn("/bin/sh")) == []


def test_an_executable_without_a_profile_deviates_at_low_severity() -> None:
    model = learnt(spawn("/usr/bin/git"))
    [alert] = model.observe(connect("127.0.0.1", 4444, exe="/bin/sh"))
    assert alert.severity == "low" and alert.fields["profiled"] is False


def test_loopback_ports_are_bucketed_and_public_addresses_grouped() -> None:
    assert connect_key(connect("127.0.0.1", 8081)) == "loopback:8081"
    assert connect_key(connect("::1", 8081)) == "loopback:8081"
    assert connect_key(connect("127.0.0.1", 41234)) == "loopback:ephemeral"
    assert connect_key(connect("::ffff:127.0.0.1", 22)) == "loopback:22"
    assert connect_key(connect("192.168.1.20", 443)) == "192.168.1.20:443"
    assert connect_key(connect("fd00::5", 443)) == "[fd00::5]:443"
    assert connect_key(connect("8.8.4.4", 53)) == "8.8.4.0/24:53"
    assert connect_key(connect("2001:4860::8888", 53)) == "2001:4860::/48:53"
    unix = ev.ConnectEvent(time=T0, pid=1, family="unix", remote=None)
    assert connect_key(unix) is None
    model = learnt(connect("127.0.0.1", 40000))
    assert model.observe(connect("127.0.0.1", 50000)) == []  # same bucket
    assert model.observe(connect("8.8.8.8", 443, result=-111)) == []  # refused: no fact


def test_path_prefixes_resolve_traversal_and_stop_at_the_depth() -> None:
    assert path_prefix("/srv/www/../../etc/shadow", 3) == "/etc"
    assert path_prefix("/home/u/.ssh/keys/authorized_keys", 3) == "/home/u/.ssh"
    assert path_prefix("/etc/shadow", 1) == "/etc"
    assert path_prefix("/shadow", 3) == "/"
    assert path_prefix("../../etc/passwd", 3) == "../../etc"
    assert path_prefix("notes.txt", 3) == "."


def test_a_set_that_outgrows_its_cap_is_saturated_and_never_alerts() -> None:
    model = BaselineModel(60.0, BaselineLimits(max_connects=3))
    for port in range(1, 6):
        model.observe(connect("10.0.0.1", port))
    model.advance(60.0)
    profile = model.profiles[PY]
    assert "connects" in profile.saturated and not profile.connects
    assert model.observe(connect("10.9.9.9", 9)) == []


def test_executables_beyond_the_cap_stay_unprofiled() -> None:
    model = BaselineModel(60.0, BaselineLimits(max_executables=2))
    for n in range(4):
        model.observe(connect("10.0.0.1", 80, exe=f"/bin/e{n}"))
    assert len(model.profiles) == 2 and model.overflowed == 2


def test_the_window_counts_running_time_not_wall_time() -> None:
    analyzer = BaselineAnalyzer(BaselineModel(10.0))
    analyzer.tick(T0)
    analyzer.tick(T0 + 4)
    analyzer.tick(T0 + 10_000)  # the detector was stopped for hours: not learning time
    assert analyzer.model.learned_seconds == 4.0
    for n in range(1, 8):
        analyzer.tick(T0 + 10_000 + n)
    assert not analyzer.model.learning


def test_the_store_saves_follows_a_reset_and_loads_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "baseline.json"
    store = BaselineStore(path, save_every=30.0)
    model = store.load(window=10.0)
    model.observe(spawn("/usr/bin/git"))
    model = store.sync(model, T0)
    assert path.exists() and store.saves == 1
    document = read_baseline(path)
    assert document is not None and document.executables[PY].children == ["/usr/bin/git"]
    assert not document.complete
    model.observe(spawn("/usr/bin/ssh"))
    assert store.sync(model, T0 + 1) is model and store.saves == 1  # not due yet
    model.advance(10.0)  # learning ends: saved at once
    store.sync(model, T0 + 2)
    assert store.saves == 2
    assert read_baseline(path).complete  # type: ignore[union-attr]
    # `baseline reset` removes the file: the running detector starts learning anew.
    path.unlink()
    fresh = store.sync(model, T0 + 3)
    assert fresh.learning and not fresh.profiles
    # `baseline learn` writes another file: the detector loads it.
    other = learnt(spawn("/bin/true"))
    path.write_text(json.dumps(_plain(other)))
    loaded = store.sync(fresh, T0 + 4)
    assert not loaded.learning and "/bin/true" in loaded.profiles[PY].children


def _plain(model: BaselineModel) -> object:
    import msgspec

    return msgspec.to_builtins(to_document(model, T0))


def test_an_unreadable_file_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{not json")
    model = BaselineStore(path).load(60.0)
    assert model.learning and (tmp_path / "baseline.json.unreadable").exists()


def test_learning_from_a_probe_recording(tmp_path: Path) -> None:
    recording = tmp_path / "rec.jsonl"
    lines = [ev.EVENT_ENCODER.encode(e) for e in (spawn("/usr/bin/git"), connect("10.1.1.1", 80))]
    recording.write_bytes(b"\n".join([*lines, b"not json"]) + b"\n")
    model = BaselineModel(3600.0)
    assert learn_recording(model, recording) == (2, 1)
    model.learned_seconds = model.window
    again = from_document(to_document(model, T0), window=3600.0)
    assert not again.learning
    assert again.profiles[PY].connects == {"10.1.1.1:80"}
    assert again.observe(spawn("/usr/bin/git")) == []
    assert again.sources == [f"recording:{recording}"]


def test_the_plugin_hook_reads_the_detector_config(tmp_path: Path) -> None:
    loaded = load_config_text(
        f'[detector]\nbaseline_window = "5m"\nbaseline_file = "{tmp_path}/b.json"\n', "<t>"
    )
    [analyzer] = detector_components(PipelineContext(config=loaded.config)).analyzers
    assert isinstance(analyzer, BaselineAnalyzer)
    assert analyzer.model.window == 300.0
    off = load_config_text("[detector]\nbaseline_window = 0\n", "<t>")
    assert (
        detector_components(PipelineContext(config=off.config, state_dir=tmp_path)).analyzers == []
    )


def test_a_repeated_deviation_folds_into_one_alert_and_a_count() -> None:
    analyzer = BaselineAnalyzer(learnt(spawn("/usr/bin/git")))
    first = analyzer.observe(spawn("/bin/sh"), T0)
    assert [a.rule for a in first] == ["baseline_new_child"]
    for n in range(5):
        assert analyzer.observe(spawn("/bin/sh"), T0 + n) == []
    assert analyzer.observe(spawn("/bin/dash"), T0 + 6)  # another item: its own alert
    [repeat] = [a for a in analyzer.tick(T0 + 700) if a.fields["item"] == "/bin/sh"]
    assert repeat.count == 5
