"""The Alerts panel: newest first (or by severity), colour by severity, Enter for the detail."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Static

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.alerts import SEVERITY_ORDER, Alert, AlertBook
from sentinel_stack.tui.widgets.common import show_text

SHOWN = 300  # rows in the table; the book keeps more


class AlertOpened(Message):
    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert


class AlertList(DataTable[Text]):
    COMPONENT_CLASSES = {f"severity--{s}" for s in SEVERITY_ORDER}


class AlertsPanel(Vertical):
    BINDINGS = [
        Binding("enter", "open", "Detail"),
        Binding("o", "order", "Order"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.by_severity = False
        self.search = ""
        self.listing: list[Alert] = []
        self._book: AlertBook | None = None
        self._shown: list[int] = []

    def compose(self) -> ComposeResult:
        yield Static(id="alerts-title")
        table = AlertList(id="alert-table", cursor_type="row", zebra_stripes=True)
        for key, label in (
            ("time", "time"),
            ("severity", "severity"),
            ("rule", "rule"),
            ("technique", "ATT&CK"),
            ("summary", "summary"),
        ):
            table.add_column(label, key=key)
        yield table

    def show(self, book: AlertBook) -> None:
        self._book = book
        self.listing = book.listing(self.by_severity, self.search)[:SHOWN]
        seqs = [a.seq for a in self.listing]
        order = "by severity" if self.by_severity else "newest first"
        kept = len(book.alerts)
        title = f"{kept} alert{'' if kept == 1 else 's'} kept · {order}"
        if self.search:
            title += f" · matching {self.search!r}"
        show_text(self.query_one("#alerts-title", Static), Content(title))
        if seqs == self._shown:
            return
        table = self.query_one(AlertList)
        selected = self.selected_alert()
        table.clear()
        for alert in self.listing:
            style = table.get_component_rich_style(
                f"severity--{alert.level}", partial=True, default=Style()
            )
            table.add_row(
                Text(fmt.clock(alert.time)),
                Text(alert.severity, style=style),
                Text(alert.rule),
                Text(alert.technique or "-"),
                Text(alert.summary[:160]),
                key=str(alert.seq),
            )
        self._shown = seqs
        if selected is not None and selected.seq in seqs:
            table.move_cursor(row=seqs.index(selected.seq), animate=False)

    def refresh_view(self) -> None:
        if self._book is not None:
            self._shown = []
            self.show(self._book)

    def selected_alert(self) -> Alert | None:
        table = self.query_one(AlertList)
        if not self._shown or table.cursor_row >= len(self._shown):
            return None
        seq = self._shown[table.cursor_row]
        return next((a for a in self.listing if a.seq == seq), None)

    def action_open(self) -> None:
        alert = self.selected_alert()
        if alert is not None:
            self.post_message(AlertOpened(alert))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_order(self) -> None:
        self.by_severity = not self.by_severity
        self.refresh_view()

    def set_filter(self, text: str) -> None:
        self.search = text
        self.refresh_view()
