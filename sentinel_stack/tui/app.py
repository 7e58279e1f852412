"""The Textual app: wires a feed, a `TuiState` and the panels; holds no supervision logic.

Data arrives at any rate and only updates the model. A timer at the configured refresh rate
(≤ 10 Hz by default) redraws the header and the visible panel, and only when what they show
has changed (or a second has passed: uptimes and rates move). Keys act at once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, Input, TabbedContent, TabPane
from textual.worker import WorkerFailed

from sentinel_stack.tui.feed import Clock, Commands, Feed, guarded, monotonic
from sentinel_stack.tui.state import TuiState
from sentinel_stack.tui.widgets.alerts import AlertOpened, AlertsPanel
from sentinel_stack.tui.widgets.dialogs import AlertDetailScreen, ConfirmScreen, HelpScreen
from sentinel_stack.tui.widgets.header import StackHeader
from sentinel_stack.tui.widgets.probe import ProbePanel
from sentinel_stack.tui.widgets.processes import ChildCommand, ChildSelected, ProcessesPanel
from sentinel_stack.tui.widgets.traffic import TrafficPanel

Mode = Literal["up", "attach"]
# what each panel shows, so it is redrawn only when one of these changed
SECTIONS: dict[str, tuple[str, ...]] = {
    "processes": ("processes", "logs"),
    "traffic": ("traffic",),
    "alerts": ("alerts",),
    "probe": ("probe",),
}
FOCUS = {
    "processes": "#process-table",
    "traffic": "#traffic-tail",
    "alerts": "#alert-table",
    "probe": "#probe-kinds",
}


@dataclass(frozen=True)
class Outcome:
    """How the TUI ended. ``down``: the stack was stopped from here; ``detach``: left running;
    ``gone``: the stack stopped on its own (or from elsewhere); ``quit``: a read-only viewer
    closed; ``force``: the user wants every child killed now."""

    action: Literal["down", "detach", "gone", "quit", "force"]
    message: str = ""
    failure: str | None = None
    launcher_pid: int | None = None


class FilterBar(Input):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.cancel_filter", "Clear filter")]


class SentinelApp(App[Outcome]):
    CSS_PATH = Path(__file__).with_name("sentinel.tcss")  # absolute: subclasses live elsewhere
    TITLE = "sentinel-stack"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("1", "tab('processes')", "Processes", show=False),
        Binding("2", "tab('traffic')", "Traffic", show=False),
        Binding("3", "tab('alerts')", "Alerts", show=False),
        Binding("4", "tab('probe')", "Probe", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("c", "copy", "Copy"),
        Binding("question_mark", "help", "Help"),
        Binding("d", "detach", "Detach"),
        Binding("q", "quit_stack", "Quit"),
        Binding("ctrl+q", "quit_stack", "Quit", show=False, priority=True),
        Binding("ctrl+c", "interrupt", "Stop", show=False, priority=True),
    ]

    def __init__(
        self,
        feed: Feed,
        commands: Commands | None,
        *,
        mode: Mode = "attach",
        refresh_hz: float = 10.0,
        clock: Clock = monotonic,
        export_dir: Path | None = None,
        handle_signals: bool = False,
    ) -> None:
        super().__init__()
        self.handle_signals = handle_signals
        self.feed = feed
        self.commands = commands  # None: read-only
        self.mode = mode
        self.refresh_hz = min(max(refresh_hz, 0.5), 60.0)
        self.clock = clock
        self.export_dir = export_dir
        self.state = TuiState()
        self.crash_trace: str | None = None
        self._stopping = False
        self._seen: dict[str, tuple[int, ...]] = {}
        self._second = -1
        self._frames = 0

    # ---- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        header = StackHeader(id="header")
        header.mode = self._mode_text()
        yield header
        with TabbedContent(initial="processes", id="tabs"):
            with TabPane("1 Processes", id="processes"):
                yield ProcessesPanel(id="processes-panel")
            with TabPane("2 Traffic", id="traffic"):
                yield TrafficPanel(id="traffic-panel")
            with TabPane("3 Alerts", id="alerts"):
                yield AlertsPanel(id="alerts-panel")
            with TabPane("4 Probe", id="probe"):
                yield ProbePanel(id="probe-panel")
        yield FilterBar(placeholder="filter… (Enter keeps it, Esc clears it)", id="filter")
        yield Footer(compact=True)

    def _mode_text(self) -> str:
        if self.commands is None:
            return "attached, read-only"
        return "attached" if self.mode == "attach" else ""

    def on_mount(self) -> None:
        self.run_worker(self._run_feed(), name="feed", group="feed")
        self.set_interval(1 / self.refresh_hz, self.tick, name="render")
        self.query_one("#process-table").focus()
        if self.handle_signals:
            # SIGTERM: what `up` does headless (stop the stack), or leave (attach). SIGHUP (the
            # terminal is gone) keeps its default, ending the process at once: an orderly exit
            # would wait forever on writes to the dead terminal, and `up`'s lifeline already
            # stops the stack when this process ends without having detached.
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self._on_signal)

    def _on_signal(self) -> None:
        if self.mode == "up" and self.commands is not None:
            self._down()
        else:
            self._finish(Outcome("quit"))

    async def _run_feed(self) -> None:
        from sentinel_stack.tui.client import NoStack

        try:
            await self.feed.run(self.state, self.clock, self._gone)
        except NoStack:
            self.state.on_disconnect()
            self._gone("no stack is running there")

    def _handle_exception(self, error: Exception) -> None:
        # Textual's single exit path for an unhandled error: keep the traceback for the log.
        if self.crash_trace is None:
            cause = error.error if isinstance(error, WorkerFailed) else error
            self.crash_trace = "".join(traceback.format_exception(cause))
        super()._handle_exception(error)

    # ---- rendering ------------------------------------------------------------------------

    def active_panel(self) -> str:
        return self.query_one(TabbedContent).active or "processes"

    def tick(self, force: bool = False) -> None:
        """Redraw what changed. Runs at the refresh rate; cheap when nothing did."""
        if not self.is_running:
            # Shutting down: the timer may fire once more while the widgets are being
            # removed, and a query for one of them would end the TUI with a traceback.
            return
        now = self.clock()
        second = int(now)
        new_second = second != self._second
        self._second = second
        changed = self.state.changed
        header_key = (changed["header"],)  # its request rate moves once a second
        if force or new_second or header_key != self._seen.get("header"):
            self.query_one(StackHeader).snapshot = self.state.header(now, second)
            self._seen["header"] = header_key
        panel = self.active_panel()
        key = tuple(changed[s] for s in SECTIONS[panel])
        timely = new_second and panel in ("processes", "traffic")
        if force or timely or key != self._seen.get(panel):
            self._seen[panel] = key
            self._show(panel, now, force)
            self._frames += 1

    def _show(self, panel: str, now: float, force: bool) -> None:
        state = self.state
        if panel == "processes":
            self.query_one(ProcessesPanel).show(state.processes, state.logs, now)
        elif panel == "traffic":
            self.query_one(TrafficPanel).show(state.traffic, now, force=force)
        elif panel == "alerts":
            self.query_one(AlertsPanel).show(state.alerts)
        else:
            self.query_one(ProbePanel).show(state.probe.snapshot())

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not self.query_one(FilterBar).has_focus:
            self._focus_panel(self.active_panel())  # a click on a tab: its keys, too
        self.tick(force=True)

    # ---- panel messages -------------------------------------------------------------------

    def on_child_selected(self, message: ChildSelected) -> None:
        self.run_worker(self.feed.backfill_logs(self.state, message.name), group="backfill")

    def on_child_command(self, message: ChildCommand) -> None:
        if self.commands is None:
            self.notify("read-only: attach without --read-only to control", severity="warning")
            return
        op, name = message.op, message.name
        if message.kind == "proxy":
            question = f"{op.capitalize()} the proxy `{name}`? Requests in flight may fail."

            def answered(yes: bool | None) -> None:
                if yes:
                    self._run_command(op, name)

            self.push_screen(ConfirmScreen(question), answered)
        else:
            self._run_command(op, name)

    def _run_command(self, op: str, name: str) -> None:
        commands = self.commands
        assert commands is not None

        async def act() -> None:
            self.notify(f"{op} {name}…", timeout=2)
            ok, text = await guarded(commands.call(op, name=name))
            self.notify(text, severity="information" if ok else "error")

        self.run_worker(act(), group="commands")

    def on_alert_opened(self, message: AlertOpened) -> None:
        remediations = self.state.alerts.remediations(message.alert)
        self.push_screen(AlertDetailScreen(message.alert, remediations))

    # ---- keys -----------------------------------------------------------------------------

    def action_tab(self, panel: str) -> None:
        self.query_one(TabbedContent).active = panel
        self._focus_panel(panel)

    def _focus_panel(self, panel: str) -> None:
        """Focus the panel's main widget, so its keys work (and the tab stays shown)."""
        self.query_one(FOCUS[panel]).focus()

    def _filterable(self) -> ProcessesPanel | TrafficPanel | AlertsPanel | None:
        panel = self.active_panel()
        if panel == "processes":
            return self.query_one(ProcessesPanel)
        if panel == "traffic":
            return self.query_one(TrafficPanel)
        if panel == "alerts":
            return self.query_one(AlertsPanel)
        return None

    def action_filter(self) -> None:
        target = self._filterable()
        if target is None:
            self.notify("nothing to filter on this panel")
            return
        bar = self.query_one(FilterBar)
        bar.value = target.search
        bar.add_class("-shown")
        bar.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        target = self._filterable()
        if target is not None and event.input.has_class("-shown"):
            target.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_close_filter()

    def action_cancel_filter(self) -> None:
        target = self._filterable()
        if target is not None:
            target.set_filter("")
        self.action_close_filter()

    def action_close_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.remove_class("-shown")
        self._focus_panel(self.active_panel())

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_copy(self) -> None:
        found = self._selection()
        if found is None:
            self.notify("nothing selected to copy", severity="warning")
            return
        what, data = found
        text = json.dumps(data, indent=2, default=str)
        self.copy_to_clipboard(text)
        where = self.export_dir or Path.cwd()
        name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in what)
        path = where / f"sentinel-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        try:
            where.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(text + "\n")
        except OSError as exc:
            self.notify(f"copied to the clipboard; saving failed: {exc}", severity="warning")
            return
        self.notify(f"copied (OSC 52 clipboard) and saved to {path}")

    def _selection(self) -> tuple[str, Any] | None:
        panel = self.active_panel()
        if panel == "processes":
            row = self.query_one(ProcessesPanel).selected_row()
            if row is None:
                return None
            child = self.state.processes.children.get(row.name)
            return f"process-{row.name}", msgspec.to_builtins(child) if child else asdict(row)
        if panel == "traffic":
            record = self.query_one(TrafficPanel).selected_record()
            return ("access", msgspec.to_builtins(record)) if record else None
        if panel == "alerts":
            alert = self.query_one(AlertsPanel).selected_alert()
            return (f"alert-{alert.rule}", dict(alert.raw)) if alert else None
        snap = self.state.probe.snapshot()
        return ("probe", msgspec.to_builtins(snap.health)) if snap.health else None

    def action_detach(self) -> None:
        if self.mode == "up" and self.commands is not None:
            self._finish(Outcome("detach", launcher_pid=self.state.processes.stack.pid))
        else:
            self._finish(Outcome("quit" if self.commands is None else "detach"))

    def action_quit_stack(self) -> None:
        if self.commands is None:
            self._finish(Outcome("quit"))
        elif self.mode == "attach":
            name = self.state.processes.stack.name or "this"

            def answered(yes: bool | None) -> None:
                if yes:
                    self._down()

            self.push_screen(
                ConfirmScreen(f"Stop the whole stack `{name}`? (d leaves it running)"), answered
            )
        else:
            self._down()

    def action_interrupt(self) -> None:
        if self.mode != "up" or self.commands is None:
            self.action_detach()
        elif not self._stopping:
            self._down()
        else:
            self._finish(Outcome("force", launcher_pid=self.state.processes.stack.pid))

    def _down(self) -> None:
        if self._stopping:
            return
        commands = self.commands
        assert commands is not None
        self._stopping = True
        self.state.processes.stopping = True
        self.state.changed["header"] += 1
        self.notify("stopping the stack… (Ctrl+C again: kill everything now)", timeout=30)

        async def down() -> None:
            ok, text = await guarded(commands.down())
            if not ok:
                self.notify(text, severity="error")
            self._finish(Outcome("down", "stack stopped", self.state.processes.stack.failure))

        self.run_worker(down(), group="down")

    def _gone(self, why: str) -> None:
        failure = self.state.processes.stack.failure
        if self._stopping:
            self._finish(Outcome("down", "stack stopped", failure))
        else:
            last = self.state.notices[-1].message if self.state.notices else ""
            self._finish(Outcome("gone", why if not last else f"{why}: {last}", failure))

    def _finish(self, outcome: Outcome) -> None:
        if self.return_value is None:
            self.exit(outcome)
