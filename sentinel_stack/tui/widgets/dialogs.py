"""Modal screens: a yes/no question, the key help, an alert's detail with its chain."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from sentinel_stack.tui import format as fmt
from sentinel_stack.tui.alerts import Alert
from sentinel_stack.tui.format import printable

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

    def __init__(self, alert: Alert, remediations: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__()
        self.alert = alert
        self.remediations = list(remediations)

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
            yield Static(_request(alert), id="alert-request")
            yield Static(_process_tree(alert), id="alert-process")
            yield Static(_findings(alert), id="alert-findings")
            yield Static(_remediation(self.remediations), id="alert-remediation")
            yield Static(
                Content(json.dumps(dict(alert.raw), indent=2, default=str)), id="alert-raw"
            )

    def action_close(self) -> None:
        self.dismiss(None)


def _severity_style(level: str) -> str:
    return {"critical": "$error", "high": "$error", "medium": "$warning"}.get(level, "")


def _section(title: str, lines: list[Content | str], empty: str) -> Content:
    if not lines:
        return Content.styled(f"{title}: {empty}", "$foreground-muted")
    return Content("\n").join(
        [Content.styled(title, "bold"), *(Content("  ") + line for line in lines)]
    )


def _request(alert: Alert) -> Content:
    raw, fields = alert.raw, _mapping(alert.raw.get("fields"))
    lines: list[Content | str] = []
    method, path = fields.get("req.method"), fields.get("req.path")
    if method or path:
        lines.append(printable(f"{method or ''} {path or ''}".strip()))
    for label, value in (
        ("client", raw.get("client_ip") or fields.get("client.ip")),
        ("request id", raw.get("request_id") or fields.get("req.id")),
        ("status", fields.get("resp.status")),
    ):
        if value not in (None, ""):
            lines.append(f"{label} {printable(str(value))}")
    return _section("request", lines, "(none: not tied to a request)")


def _process_tree(alert: Alert) -> Content:
    process = _mapping(alert.raw.get("process"))
    if not process:
        return _section("process tree", [], "(none)")
    lineage = [_mapping(a) for a in process.get("lineage") or () if isinstance(a, Mapping)]
    chain = [*reversed(lineage), process]
    lines: list[Content | str] = []
    for depth, entry in enumerate(chain):
        name = printable(str(entry.get("comm") or entry.get("exe") or "?"))
        argv = entry.get("argv")
        what = printable(" ".join(map(str, argv))) if isinstance(argv, list) and argv else ""
        lines.append(
            "  " * depth
            + ("└─ " if depth else "")
            + f"{name} (pid {entry.get('pid', '?')})"
            + (f"  {what}" if what and entry is process else "")
        )
    return _section("process tree", lines, "(none)")


def _findings(alert: Alert) -> Content:
    tags = [
        printable(str(t)) for t in alert.raw.get("tags") or () if not str(t).startswith("attack.")
    ]
    fields = _mapping(alert.raw.get("fields"))
    agents = [f"{k} {printable(str(v))}" for k, v in fields.items() if str(k).startswith("agent")]
    lines: list[Content | str] = [*agents]
    if tags:
        lines.append("tags " + ", ".join(tags))
    return _section("agent findings", lines, "(none)")


def _remediation(records: Sequence[Mapping[str, Any]]) -> Content:
    lines: list[Content | str] = []
    for record in records:
        summary = record.get("summary") or f"{record.get('action')} {record.get('target')}"
        result = str(record.get("result", ""))
        style = "$success" if result in ("done", "ok") else "$warning"
        lines.append(
            Content.assemble(
                f"{fmt.clock(float(record.get('time') or 0))}  ", (printable(str(summary)), style)
            )
        )
    return _section("remediation", lines, "(none ran)")


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


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
