"""Synthetic events and a loaded default rule set for the rule tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sentinel_stack.detect.alert import Alert
from sentinel_stack.detect.context import StackView, parse_egress
from sentinel_stack.detect.engine import RuleEngine
from sentinel_stack.detect.events import ChildState, HubAlert
from sentinel_stack.detect.folding import AlertFolder
from sentinel_stack.detect.rules_loader import load_rules
from sentinel_stack.detect.wiring import builtin_lists
from sentinel_stack.probe import events as ev
from sentinel_stack.proxy.telemetry import AccessRecord

RULES_DIR = Path(__file__).resolve().parents[2] / "configs" / "rules"
LAUNCHER, DEMO, PROXY, WAF = 100, 200, 300, 400
T0 = 1_700_000_000.0

PYTHON = ev.Ancestor(pid=DEMO, comm="python3", exe="/usr/bin/python3.11")
LAUNCHER_A = ev.Ancestor(pid=LAUNCHER, comm="sentinel-stack", exe="/usr/bin/python3.11")
PROXY_A = ev.Ancestor(pid=PROXY, comm="python3", exe="/usr/bin/python3.11")


def stack_view() -> StackView:
    """A stack with a demo upstream (pid 200), the proxy (300) and a waf agent (400)."""
    view = StackView(
        stack_name="t",
        launcher_pid=LAUNCHER,
        kinds={"demo": "process", "proxy": "proxy", "waf": "agent", "detector": "detector"},
        upstreams=frozenset({"demo"}),
        upstream_process={"demo": "demo"},
        child_egress={"demo": (parse_egress("10.0.0.5:5432"),)},
        egress=(parse_egress("*:443"),),
    )
    for name, pid in (("demo", DEMO), ("proxy", PROXY), ("waf", WAF)):
        view.child_started(name, pid)
    return view


def engine(view: StackView | None = None, **folder: Any) -> RuleEngine:
    view = view or stack_view()
    ruleset = load_rules(RULES_DIR, builtin_lists(view))
    fold = AlertFolder(**folder) if folder else AlertFolder(window=0.0, per_minute=1e9, burst=10**9)
    return RuleEngine(ruleset, view, folder=fold)


def fired(eng: RuleEngine, *events: Any) -> list[str]:
    """Rule ids of the alerts the events raise, in order."""
    return [a.rule for a in alerts(eng, *events)]


def alerts(eng: RuleEngine, *events: Any) -> list[Alert]:
    found: list[Alert] = []
    for event in events:
        found.extend(eng.observe(event, event.time))
    return found


def _process(kw: dict[str, Any], comm: str, pid: int, lineage: list[ev.Ancestor]) -> dict[str, Any]:
    base = {
        "time": T0,
        "pid": pid,
        "tid": pid,
        "ppid": lineage[0].pid if lineage else None,
        "comm": comm,
        "uid": 1000,
        "euid": 1000,
        "gid": 1000,
        "lineage": lineage,
    }
    base.update(kw)
    return base


def under_demo(*extra: ev.Ancestor) -> list[ev.Ancestor]:
    """Lineage of a process the demo upstream started (extra ancestors come first)."""
    return [*extra, PYTHON, LAUNCHER_A]


def exec_(
    argv: list[str],
    *,
    exe: str | None = None,
    pid: int = 1234,
    lineage: list[ev.Ancestor] | None = None,
    **kw: Any,
) -> ev.ExecEvent:
    exe = exe or (argv[0] if argv[0].startswith("/") else f"/usr/bin/{argv[0]}")
    comm = kw.pop("comm", exe.rsplit("/", 1)[-1][:15])
    event = ev.ExecEvent(**_process(kw, comm, pid, under_demo() if lineage is None else lineage))
    event.filename = event.exe = exe
    event.argv = argv
    return event


def open_(
    path: str,
    flags: int = 0,
    reasons: tuple[str, ...] = (),
    comm: str = "cat",
    pid: int = 1234,
    lineage: list[ev.Ancestor] | None = None,
    **kw: Any,
) -> ev.OpenEvent:
    from sentinel_stack.probe.records import open_flag_names

    event = ev.OpenEvent(**_process(kw, comm, pid, under_demo() if lineage is None else lineage))
    event.path, event.flags, event.flag_names = path, flags, open_flag_names(flags)
    event.reasons, event.result = list(reasons), kw.get("result", 3)
    return event


def file_change(
    op: str, path: str, new_path: str | None = None, comm: str = "rm", **kw: Any
) -> ev.FileChangeEvent:
    event = ev.FileChangeEvent(**_process(kw, comm, 1234, under_demo()))
    event.op, event.path, event.new_path, event.result = op, path, new_path, 0
    return event


def connect(
    address: str,
    port: int,
    comm: str = "python3",
    pid: int = DEMO,
    lineage: list[ev.Ancestor] | None = None,
    protocol: str = "tcp",
    **kw: Any,
) -> ev.ConnectEvent:
    event = ev.ConnectEvent(**_process(kw, comm, pid, [LAUNCHER_A] if lineage is None else lineage))
    event.remote = ev.Endpoint(address, port)
    event.local = ev.Endpoint("127.0.0.1", 40000)
    event.protocol, event.result = protocol, kw.get("result", 0)
    return event


def kernel(
    cls: type[Any],
    comm: str = "python3",
    pid: int = 1234,
    lineage: list[ev.Ancestor] | None = None,
    **fields: Any,
) -> Any:
    base = _process({}, comm, pid, under_demo() if lineage is None else lineage)
    for key in list(fields):
        if key in base:
            base[key] = fields.pop(key)
    event = cls(**base)
    for key, value in fields.items():
        setattr(event, key, value)
    return event


def access(path: str, query: str = "", **kw: Any) -> AccessRecord:
    fields: dict[str, Any] = {
        "time": T0,
        "source": "proxy",
        "request_id": "r1",
        "method": "GET",
        "path": path,
        "query": query,
        "status": 200,
        "latency_ms": 1.0,
        "upstream": "demo",
        "client_ip": "127.0.0.1",
    }
    fields.update(kw)
    return AccessRecord(**fields)


def state(child: str, new: str, time: float = T0, pid: int | None = None) -> ChildState:
    return ChildState(
        child=child, state=new, previous="running", reason="exit 1", pid=pid, time=time
    )


def probe_alert(rule: str = "probe.events_lost", **kw: Any) -> HubAlert:
    return HubAlert(
        time=kw.pop("time", T0), source="probe", rule=rule, lost_events=42, window_seconds=1.0, **kw
    )
