"""From bpftrace's JSON output to typed events: parsing and normalization, no I/O.

bpftrace (`-f json`) writes one object per line: ``{"type": "value", "data": [...]}`` for
our records (tuples, first element the record tag), ``{"type": "lost_events", ...}`` when
the kernel ring buffer overflowed, ``{"type": "attached_probes", ...}`` at start. The layout
of each record is fixed by the programs in bpf/; `RecordNormalizer` turns a record into an
event from `events.py`. Clocks are passed in, never read here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from sentinel_stack.probe import events as ev

__all__ = ["BpftraceMessage", "Clocks", "ParsedChunk", "RecordNormalizer", "parse_lines"]

Record = list[Any]
_E = TypeVar("_E", bound=ev.KernelEvent)


class BpftraceMessage(msgspec.Struct):
    type: str
    data: Any = None


_CHUNK = msgspec.json.Decoder(list[BpftraceMessage])
_LINE = msgspec.json.Decoder(BpftraceMessage)


@dataclass(slots=True)
class ParsedChunk:
    """What one read from bpftrace's stdout held."""

    records: list[Record] = field(default_factory=list)
    lost_events: int = 0
    attached_probes: int | None = None
    parse_errors: int = 0


def parse_lines(lines: Sequence[bytes]) -> ParsedChunk:
    """Decode complete lines. One decoder call per chunk when every line is valid JSON."""
    out = ParsedChunk()
    if not lines:
        return out
    try:
        messages = _CHUNK.decode(b"[" + b",".join(lines) + b"]")
    except (msgspec.DecodeError, UnicodeDecodeError):
        messages = []
        for line in lines:
            if not line.strip():
                continue
            try:
                messages.append(_LINE.decode(line))
            except (msgspec.DecodeError, UnicodeDecodeError):
                try:  # bpftrace copies raw non-UTF-8 bytes of paths into its JSON
                    messages.append(_LINE.decode(line.decode("utf-8", "replace").encode()))
                except msgspec.DecodeError:
                    out.parse_errors += 1
    for message in messages:
        kind = message.type
        if kind == "value":
            if isinstance(message.data, list) and message.data:
                out.records.append(message.data)
            else:
                out.parse_errors += 1
        elif kind == "lost_events":
            data = message.data
            out.lost_events += int(data.get("events", 0)) if isinstance(data, dict) else 0
        elif kind == "attached_probes":
            data = message.data
            out.attached_probes = int(data.get("probes", 0)) if isinstance(data, dict) else 0
    return out


# bpftrace 0.17 renders a byte >= 0x80 in a string as "\uffffffXX" (a sign-extended char):
# after JSON decoding that is U+FFFF followed by "ffXX".
_MANGLED = re.compile("\uffffff([0-9a-f]{2})")
# buf() renders non-printable bytes as \xNN.
_BUF_ESCAPE = re.compile(r"\\x([0-9a-f]{2})")


def clean_text(text: str) -> str:
    """Undo bpftrace's mangling of non-ASCII bytes; invalid UTF-8 becomes U+FFFD."""
    if "\uffff" not in text:
        return text
    raw = _MANGLED.sub(lambda m: chr(int(m[1], 16)), text)
    return raw.encode("latin-1", "replace").decode("utf-8", "replace")


def buf_bytes(text: str) -> bytes:
    """The bytes behind a bpftrace buf() rendering."""
    return _BUF_ESCAPE.sub(lambda m: chr(int(m[1], 16)), clean_text(text)).encode(
        "latin-1", "replace"
    )


@dataclass(frozen=True, slots=True)
class Clocks:
    """How to turn kernel timestamps into the event schema's clocks.

    bpftrace's `nsecs` is CLOCK_MONOTONIC; events carry unix time. Process start times are
    CLOCK_BOOTTIME ns in the kernel and clock ticks in /proc.
    """

    realtime_minus_monotonic: float
    boottime_minus_monotonic_ns: int = 0
    ticks_per_second: int = 100

    def unix(self, monotonic_ns: int) -> float:
        return monotonic_ns / 1e9 + self.realtime_minus_monotonic

    def ticks_from_boottime(self, boottime_ns: int) -> int:
        return boottime_ns * self.ticks_per_second // 1_000_000_000

    def ticks_from_monotonic(self, monotonic_ns: int) -> int:
        return self.ticks_from_boottime(monotonic_ns + self.boottime_minus_monotonic_ns)


TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW_SYN_RECV",
}  # fmt: skip
_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 262: "mptcp"}
_FAMILIES = {2: "inet", 10: "inet6"}
_OPEN_SYSCALLS = {2: "open", 257: "openat", 437: "openat2", 85: "creat"}
_OPEN_REASONS = ((1, "sensitive"), (2, "traversal"), (4, "watched_write"))
_REASON_NAMES = [tuple(name for bit, name in _OPEN_REASONS if bits & bit) for bits in range(8)]
_FILE_OPS = {1: "unlink", 2: "rename", 3: "truncate"}
_PRIV_CALLS = {
    1: ("setuid", 1), 2: ("setgid", 1), 3: ("setreuid", 2), 4: ("setregid", 2),
    5: ("setresuid", 3), 6: ("setresgid", 3), 7: ("setfsuid", 1), 8: ("setfsgid", 1),
}  # fmt: skip
PTRACE_REQUESTS = {
    0: "TRACEME", 4: "POKETEXT", 5: "POKEDATA", 6: "POKEUSER", 13: "SETREGS", 15: "SETFPREGS",
    16: "ATTACH", 0x4205: "SETREGSET", 0x4206: "SEIZE",
}  # fmt: skip
_FLAG_NAMES = (
    (0o100, "O_CREAT"), (0o200, "O_EXCL"), (0o1000, "O_TRUNC"), (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"), (0o200000, "O_DIRECTORY"), (0o400000, "O_NOFOLLOW"),
    (0o2000000, "O_CLOEXEC"), (0o20000000, "O_TMPFILE"),
)  # fmt: skip
_UNCHANGED = 0xFFFFFFFF


_FLAG_NAMES_CACHE: dict[int, tuple[str, ...]] = {}


def open_flag_names(flags: int) -> list[str]:
    """Symbolic open(2) flags; cached per value (a storm repeats the same few)."""
    names = _FLAG_NAMES_CACHE.get(flags)
    if names is None:
        access = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")[flags & 3]
        names = (access, *(name for bit, name in _FLAG_NAMES if flags & bit == bit))
        if len(_FLAG_NAMES_CACHE) < 4096:
            _FLAG_NAMES_CACHE[flags] = names
    return list(names)


def ipv4(value: int) -> str:
    """An address the kernel stores in network order, read as a little-endian u32."""
    return str(ipaddress.IPv4Address(value.to_bytes(4, "little")))


def ipv6(words: Sequence[int]) -> str:
    return str(ipaddress.IPv6Address(b"".join(w.to_bytes(4, "little") for w in words)))


def _signed(value: int) -> int:
    # bpftrace prints (int64) values signed already; this guards u64-wrapped negatives.
    return value - (1 << 64) if value >= 1 << 63 else value


class RecordNormalizer:
    """Turns bpftrace records into events. Holds only the per-thread pieces of split records
    (argv chunks, the second path of a rename) until their main record arrives."""

    def __init__(self, clocks: Clocks, source: str = "probe") -> None:
        self.clocks = clocks
        self._realtime_offset = clocks.realtime_minus_monotonic
        self._ticks = clocks.ticks_per_second
        self.source = source
        self.unknown_records = 0
        self._argv: dict[int, list[str]] = {}
        self._aux: dict[int, str] = {}
        self.cgroups_added: list[tuple[int, str]] = []
        self.ready_pid: int | None = None
        self.last_tick: int | None = None
        self._builders: dict[str, Callable[[Record], ev.KernelEvent | None]] = {
            "exec": self._exec,
            "fork": self._fork,
            "exit": self._exit,
            "connect": self._connect,
            "accept": self._accept,
            "tcp": self._tcp,
            "open": self._open,
            "file": self._file,
            "priv": self._priv,
            "capset": self._capset,
            "ptrace": self._ptrace,
            "memfd": self._memfd,
            "chmod": self._chmod,
            "dup": self._dup,
        }

    def normalize(self, record: Record) -> ev.KernelEvent | None:
        """The event for a record, or None for a fragment, a marker or a malformed record."""
        tag = record[0]
        builder = self._builders.get(tag)
        try:
            if builder is not None:
                return builder(record)
            if tag == "argv":
                self._argv.setdefault(record[1], []).append(record[3])
            elif tag == "aux":
                self._aux[record[1]] = clean_text(record[2])
            elif tag == "cgroup_add":
                self.cgroups_added.append((record[1], clean_text(record[2])))
            elif tag == "tick":
                self.last_tick = record[1]
            elif tag == "ready":
                self.ready_pid = record[1]
            else:
                self.unknown_records += 1
        except (IndexError, TypeError, ValueError):
            self.unknown_records += 1
        return None

    # The TASK header is record[1:11]: t, pid, tid, ppid, uid, euid, gid, cgroup, start, comm.
    # Builders set their own fields as attributes afterwards: cheaper than keyword merging,
    # and this is the hot path of an event storm.
    def _task(self, cls: type[_E], r: Record) -> _E:
        return cls(
            time=r[1] / 1e9 + self._realtime_offset,
            source=self.source,
            pid=r[2],
            tid=r[3],
            ppid=r[4],
            uid=r[5],
            euid=r[6],
            gid=r[7],
            cgroup=r[8],
            start_ticks=r[9] * self._ticks // 1_000_000_000,
            comm=clean_text(r[10]),
        )

    def _exec(self, r: Record) -> ev.KernelEvent:
        chunks = self._argv.pop(r[3], [])
        raw = b"".join(buf_bytes(chunk) for chunk in chunks)
        argv = [part.decode("utf-8", "replace") for part in raw.split(b"\0")]
        if argv and argv[-1] == "":
            argv.pop()
        event = self._task(ev.ExecEvent, r)
        event.filename = event.exe = clean_text(r[11])
        event.argv = argv
        event.argv_truncated = r[12] > len(raw)
        return event

    def _fork(self, r: Record) -> ev.KernelEvent:
        event = self._task(ev.ForkEvent, r)
        event.ppid = event.pid
        event.pid = event.tid = r[11]
        event.start_ticks = self.clocks.ticks_from_monotonic(r[1])
        return event

    def _exit(self, r: Record) -> ev.KernelEvent:
        status = r[11]
        signal = status & 0x7F
        event = self._task(ev.ExitEvent, r)
        event.raw_status = status
        event.exit_code = None if signal else (status >> 8) & 0xFF
        event.signal = signal or None
        event.core_dumped = bool(status & 0x80)
        return event

    def _endpoints(self, family: int, fields: Record) -> tuple[ev.Endpoint, ev.Endpoint]:
        # fields: saddr4, sport, daddr4, dport (network order), saddr6 x4, daddr6 x4
        sport, dport = fields[1], int.from_bytes(fields[3].to_bytes(2, "little"), "big")
        if family == 10:
            local, remote = ipv6(fields[4:8]), ipv6(fields[8:12])
        else:
            local, remote = ipv4(fields[0]), ipv4(fields[2])
        return ev.Endpoint(local, sport), ev.Endpoint(remote, dport)

    def _connect(self, r: Record) -> ev.KernelEvent:
        family, protocol = r[13], r[14]
        event = self._task(ev.ConnectEvent, r)
        event.local, event.remote = self._endpoints(family, r[16:28])
        event.fd, event.result = r[11], _signed(r[12])
        event.family = _FAMILIES.get(family, str(family))
        event.protocol = _PROTOCOLS.get(protocol, str(protocol))
        return event

    def _accept(self, r: Record) -> ev.KernelEvent:
        family, protocol = r[12], r[13]
        event = self._task(ev.AcceptEvent, r)
        event.local, event.remote = self._endpoints(family, r[15:27])
        event.fd = r[11]
        event.family = _FAMILIES.get(family, str(family))
        event.protocol = _PROTOCOLS.get(protocol, str(protocol))
        return event

    def _tcp(self, r: Record) -> ev.KernelEvent:
        # ("tcp", t, owner_pid, skaddr, old, new, family, sport, dport, saddr4, daddr4)
        family = r[6]
        v4 = family == 2
        return ev.TcpStateEvent(
            time=r[1] / 1e9 + self._realtime_offset,
            source=self.source,
            pid=r[2],
            socket=r[3],
            old_state=TCP_STATES.get(r[4], str(r[4])),
            new_state=TCP_STATES.get(r[5], str(r[5])),
            family=_FAMILIES.get(family, str(family)),
            local=ev.Endpoint(ipv4(r[9]), r[7]) if v4 else None,
            remote=ev.Endpoint(ipv4(r[10]), r[8]) if v4 else None,
        )

    def _open(self, r: Record) -> ev.KernelEvent:
        meta = r[12]
        flags, syscall = meta & 0xFFFFFFFF, meta >> 40
        event = self._task(ev.OpenEvent, r)
        event.path = clean_text(r[11])
        event.flags = flags
        event.flag_names = open_flag_names(flags)
        event.reasons = list(_REASON_NAMES[(meta >> 32) & 7])
        event.result = _signed(r[13])
        event.syscall = _OPEN_SYSCALLS.get(syscall) or str(syscall)
        return event

    def _file(self, r: Record) -> ev.KernelEvent:
        op = r[11]
        event = self._task(ev.FileChangeEvent, r)
        event.op = _FILE_OPS.get(op, str(op))
        event.path = clean_text(r[12])
        event.new_path = self._aux.pop(r[3], None) if op == 2 else None
        event.result = _signed(r[13])
        return event

    def _priv(self, r: Record) -> ev.KernelEvent:
        call, count = _PRIV_CALLS.get(r[11], (str(r[11]), 3))
        event = self._task(ev.PrivilegeEvent, r)
        event.call = call
        event.requested = [None if v == _UNCHANGED else v for v in r[12 : 12 + count]]
        event.old_uid, event.old_euid, event.result = r[15], r[16], _signed(r[17])
        return event

    def _capset(self, r: Record) -> ev.KernelEvent:
        event = self._task(ev.CapsetEvent, r)
        event.target_pid = _signed(r[11])
        event.effective = r[12] | r[13] << 32
        event.permitted = r[14] | r[15] << 32
        event.inheritable = r[16] | r[17] << 32
        event.result = _signed(r[18])
        return event

    def _ptrace(self, r: Record) -> ev.KernelEvent:
        event = self._task(ev.PtraceEvent, r)
        event.request = PTRACE_REQUESTS.get(r[11], str(r[11]))
        event.target_pid, event.result = r[12], _signed(r[13])
        return event

    def _memfd(self, r: Record) -> ev.KernelEvent:
        event = self._task(ev.MemfdEvent, r)
        event.name, event.flags, event.result = clean_text(r[11]), r[12], _signed(r[13])
        return event

    def _chmod(self, r: Record) -> ev.KernelEvent:
        event = self._task(ev.ChmodEvent, r)
        event.path, event.mode, event.result = clean_text(r[11]), r[12], _signed(r[13])
        return event

    def _dup(self, r: Record) -> ev.KernelEvent:
        event = self._task(ev.DupSocketEvent, r)
        event.oldfd, event.newfd = r[11], r[12]
        return event
