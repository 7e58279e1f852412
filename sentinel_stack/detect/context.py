"""What the rules know about the stack they guard: its children, upstreams and allowed egress.

A process belongs to a stack child (its `proc.stack_child`) when its cgroup lies in the
child's sub-cgroup (``…/sentinel-stack.<stack>/<child>``: the launcher's containment, as
root; or the unit ``sentinel-<stack>-<child>.service`` of an exported systemd stack) or when
it or an ancestor has the pid the supervisor reported for that child (state changes and
`status`). The launcher itself is the pseudo child ``launcher``. Rules then say "a shell
whose stack child serves an upstream", which no process name can say: the demo upstream,
the proxy and every agent are all `python`. Without a supervisor (a standalone detector) a
child's pid is learnt from the exec of its configured command (`learn_exec`), a guess that
the docs spell out (docs/detection.md, "Standalone").

Egress: an upstream may connect to the addresses in `[upstreams.NAME] allowed_destinations`
(of the upstreams it serves) and `[detector] allowed_egress`; entries are ``ADDRESS``,
``ADDRESS:PORT``, ``CIDR``, ``CIDR:PORT``, ``*:PORT`` or ``[V6]:PORT``; ``PORT`` may be a
range ``LOW-HIGH``; ``localhost`` means both loopback addresses. Pure: no DNS, no clocks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sentinel_stack.probe import events as ev

__all__ = ["EgressRule", "StackView", "command_key", "parse_egress"]

LAUNCHER = "launcher"
_CGROUP_MARK = "/sentinel-stack."

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class EgressRule:
    networks: tuple[IPNetwork, ...]  # empty: any address
    ports: tuple[int, int] | None  # inclusive range; None: any port
    text: str

    def allows(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        if self.ports is not None and not self.ports[0] <= port <= self.ports[1]:
            return False
        return not self.networks or any(address in net for net in self.networks)


def parse_egress(text: str) -> EgressRule:
    """One allowed-egress entry; ValueError says what is wrong and what would be right."""
    raw = text.strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    ports: tuple[int, int] | None = None
    if port_text:
        low, _, high = port_text.partition("-")
        try:
            ports = (int(low), int(high or low))
        except ValueError:
            raise ValueError(
                f"allowed egress {text!r}: port {port_text!r} is not a number"
            ) from None
        if not 0 < ports[0] <= ports[1] <= 65535:
            raise ValueError(f"allowed egress {text!r}: ports run from 1 to 65535")
    networks: tuple[IPNetwork, ...]
    if host in ("*", ""):
        networks = ()
    elif host == "localhost":
        networks = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    else:
        try:
            networks = (ipaddress.ip_network(host, strict=False),)
        except ValueError:
            raise ValueError(
                f"allowed egress {text!r}: {host!r} is not an IP address or CIDR "
                "(host names are not resolved; write the address, e.g. 10.0.0.5:5432)"
            ) from None
    return EgressRule(networks, ports, raw)


@dataclass
class StackView:
    """The stack as the detector last heard of it. The service updates it; rules read it."""

    stack_name: str | None = None
    launcher_pid: int | None = None
    # child name -> kind ("process", "agent", "proxy", "probe", "detector")
    kinds: dict[str, str] = field(default_factory=dict)
    pids: dict[int, str] = field(default_factory=dict)
    # Children that serve an upstream (the `process` of some `[upstreams.NAME]`).
    upstreams: frozenset[str] = frozenset()
    # upstream name -> the child serving it (`process` of `[upstreams.NAME]`)
    upstream_process: dict[str, str] = field(default_factory=dict)
    # child name -> allowed egress of that child; `egress` applies to every child.
    child_egress: dict[str, tuple[EgressRule, ...]] = field(default_factory=dict)
    egress: tuple[EgressRule, ...] = ()
    # Standalone only: an exec's (program name, *arguments) -> the child whose configured
    # command it is; and `python -m MODULE` -> the built-in child (its flags vary).
    commands: dict[tuple[str, ...], str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    # Memo of the last event's child (several rules ask about one event), and parsed addresses.
    _last: object = field(default=None, repr=False, compare=False)
    _last_child: str | None = field(default=None, repr=False, compare=False)
    _addresses: dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address | None] = field(
        default_factory=dict, repr=False, compare=False
    )
    _units: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)

    def child_started(self, name: str, pid: int | None) -> None:
        for known in [p for p, n in self.pids.items() if n == name]:
            del self.pids[known]
        if pid:
            self.pids[pid] = name

    def child_gone(self, name: str, pid: int | None) -> None:
        if pid and self.pids.get(pid) == name:
            del self.pids[pid]

    def observe_state(self, child: str, state: str, pid: int | None) -> None:
        """Follow a supervisor state change (the rule engine calls this for `state` events)."""
        if state in ("starting", "running"):
            if pid:
                self.child_started(child, pid)
        elif state in ("exited", "backoff", "fatal", "stopped"):
            self.child_gone(child, pid)

    def learn_exec(self, argv: Sequence[str] | None, pid: int) -> str | None:
        """Take ``pid`` for the child whose configured command ``argv`` is (standalone)."""
        if not argv:
            return None
        name = self.commands.get(command_key(argv))
        if name is None and len(argv) >= 3 and argv[1] == "-m":
            name = self.modules.get(argv[2])
        if name is not None:
            # Not `child_started`: several instances may run at once (replicas on one node).
            self.pids[pid] = name
        return name

    def stack_child(self, event: ev.KernelEvent) -> str | None:
        """The stack child this event's process belongs to, or None (not the stack's)."""
        if event is self._last:
            return self._last_child
        found = _from_cgroup(event.cgroup_path)
        if found is None and event.cgroup_path and self.stack_name:
            found = self._from_unit(event.cgroup_path)
        if found is None and (self.pids or self.launcher_pid):
            found = self._from_pids(event.pid, event.lineage)
        self._last, self._last_child = event, found
        return found

    def is_stack_main(self, event: ev.KernelEvent) -> bool | None:
        """True for a child's own process (or anything the launcher started directly)."""
        if event.pid in self.pids:
            return True
        if self.launcher_pid is None:
            return None if not self.pids else False
        parent = event.lineage[0].pid if event.lineage else event.ppid
        return parent == self.launcher_pid

    def _from_pids(self, pid: int, lineage: Sequence[ev.Ancestor]) -> str | None:
        pids = self.pids
        name = pids.get(pid)
        if name is not None:
            return name
        if pid == self.launcher_pid:
            return LAUNCHER
        for ancestor in lineage:
            name = pids.get(ancestor.pid)
            if name is not None:
                return name
            if ancestor.pid == self.launcher_pid:
                return LAUNCHER
        return None

    def _from_unit(self, path: str) -> str | None:
        """``…/sentinel-<stack>-<child>.service[/…]``: the unit `export systemd` writes."""
        if path in self._units:
            return self._units[path]
        prefix = f"sentinel-{self.stack_name}-"
        found = None
        for part in path.split("/"):
            if part.startswith(prefix) and part.endswith(".service"):
                name = part[len(prefix) : -len(".service")]
                found = name if name in self.kinds else None
        if len(self._units) > 4096:
            self._units.clear()
        self._units[path] = found
        return found

    def egress_allowed(self, child: str | None, address: str, port: int) -> bool:
        if address in self._addresses:
            parsed = self._addresses[address]
        else:
            parsed = _address(address)
            if len(self._addresses) > 4096:
                self._addresses.clear()
            self._addresses[address] = parsed
        if parsed is None:
            return False
        rules: Iterable[EgressRule] = self.egress
        if child is not None:
            rules = (*self.egress, *self.child_egress.get(child, ()))
        return any(rule.allows(parsed, port) for rule in rules)


def command_key(argv: Sequence[str]) -> tuple[str, ...]:
    """A command as `learn_exec` compares it: the program's base name, then the arguments
    (``/usr/bin/python3 app.py`` and ``python3 app.py`` are one command)."""
    return (argv[0].rsplit("/", 1)[-1], *argv[1:])


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        parsed = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def _from_cgroup(path: str | None) -> str | None:
    if not path:
        return None
    at = path.find(_CGROUP_MARK)
    if at < 0:
        return None
    rest = path[at + len(_CGROUP_MARK) :]
    _stack, _, child = rest.partition("/")
    return child.split("/", 1)[0] or None
