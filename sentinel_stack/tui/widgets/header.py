"""One line at the top: which stack, how long, how healthy, the probe, alerts, request rate."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.state import HeaderSnapshot
from sentinel_stack.tui.widgets.common import show_text

HEALTH_STYLE = {
    "ok": "$success bold",
    "degraded": "$warning bold",
    "failed": "$error bold",
    "stopping": "$warning",
    "stopped": "$error",
    "connecting": "$secondary",
}
HEALTH_MARK = {"ok": "●", "degraded": "▲", "failed": "✖", "stopping": "…", "stopped": "■"}
SEVERITY_STYLE = {
    "critical": "$error bold reverse",
    "high": "$error bold",
    "medium": "$warning",
    "low": "$secondary",
    "info": "$foreground-muted",
}
SEVERITY_SHORT = {"critical": "crit", "high": "high", "medium": "med", "low": "low", "info": "info"}


class StackHeader(Static):
    """Renders a `HeaderSnapshot`; the app sets `snapshot` and the line redraws (it wraps
    onto a second line in narrow terminals)."""

    snapshot: reactive[HeaderSnapshot | None] = reactive(None)
    mode: reactive[str] = reactive("")

    def watch_snapshot(self) -> None:
        show_text(self, self.line())

    def watch_mode(self) -> None:
        show_text(self, self.line())

    def line(self) -> Content:
        snap = self.snapshot
        if snap is None:
            return Content.from_markup("[b]sentinel-stack[/b]  connecting…")
        health = snap.health
        parts: list[Content | tuple[str, str] | str] = [
            ("sentinel-stack ", "bold"),
            (snap.stack, "bold $accent"),
            f"  up {fmt.duration(snap.uptime)}  ",
            (
                f"{HEALTH_MARK.get(health.word, '?')} {health.word}",
                HEALTH_STYLE.get(health.word, ""),
            ),
        ]
        if not health.ok and health.reason:
            parts.append(f" ({health.reason})")
        parts.append(f"  probe: {snap.probe}  alerts:")
        for severity, count in snap.alerts:
            if count or severity in ("critical", "high"):
                style = SEVERITY_STYLE[severity] if count else ""
                parts.append(" ")
                parts.append((f"{count} {SEVERITY_SHORT[severity]}", style))
        parts.append(f"  {fmt.rate(snap.rate)} req/s")
        if self.mode:
            parts.append(("  " + self.mode, "$foreground-muted"))
        return Content.assemble(*parts)
