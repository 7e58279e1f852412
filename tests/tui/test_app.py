"""Pilot tests of every panel and key binding, against a fake feed and fake commands.

pytest runs async tests under Trio here, and Textual needs asyncio: each test is a plain
function that runs its scenario with `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Log, Static

from sentinel_stack.tui.app import FilterBar, Outcome, SentinelApp
from sentinel_stack.tui.widgets.alerts import AlertsPanel
from sentinel_stack.tui.widgets.dialogs import AlertDetailScreen, ConfirmScreen, HelpScreen
from sentinel_stack.tui.widgets.header import StackHeader
from sentinel_stack.tui.widgets.processes import ProcessesPanel
from sentinel_stack.tui.widgets.tail import TailView
from sentinel_stack.tui.widgets.traffic import TrafficPanel
from tests.tui.fakes import T0, FakeClock, FakeCommands, FakeFeed, access, alert

Scenario = Callable[[SentinelApp, Pilot[Any]], Awaitable[None]]


def drive(
    scenario: Scenario,
    *,
    mode: str = "up",
    read_only: bool = False,
    size: tuple[int, int] = (120, 40),
    export_dir: Path | None = None,
    commands: Any = None,
    feed: FakeFeed | None = None,
) -> tuple[SentinelApp, FakeFeed, Any]:
    feed = feed or FakeFeed()
    if commands is None and not read_only:
        commands = FakeCommands(feed)

    async def main() -> SentinelApp:
        app = SentinelApp(
            feed,
            commands,
            mode=mode,
            clock=FakeClock(),
            export_dir=export_dir,  # type: ignore[arg-type]
        )
        async with app.run_test(size=size) as pilot:
            await asyncio.wait_for(feed.started.wait(), 10)
            app.tick(force=True)
            await pilot.pause()
            await scenario(app, pilot)
        return app

    return asyncio.run(asyncio.wait_for(main(), 60)), feed, commands


def log_lines(app: SentinelApp, selector: str) -> list[str]:
    widget = app.query_one(selector)
    assert isinstance(widget, Log | TailView)
    return list(widget.lines)


def text_of(app: SentinelApp, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


# ---- Processes -------------------------------------------------------------------------------


def test_processes_panel_lists_children_and_the_selected_log():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        table = app.query_one("#process-table", DataTable)
        assert table.row_count == 4
        assert [str(k.value) for k in table.rows] == ["demo", "probe", "proxy", "waf"]
        assert "running" in str(table.get_cell("demo", "state"))
        assert str(table.get_cell("waf", "last_exit")) == "exit 1"
        assert str(table.get_cell("proxy", "rss")) == "80.0M"
        for _ in range(100):  # the backfill is a worker of its own: let it land
            await pilot.pause()
            lines = log_lines(app, "#process-log")
            if lines and lines[0] == "demo: started earlier":
                break
        assert lines[0] == "demo: started earlier"  # backfilled from before the attach
        assert "demo ERROR something failed [x]" in lines
        await pilot.press("down")
        assert app.query_one(ProcessesPanel).selected == "probe"
        await pilot.pause()
        assert any(line.startswith("probe") for line in log_lines(app, "#process-log"))
        assert "log: probe" in text_of(app, "#log-title")

    _, feed, _ = drive(scenario)
    assert feed.backfills == ["demo", "probe"]


def test_restart_stop_start_act_on_the_selected_child():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("r", "x", "s")
        await pilot.pause(0.1)

    _, _, commands = drive(scenario)
    assert commands.calls == [
        ("restart", {"name": "demo"}),
        ("stop", {"name": "demo"}),
        ("start", {"name": "demo"}),
    ]


def test_the_proxy_asks_before_acting():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("down", "down")
        assert app.query_one(ProcessesPanel).selected == "proxy"
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("x")
        await pilot.press("y")
        await pilot.pause(0.1)

    _, _, commands = drive(scenario)
    assert commands.calls == [("stop", {"name": "proxy"})]


def test_a_state_change_shows_at_the_next_frame():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("x")
        await pilot.pause(0.3)  # the next frame at 10 Hz
        table = app.query_one("#process-table", DataTable)
        assert "stopped" in str(table.get_cell("demo", "state"))
        assert "degraded" in str(app.query_one(StackHeader).render())

    drive(scenario)


def test_follow_and_level_filter():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        panel = app.query_one(ProcessesPanel)
        log = app.query_one("#process-log", Log)
        await pilot.press("f")
        assert not panel.follow and not log.auto_scroll
        assert "paused (f to follow)" in text_of(app, "#log-title")
        await pilot.press("f")
        assert panel.follow and log.auto_scroll
        await pilot.press("l", "l")
        assert panel.level == "warning"
        assert log_lines(app, "#process-log") == [
            "demo WARNING slow start",
            "demo ERROR something failed [x]",
        ]
        await pilot.press("l")
        assert log_lines(app, "#process-log") == ["demo ERROR something failed [x]"]
        await pilot.press("l")
        assert panel.level == "all" and len(log_lines(app, "#process-log")) == 4

    drive(scenario)


def test_sorting_by_key_and_by_clicking_a_header():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        table = app.query_one("#process-table", DataTable)
        await pilot.press("o")  # name -> kind
        assert [str(k.value) for k in table.rows] == ["waf", "probe", "demo", "proxy"]
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:7]) + 2
        await pilot.click("#process-table", offset=(x, 0))  # the cpu% header
        await pilot.pause()
        assert app.state.processes.sort_key == "cpu"
        assert [str(k.value) for k in table.rows] == ["proxy", "probe", "waf", "demo"]
        await pilot.click("#process-table", offset=(x, 0))
        await pilot.pause()
        assert [str(k.value) for k in table.rows] == ["demo", "waf", "probe", "proxy"]

    drive(scenario)


def test_filter_bar_searches_the_log():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        bar = app.query_one(FilterBar)
        await pilot.press("slash")
        assert bar.has_class("-shown") and bar.has_focus
        await pilot.press(*"warn")
        assert log_lines(app, "#process-log") == ["demo WARNING slow start"]
        await pilot.press("enter")
        assert not bar.has_class("-shown")
        assert "matching 'warn'" in text_of(app, "#log-title")
        await pilot.press("slash")
        assert bar.value == "warn"
        await pilot.press("escape")
        await pilot.pause()
        assert not bar.has_class("-shown") and app.query_one(ProcessesPanel).search == ""
        assert len(log_lines(app, "#process-log")) == 4

    drive(scenario)


# ---- Traffic ---------------------------------------------------------------------------------


def test_traffic_panel_figures_tail_pause_and_filter():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("2")
        assert app.active_panel() == "traffic"
        summary = text_of(app, "#traffic-summary")
        assert "req/s" in summary and "2xx 200" in summary and "p99" in summary
        assert "942100" in text_of(app, "#traffic-blocked")
        assert "api" in text_of(app, "#traffic-routes")
        assert "10.0.0." in text_of(app, "#traffic-clients")
        assert "demo" in text_of(app, "#traffic-upstreams")
        assert "waf" in text_of(app, "#traffic-agents")
        tail = log_lines(app, "#traffic-tail")
        assert tail and tail[-1].startswith("502")
        await pilot.press("p")
        assert "PAUSED" in text_of(app, "#tail-title")
        app.state.on_access([access(999, status=404)], 1000)
        app.tick(force=True)
        assert log_lines(app, "#traffic-tail") == tail
        await pilot.press("p")
        assert log_lines(app, "#traffic-tail")[-1].startswith("404")
        await pilot.press("slash", *"10.0.0.3", "enter")
        filtered = log_lines(app, "#traffic-tail")
        assert filtered and all("10.0.0.3" in line for line in filtered)
        assert app.query_one(TrafficPanel).selected_record() is not None

    drive(scenario)


def test_clicking_a_tab_shows_it_and_its_keys_work():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.click("#--content-tab-traffic")
        await pilot.pause()
        assert app.active_panel() == "traffic"
        assert app.query_one("#traffic-tail").has_focus
        await pilot.press("p")
        assert app.query_one(TrafficPanel).paused

    drive(scenario)


# ---- Alerts ----------------------------------------------------------------------------------


def test_alert_detail_shows_request_process_tree_findings_and_remediation():
    chain = {
        **alert(7, "critical"),
        "id": "a7",
        "chain_id": "c1",
        "client_ip": "203.0.113.9",
        "request_id": "req-77",
        "tags": ["attack.T1059.004", "waf:942100"],
        "fields": {"req.method": "POST", "req.path": "/upload"},
        "process": {
            "pid": 999,
            "comm": "sh",
            "argv": ["sh", "-c", "id"],
            "lineage": [{"pid": 50, "comm": "python"}, {"pid": 1, "comm": "launcher"}],
        },
    }

    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        app.state.on_hub_event({**chain, "severity": "medium", "id": "a6"})
        app.state.on_hub_event(chain)  # the chain grew: one entry, the latest
        app.state.on_hub_event(
            {"kind": "remediation", "time": T0, "alert_id": "a7", "result": "done",
             "summary": "deny_client ip 203.0.113.9: done (ttl 10m)"}
        )  # fmt: skip
        app.tick(force=True)
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one("#alert-table", DataTable)
        assert table.row_count == 5  # four from the fake feed, one per chain
        await pilot.press("enter")
        assert isinstance(app.screen, AlertDetailScreen)

        def text(selector: str) -> str:
            return str(app.screen.query_one(selector, Static).render())

        assert "POST /upload" in text("#alert-request") and "203.0.113.9" in text("#alert-request")
        tree = text("#alert-process")
        assert tree.index("launcher") < tree.index("python") < tree.index("sh (pid 999)")
        assert "sh -c id" in tree
        assert "waf:942100" in text("#alert-findings")
        assert "deny_client ip 203.0.113.9: done" in text("#alert-remediation")

    drive(scenario)


def test_alerts_newest_first_by_severity_and_detail():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("3")
        table = app.query_one("#alert-table", DataTable)
        assert table.row_count == 4
        assert str(table.get_row_at(0)[2]) == "rule-3"  # newest first
        await pilot.press("o")
        assert str(table.get_row_at(0)[1]) == "critical"
        await pilot.press("enter")
        assert isinstance(app.screen, AlertDetailScreen)
        assert app.screen.alert.level == "critical"
        chain = str(app.screen.query_one("#alert-chain", Static).render())
        assert "chain timeline" in chain and "POST /upload → 200" in chain
        head = str(app.screen.query_one("#alert-head", Static).render())
        assert "T1059.004" in head and "execution" in head
        await pilot.press("escape")
        assert not isinstance(app.screen, AlertDetailScreen)
        await pilot.press("slash", *"rule-2", "enter")
        assert table.row_count == 1
        assert app.query_one(AlertsPanel).selected_alert().rule == "rule-2"  # type: ignore[union-attr]

    drive(scenario)


# ---- Probe -----------------------------------------------------------------------------------


def test_a_frame_while_the_app_shuts_down_draws_nothing():
    # The render timer can fire once more after shutdown began removing the widgets; a
    # query for one of them then ended the TUI with NoMatches (seen once in CI).
    app = SentinelApp(FakeFeed(), None, mode="up", clock=FakeClock())
    assert not app.is_running
    app.tick(force=True)  # no widgets at all: must not raise


def test_probe_panel():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("4")
        summary = text_of(app, "#probe-summary")
        assert "procfs" in summary and "lost 7" in summary and "programs 3/3" in summary
        table = app.query_one("#probe-kinds", DataTable)
        assert [str(k.value) for k in table.rows][:2] == ["kernel.open", "kernel.exec"]
        assert "lifecycle" in text_of(app, "#probe-programs")
        await pilot.press("slash")
        assert not app.query_one(FilterBar).has_class("-shown")  # nothing to filter here
        assert "procfs" in str(app.query_one(StackHeader).render())

    drive(scenario)


# ---- copy, help ------------------------------------------------------------------------------


def test_copy_saves_the_selection_as_json(short_dir):
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        for tab in ("1", "2", "3", "4"):
            await pilot.press(tab, "c")

    app, _, _ = drive(scenario, export_dir=short_dir / "exports")
    files = sorted((short_dir / "exports").iterdir())
    kinds = {f.name.split("-")[1] for f in files}
    assert kinds == {"process", "access", "alert", "probe"}
    process = json.loads(next(f for f in files if "process-demo" in f.name).read_text())
    assert process["name"] == "demo" and process["pid"] == 101
    alert = json.loads(next(f for f in files if "alert-" in f.name).read_text())
    assert alert["technique"] == "T1059.004"
    assert app.clipboard.startswith("{")


def test_help_opens_and_closes():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

    drive(scenario)


# ---- leaving ---------------------------------------------------------------------------------


def outcome(app: SentinelApp) -> Outcome:
    assert app.return_value is not None
    return app.return_value


def test_q_in_up_mode_stops_the_stack_and_waits_for_it():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("q")
        await pilot.pause(0.2)

    app, _, commands = drive(scenario)
    assert commands.downs == 1
    assert outcome(app).action == "down"


def test_q_when_attached_asks_first():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        assert "attached" in str(app.query_one(StackHeader).render())
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.return_value is None
        await pilot.press("q", "y")
        await pilot.pause(0.2)

    app, _, commands = drive(scenario, mode="attach")
    assert commands.downs == 1 and outcome(app).action == "down"


def test_read_only_cannot_act_and_q_just_leaves():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        assert "read-only" in str(app.query_one(StackHeader).render())
        await pilot.press("r", "x", "s")
        await pilot.press("q")

    app, _, commands = drive(scenario, mode="attach", read_only=True)
    assert commands is None and outcome(app).action == "quit"


def test_d_detaches():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("d")

    app, _, commands = drive(scenario)
    assert outcome(app).action == "detach" and outcome(app).launcher_pid == 4242
    assert commands.downs == 0


class SlowDown(FakeCommands):
    async def down(self) -> None:
        self.downs += 1
        await asyncio.sleep(60)


def test_ctrl_c_stops_then_forces():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("ctrl+c")
        await pilot.pause(0.1)
        assert app.state.processes.health().word == "stopping"
        assert app.return_value is None
        await pilot.press("ctrl+c")

    app, _, commands = drive(scenario, commands=SlowDown())
    assert commands.downs == 1 and outcome(app).action == "force"


def test_ctrl_c_when_attached_detaches():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("ctrl+c")

    app, _, commands = drive(scenario, mode="attach")
    assert outcome(app).action == "detach" and commands.downs == 0


def test_the_stack_stopping_elsewhere_ends_the_tui():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        app.feed.finish()  # type: ignore[attr-defined]
        await pilot.pause(0.2)

    app, _, _ = drive(scenario)
    assert outcome(app).action == "gone"
    assert outcome(app).message.startswith("the stack has stopped")


# ---- rendering -------------------------------------------------------------------------------


def test_frames_are_throttled_and_skipped_when_nothing_changed():
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        await pilot.press("2")
        start = app._frames
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        second = 0
        while loop.time() < deadline:  # a flood: a batch every millisecond
            app.state.on_access([access(i) for i in range(50)], 1000 + second % 3)
            second += 1
            await asyncio.sleep(0.001)
        drawn = app._frames - start
        assert 3 <= drawn <= 14  # ≤ 10 Hz (+ the frames the tab switch forces)
        await pilot.pause(0.3)  # the frame that shows the last batch
        quiet = app._frames
        await pilot.pause(0.5)
        assert app._frames == quiet  # the same second, nothing new: no redraw

    drive(scenario)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_every_panel_fits_small_and_large_terminals(size):
    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        for tab, widget in (
            ("1", "#process-log"),
            ("2", "#traffic-tail"),
            ("3", "#alert-table"),
            ("4", "#probe-kinds"),
        ):
            await pilot.press(tab)
            await pilot.pause()
            assert app.query_one(widget).region.height >= 3, (tab, size)
        assert app.query_one(StackHeader).region.height <= 2

    drive(scenario, size=size)


def test_no_color_keeps_states_readable(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")

    async def scenario(app: SentinelApp, pilot: Pilot[Any]) -> None:
        assert app.no_color
        assert "● ok" in str(app.query_one(StackHeader).render())
        table = app.query_one("#process-table", DataTable)
        assert str(table.get_cell("demo", "state")) == "● running"

    drive(scenario)
