"""Modal screens: a yes/no question, the key help, an alert's detail with its chain."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.alerts import Alert

HELP = """\
[b]Keys[/b]
  1 2 3 4    Processes · Traffic · Alerts · Probe (or click a tab)
  ↑ ↓        move in a table          Tab   next area
  r x s      restart · stop · start the selected process (the proxy asks first)
  o          sort the process table (again: reverse) · alerts: newest ⇄ by severity
  f          follow the selected process's log on/off
  l          log level filter: all → info → warning → error
  p          pause / resume the traffic tail
  /          filter the log, the tail or the alerts (Enter keeps it, Esc clears it)
  Enter      alert detail with its chain timeline
  c          save the selected row / alert / access record as JSON (and copy it)
  ?          this help
  q          quit: stop the whole stack gracefully (attach: asks first)
  d          detach: leave the stack running (`sentinel-stack attach` to come back)
  Ctrl+C     up: like q (twice: kill everything now) · attach: like d
"""


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(Content(self.question), id="confirm-question")
            yield Static(Content.from_markup("[b]y[/b] yes    [b]n[/b] / Esc no"))

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close"),
        Binding("q", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(Content.from_markup(HELP))

    def action_close(self) -> None:
        self.dismiss(None)


class AlertDetailScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("enter", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, alert: Alert) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        with VerticalScroll(id="alert-detail", classes="dialog"):
            yield Static(
                Content.assemble(
                    (alert.severity.upper(), f"bold {_severity_style(alert.level)}"),
                    "  ",
                    (alert.rule, "bold"),
                    f"   {fmt.clock(alert.time)}   source {alert.source or '?'}",
                    f"\nATT&CK {alert.technique or '-'}"
                    + (f" ({alert.tactic})" if alert.tactic else ""),
                    "\n\n",
                    alert.summary,
                ),
                id="alert-head",
            )
            yield Static(_timeline(alert), id="alert-chain")
            yield Static(
                Content(json.dumps(dict(alert.raw), indent=2, default=str)), id="alert-raw"
            )

    def action_close(self) -> None:
        self.dismiss(None)


def _severity_style(level: str) -> str:
    return {"critical": "$error", "high": "$error", "medium": "$warning"}.get(level, "")


def _timeline(alert: Alert) -> Content:
    if not alert.chain:
        return Content.styled("chain: (no correlated events)", "$foreground-muted")
    lines = [Content.styled("chain timeline", "bold")]
    for step in alert.chain:
        lines.append(
            Content.assemble(
                f"  {fmt.clock(step.time)}  ", (f"{step.kind:<16}", "$accent"), " ", step.summary
            )
        )
    return Content("\n").join(lines)
