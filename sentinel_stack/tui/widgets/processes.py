"""The Processes panel: a sortable table of children, and the live log of the selected one."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Log, Static

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.logs import FILTERS, LogBook
from sentinel_stack.tui.processes import SORT_KEYS, ProcessRow, ProcessTable
from sentinel_stack.tui.widgets.common import show_text

COLUMNS = (
    ("name", "name"),
    ("kind", "kind"),
    ("state", "state"),
    ("pid", "pid"),
    ("uptime", "uptime"),
    ("restarts", "rst"),
    ("last_exit", "last exit"),
    ("cpu", "cpu%"),
    ("rss", "rss"),
    ("detail", "health / detail"),
)
STATE_MARK = {
    "running": "●",
    "starting": "◐",
    "stopping": "◑",
    "stopped": "○",
    "backoff": "▲",
    "exited": "▼",
    "fatal": "✖",
}


class ChildCommand(Message):
    """The user asked to start, stop or restart a child."""

    def __init__(self, op: str, name: str, kind: str) -> None:
        super().__init__()
        self.op = op
        self.name = name
        self.kind = kind


class ChildSelected(Message):
    """The highlighted child changed (its log needs backfilling)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


class ProcessList(DataTable[Text]):
    COMPONENT_CLASSES = {f"state--{s}" for s in STATE_MARK}


class ProcessesPanel(Vertical):
    """Renders `ProcessTable` rows and `LogBook` lines; posts what the user asks for."""

    BINDINGS = [
        Binding("r", "command('restart')", "Restart"),
        Binding("x", "command('stop')", "Stop"),
        Binding("s", "command('start')", "Start"),
        Binding("f", "follow", "Follow"),
        Binding("l", "level", "Level"),
        Binding("o", "sort", "Sort"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selected: str | None = None
        self.rows: list[ProcessRow] = []
        self.follow = True
        self.level = "all"
        self.search = ""
        self._log_shown: tuple[str | None, str, str, int] | None = None
        self._log_count = 0
        self._table: ProcessTable | None = None
        self._logs: LogBook | None = None
        self._now = 0.0

    def compose(self) -> ComposeResult:
        table = ProcessList(id="process-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static(id="log-title")
        yield Log(id="process-log", max_lines=2000, auto_scroll=True)

    # ---- rendering ----------------------------------------------------------------------

    def show(self, table: ProcessTable, logs: LogBook, now: float) -> None:
        self._table, self._logs, self._now = table, logs, now
        self.rows = table.rows(now)
        self._render_table()
        self.show_log(logs)

    def refresh_view(self) -> None:
        """Redraw at once after a key (sort, filter, level): input must feel instant."""
        if self._table is not None and self._logs is not None:
            self.show(self._table, self._logs, self._now)

    def _cells(self, row: ProcessRow) -> list[Text]:
        widget = self.query_one(ProcessList)
        style = widget.get_component_rich_style(
            f"state--{row.state}", partial=True, default=Style()
        )
        return [
            Text(row.name, style="bold" if row.critical else ""),
            Text(row.kind),
            Text(f"{STATE_MARK.get(row.state, '?')} {row.state}", style=style),
            Text(str(row.pid or "-"), justify="right"),
            Text(fmt.duration(row.uptime), justify="right"),
            Text(str(row.restarts), justify="right"),
            Text(row.last_exit or "-"),
            Text(fmt.percent(row.cpu_percent), justify="right"),
            Text(fmt.size(row.rss), justify="right"),
            Text(row.detail[:80]),
        ]

    def _render_table(self) -> None:
        widget = self.query_one(ProcessList)
        keys = [row.name for row in self.rows]
        current = [str(key.value) for key in widget.rows]
        if keys != current:
            cursor = self.selected
            widget.clear()
            for row in self.rows:
                widget.add_row(*self._cells(row), key=row.name)
            if cursor in keys:
                widget.move_cursor(row=keys.index(cursor), animate=False)
        else:
            for row in self.rows:
                for (key, _), value in zip(COLUMNS, self._cells(row), strict=True):
                    if widget.get_cell(row.name, key) != value:
                        widget.update_cell(row.name, key, value, update_width=True)
        if self.selected is None and keys:
            self._select(keys[min(widget.cursor_row, len(keys) - 1)])

    def show_log(self, logs: LogBook) -> None:
        log = self.query_one("#process-log", Log)
        child = self.selected
        version = logs.epoch.get(child, 0) if child else 0
        shown = (child, self.level, self.search, version)
        added = logs.added.get(child, 0) if child else 0
        if shown != self._log_shown:
            log.clear()
            if child:
                lines = logs.lines(child, self.level, self.search)
                log.write_lines([self._line(e.stream, e.line) for e in lines], scroll_end=False)
            self._log_shown = shown
            self._log_count = added
            self._title(logs)
            if self.follow:
                log.scroll_end(animate=False)
        elif child and added > self._log_count:
            fresh = logs.newest(child, added - self._log_count, self.level, self.search)
            if fresh:
                log.write_lines([self._line(e.stream, e.line) for e in fresh], scroll_end=False)
            self._log_count = added
            if self.follow:
                log.scroll_end(animate=False)

    def _line(self, stream: str, line: str) -> str:
        return f"▸ {line}" if stream == "supervisor" else line

    def _title(self, logs: LogBook) -> None:
        child = self.selected or "(none)"
        parts = [
            f"log: {child}",
            "following" if self.follow else "paused (f to follow)",
            f"level ≥ {self.level}" if self.level != "all" else "all levels",
        ]
        if self.search:
            parts.append(f"matching {self.search!r}")
        show_text(self.query_one("#log-title", Static), Content("  ·  ".join(parts)))

    # ---- input --------------------------------------------------------------------------

    def _select(self, name: str) -> None:
        if name != self.selected:
            self.selected = name
            self.post_message(ChildSelected(name))
            if self._logs is not None:
                self.show_log(self._logs)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._select(str(event.row_key.value))
        event.stop()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if self._table is not None and key in SORT_KEYS:
            self._table.sort_by(key)
            self.refresh_view()
        event.stop()

    def action_command(self, op: str) -> None:
        row = self.selected_row()
        if row is not None:
            self.post_message(ChildCommand(op, row.name, row.kind))

    def action_follow(self) -> None:
        self.follow = not self.follow
        log = self.query_one("#process-log", Log)
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        self._log_shown = None  # redraw the title
        self.refresh_view()

    def action_level(self) -> None:
        self.level = FILTERS[(FILTERS.index(self.level) + 1) % len(FILTERS)]
        self.refresh_view()

    def action_sort(self) -> None:
        if self._table is not None:
            self._table.cycle_sort()
            self.refresh_view()

    def set_filter(self, text: str) -> None:
        self.search = text
        self.refresh_view()

    def selected_row(self) -> ProcessRow | None:
        for row in self.rows:
            if row.name == self.selected:
                return row
        return None
