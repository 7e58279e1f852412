"""The Traffic panel: rate sparkline, statuses, latency, top talkers, blocks, upstreams, agents,
and a live tail of access records that can be paused and filtered."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.content import Content
from textual.widgets import Sparkline, Static

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.traffic import TrafficModel, TrafficSnapshot, tail_line
from sentinel_stack.tui.widgets.common import show_text
from sentinel_stack.tui.widgets.tail import TailView
from sentinel_stack.tui.wire import AccessView

STATUS_STYLE = {
    "2xx": "$success",
    "3xx": "$secondary",
    "4xx": "$warning",
    "5xx": "$error bold",
    "other": "$foreground-muted",
    "blocked": "$error",
}
TAIL_PER_FRAME = 50  # a frame shows at most this many new records: the newest ones
# Faster than this is unreadable, and each redraw costs a repaint of the screen.
STATS_EVERY = 0.5  # seconds: the figures at 2 Hz
TAIL_EVERY = 0.2  # the live tail at 5 Hz


def _counts(rows: list[tuple[str, int]], empty: str = "(none yet)") -> Content:
    """``count label`` lines, counts right-aligned."""
    if not rows:
        return Content.styled(empty, "$foreground-muted")
    values = [fmt.count(n) for _, n in rows]
    width = max(map(len, values))
    return Content("\n").join(
        Content.assemble((value.rjust(width), "bold"), " ", fmt.printable(label))
        for (label, _), value in zip(rows, values, strict=True)
    )


def _named(rows: list[tuple[Content, str]], empty: str) -> Content:
    """A name line with a detail line under it, per row."""
    if not rows:
        return Content.styled(empty, "$foreground-muted")
    return Content("\n").join(
        Content.assemble(name, "\n ", (detail, "$foreground-muted")) for name, detail in rows
    )


class TrafficPanel(Vertical):
    BINDINGS = [Binding("p", "pause", "Pause tail")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.paused = False
        self.search = ""
        self._last: AccessView | None = None
        self._model: TrafficModel | None = None
        self._now = 0.0
        self._stats_at = float("-inf")
        self._tail_at = float("-inf")
        self.snapshot: TrafficSnapshot | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="traffic-top"):
            yield Static(id="traffic-summary")
            yield Sparkline([], id="traffic-spark")
        with Grid(id="traffic-grid"):
            for box, title in (
                ("routes", "top routes (last min)"),
                ("clients", "top clients (last min)"),
                ("blocked", "blocked by agent / reason"),
                ("upstreams", "upstreams"),
                ("agents", "agents"),
            ):
                static = Static(id=f"traffic-{box}", classes="traffic-box")
                static.border_title = title
                yield static
        yield Static(id="tail-title")
        yield TailView(id="traffic-tail")

    def show(self, model: TrafficModel, now: float, *, force: bool = False) -> None:
        self._model, self._now = model, now
        if force or now - self._stats_at >= STATS_EVERY or now < self._stats_at:
            self._stats_at = now
            self._show_stats(model, int(now))
        if force or now - self._tail_at >= TAIL_EVERY or now < self._tail_at:
            self._tail_at = now
            self._tail(model)

    def _show_stats(self, model: TrafficModel, second: int) -> None:
        snap = self.snapshot = model.snapshot(second, points=120)
        show_text(self.query_one("#traffic-summary", Static), self._summary(snap))
        spark = self.query_one("#traffic-spark", Sparkline)
        if spark.data != snap.rate_series:
            spark.data = snap.rate_series
        self._box("routes", _counts(snap.top_routes))
        self._box("clients", _counts(snap.top_clients))
        self._box(
            "blocked",
            _counts([(f"{a}: {r}", n) for (a, r), n in snap.blocked], "nothing blocked"),
        )
        self._box(
            "upstreams",
            _named(
                [
                    (
                        Content.assemble(
                            (fmt.printable(u.name), "bold"),
                            f" {u.targets}" if u.targets else "",
                            (f" {u.breaker}", "$error") if u.breaker else "",
                        ),
                        f"{fmt.count(u.requests)} req · {fmt.count(u.failures)} failed",
                    )
                    for u in snap.upstreams
                ],
                "no upstream traffic",
            ),
        )
        self._box(
            "agents",
            _named(
                [
                    (
                        Content.assemble(
                            (fmt.printable(a.name), "bold"),
                            (f" breaker {a.breaker}", "$error")
                            if a.breaker and a.breaker != "closed"
                            else "",
                            (" DOWN", "$error bold") if a.connected is False else "",
                        ),
                        f"p50 {fmt.millis(a.p50)} p95 {fmt.millis(a.p95)} · "
                        f"{fmt.count(a.errors)} err",
                    )
                    for a in snap.agents
                ],
                "no agent consulted",
            ),
        )

    def refresh_view(self) -> None:
        if self._model is not None:
            self.show(self._model, self._now, force=True)

    def _summary(self, snap: TrafficSnapshot) -> Content:
        total = sum(v for k, v in snap.statuses.items() if k != "blocked")
        statuses = [
            Content.styled(
                f"{name} {fmt.count(count)} ({fmt.share(count, total)})", STATUS_STYLE[name]
            )
            for name, count in snap.statuses.items()
            if count or name in ("2xx", "5xx")
        ]
        p50, p95, p99 = snap.latency
        return Content.assemble(
            (f"{fmt.rate(snap.rate)} req/s", "bold"),
            f"  {fmt.count(snap.total)} total  last {snap.window}s: ",
            Content("  ").join(statuses),
            "\nlatency ",
            ("p50 ", "$foreground-muted"),
            (fmt.millis(p50), "bold"),
            ("  p95 ", "$foreground-muted"),
            (fmt.millis(p95), "bold"),
            ("  p99 ", "$foreground-muted"),
            (fmt.millis(p99), "bold"),
            f"   blocked since attach: {snap.blocked_total}",
        )

    def _box(self, box: str, content: Content) -> None:
        show_text(self.query_one(f"#traffic-{box}", Static), content)

    def _tail(self, model: TrafficModel) -> None:
        title = "live tail: " + ("PAUSED (p to resume)" if self.paused else "following")
        if self.search:
            title += f"  ·  matching {fmt.printable(self.search)!r}"
        show_text(self.query_one("#tail-title", Static), Content(title))
        if self.paused or not model.tail:
            return
        newest = model.tail[-1]
        if newest is self._last:
            return
        fresh: list[AccessView] = []
        for record in reversed(model.tail):
            if record is self._last or len(fresh) >= TAIL_PER_FRAME:
                break
            fresh.append(record)
        self._last = newest
        needle = self.search.lower()
        lines = [tail_line(r) for r in reversed(fresh)]
        if needle:
            lines = [line for line in lines if needle in line.lower()]
        if lines:
            self.query_one(TailView).write_lines(lines)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self._model is not None:
            self._tail(self._model)

    def set_filter(self, text: str) -> None:
        self.search = text
        if self._model is not None:
            self._last = None
            log = self.query_one(TailView)
            log.clear()
            log.write_lines([tail_line(r) for r in self._model.tail_matching(text, 200)])
            self._last = self._model.tail[-1] if self._model.tail else None
            self._tail(self._model)

    def selected_record(self) -> AccessView | None:
        """The newest record in the tail that passes the filter (what `c` copies)."""
        if self._model is None:
            return None
        found = self._model.tail_matching(self.search, 1)
        return found[0] if found else None
