"""The Probe panel: backend and health, kernel events/s by kind, losses, programs."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import DataTable, Sparkline, Static

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.probe import ProbeSnapshot
from sentinel_stack.tui.widgets.common import show_text


class ProbePanel(Vertical):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.snapshot: ProbeSnapshot | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="probe-summary")
        yield Sparkline([], id="probe-spark")
        with Horizontal(id="probe-body"):
            table: DataTable[Text] = DataTable(id="probe-kinds", cursor_type="row")
            table.add_column("kind", key="kind")
            table.add_column("events/s", key="rate")
            yield table
            programs = Static(id="probe-programs")
            programs.border_title = "programs"
            yield programs

    def show(self, snap: ProbeSnapshot) -> None:
        self.snapshot = snap
        show_text(self.query_one("#probe-summary", Static), _summary(snap))
        self.query_one("#probe-spark", Sparkline).data = snap.rate_series
        table: DataTable[Text] = self.query_one("#probe-kinds", DataTable)
        rows = [*snap.rates, *snap.other_rates]
        kinds = [kind for kind, _ in rows]
        if kinds != [str(k.value) for k in table.rows]:
            table.clear()
            for kind, rate in rows:
                table.add_row(
                    Text(fmt.printable(kind)), Text(fmt.rate(rate), justify="right"), key=kind
                )
        else:
            for kind, rate in rows:
                table.update_cell(kind, "rate", Text(fmt.rate(rate), justify="right"))
        health = snap.health
        programs = health.programs if health else []
        show_text(
            self.query_one("#probe-programs", Static),
            Content("\n".join(fmt.printable(p) for p in programs))
            if programs
            else Content.styled("-", "$foreground-muted"),
        )


def _summary(snap: ProbeSnapshot) -> Content:
    health = snap.health
    if health is None:
        return Content.assemble(
            ("no probe health yet", "$foreground-muted"),
            " (no [probe] in the config, or it is starting)",
            f"\nhub: dropped {snap.hub_dropped}  malformed {snap.hub_malformed}",
        )
    state = (
        ("degraded", "$warning bold")
        if health.degraded
        else ("ready", "$success bold")
        if health.ready
        else ("starting", "$secondary")
    )
    lost_style = "$error bold" if health.lost_events else ""
    return Content.assemble(
        "backend ",
        (fmt.printable(health.backend or "?"), "bold"),
        "  ",
        state,
        f"  scope {fmt.printable(health.scope or '?')}  programs {health.programs_attached}/"
        f"{len(health.programs)}",
        f"\n{fmt.rate(health.events_per_second)} ev/s  total {health.events_total}  ",
        (f"lost {health.lost_events}", lost_style),
        f"  parse errors {health.parse_errors}",
        f"  hub {'connected' if health.hub_connected else 'DISCONNECTED'}",
        f" (probe dropped {health.hub_dropped}, hub dropped {snap.hub_dropped})",
        ("\n" + fmt.printable(health.reason)) if health.degraded and health.reason else "",
    )
