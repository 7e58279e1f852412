"""bpftrace JSON lines -> records -> typed events, without a kernel."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.records import (
    Clocks,
    RecordNormalizer,
    buf_bytes,
    clean_text,
    open_flag_names,
    parse_lines,
)

CLOCKS = Clocks(realtime_minus_monotonic=1_700_000_000.0, boottime_minus_monotonic_ns=5 * 10**9)
# time (monotonic ns), pid, tid, ppid, uid, euid, gid, cgroup, start (boottime ns), comm
TASK = [2_000_000_000, 500, 501, 400, 1000, 0, 1000, 77, 12_340_000_000, "cat"]


def line(data: Any, kind: str = "value") -> bytes:
    return json.dumps({"type": kind, "data": data}).encode()


def normalize(*records: list[Any]) -> ev.KernelEvent | None:
    normalizer = RecordNormalizer(CLOCKS, source="probe-x")
    result = None
    for record in records:
        result = normalizer.normalize(record)
    return result


def test_parse_lines_splits_values_lost_events_and_attach_count() -> None:
    parsed = parse_lines(
        [
            line({"probes": 31}, "attached_probes"),
            line(["ready", 99]),
            line({"events": 12}, "lost_events"),
            line({"@x": 1}, "map"),
            line({"events": 3}, "lost_events"),
        ]
    )
    assert parsed.records == [["ready", 99]]
    assert parsed.lost_events == 15
    assert parsed.attached_probes == 31
    assert parsed.parse_errors == 0


def test_a_broken_line_costs_only_itself() -> None:
    parsed = parse_lines([line(["ready", 1]), b'{"type": "value", "da', line(["tick", 2])])
    assert parsed.records == [["ready", 1], ["tick", 2]]
    assert parsed.parse_errors == 1


def test_raw_non_utf8_bytes_in_a_line_are_tolerated() -> None:
    raw = b'{"type": "value", "data": ["aux", 1, "/tmp/\xff\xfe"]}'
    parsed = parse_lines([raw])
    assert parsed.records[0][0] == "aux" and parsed.parse_errors == 0


def test_bpftrace_mangled_high_bytes_are_restored() -> None:
    # bpftrace 0.17 prints byte 0xc3 as "\uffffffc3": U+FFFF then "ffc3" after decoding.
    mangled = json.loads('"caf\\uffffffc3\\uffffffa9"')
    assert clean_text(mangled) == "café"
    assert clean_text("plain") == "plain"


def test_buf_rendering_back_to_bytes() -> None:
    assert buf_bytes("id\\x00-u\\x00") == b"id\x00-u\x00"


def test_exec_joins_argv_chunks_of_the_same_thread() -> None:
    normalizer = RecordNormalizer(CLOCKS)
    assert normalizer.normalize(["argv", 501, 0, "/bin/sh\\x00-c\\x00echo hel"]) is None
    assert normalizer.normalize(["argv", 999, 0, "other\\x00"]) is None
    assert normalizer.normalize(["argv", 501, 1, "lo world\\x00"]) is None
    event = normalizer.normalize(["exec", *TASK, "/bin/sh", 27])
    assert isinstance(event, ev.ExecEvent)
    assert event.argv == ["/bin/sh", "-c", "echo hello world"]
    assert event.filename == event.exe == "/bin/sh"
    assert not event.argv_truncated
    assert event.time == pytest.approx(1_700_000_002.0)
    assert (event.pid, event.tid, event.ppid, event.uid, event.euid) == (500, 501, 400, 1000, 0)
    assert event.start_ticks == 1234 and event.cgroup == 77 and event.comm == "cat"


def test_exec_notes_an_argv_longer_than_what_was_read() -> None:
    event = normalize(["argv", 501, 0, "a\\x00"], ["exec", *TASK, "/bin/a", 5000])
    assert isinstance(event, ev.ExecEvent) and event.argv_truncated and event.argv == ["a"]


def test_fork_describes_the_child() -> None:
    event = normalize(["fork", *TASK, 777])
    assert isinstance(event, ev.ForkEvent)
    assert (event.pid, event.tid, event.ppid) == (777, 777, 500)
    # Child start: the record time (monotonic) moved to boot time, in ticks.
    assert event.start_ticks == (2_000_000_000 + 5 * 10**9) // 10**7


@pytest.mark.parametrize(
    ("status", "code", "signal", "core"),
    [(0, 0, None, False), (7 << 8, 7, None, False), (9, None, 9, False), (0x86, None, 6, True)],
)
def test_exit_status_decoding(
    status: int, code: int | None, signal: int | None, core: bool
) -> None:
    event = normalize(["exit", *TASK, status])
    assert isinstance(event, ev.ExitEvent)
    assert (event.exit_code, event.signal, event.core_dumped) == (code, signal, core)


def _sock(saddr4: int, sport: int, daddr4: int, dport_be: int, v6: list[int]) -> list[int]:
    return [saddr4, sport, daddr4, dport_be, *v6]


def test_connect_endpoints_inet() -> None:
    # 127.0.0.1 as the kernel stores it (network order) read as a little-endian u32.
    loopback = int.from_bytes(bytes([127, 0, 0, 1]), "little")
    dport_be = int.from_bytes((8080).to_bytes(2, "big"), "little")
    record = [
        "connect",
        *TASK,
        3,
        0,
        2,
        6,
        0xFFFF,
        *_sock(loopback, 40000, loopback, dport_be, [0] * 8),
    ]
    event = normalize(record)
    assert isinstance(event, ev.ConnectEvent)
    assert event.local == ev.Endpoint("127.0.0.1", 40000)
    assert event.remote == ev.Endpoint("127.0.0.1", 8080)
    assert (event.fd, event.result, event.family, event.protocol) == (3, 0, "inet", "tcp")


def test_accept_endpoints_inet6() -> None:
    one = [0, 0, 0, int.from_bytes(bytes([0, 0, 0, 1]), "little")]  # ::1
    dport_be = int.from_bytes((51000).to_bytes(2, "big"), "little")
    record = ["accept", *TASK, 5, 10, 6, 0xFFFF, *_sock(0, 443, 0, dport_be, one + one)]
    event = normalize(record)
    assert isinstance(event, ev.AcceptEvent)
    assert event.local == ev.Endpoint("::1", 443) and event.remote == ev.Endpoint("::1", 51000)
    assert event.family == "inet6"


def test_tcp_state_change_is_attributed_to_the_socket_owner() -> None:
    addr = int.from_bytes(bytes([10, 0, 0, 2]), "little")
    event = normalize(["tcp", 3_000_000_000, 500, 0xABC, 2, 1, 2, 40000, 443, addr, addr])
    assert isinstance(event, ev.TcpStateEvent)
    assert (event.pid, event.old_state, event.new_state) == (500, "SYN_SENT", "ESTABLISHED")
    assert event.remote == ev.Endpoint("10.0.0.2", 443)


def test_open_meta_unpacks_flags_reasons_and_syscall() -> None:
    meta = 0o2001101 | (1 | 4) << 32 | 257 << 40  # O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC... +bits
    event = normalize(["open", *TASK, "/etc/cron.d/x", meta, -13])
    assert isinstance(event, ev.OpenEvent)
    assert event.reasons == ["sensitive", "watched_write"]
    assert event.syscall == "openat" and event.result == -13
    assert event.flag_names[0] == "O_WRONLY" and "O_CREAT" in event.flag_names


def test_open_flag_names() -> None:
    assert open_flag_names(0) == ["O_RDONLY"]
    assert open_flag_names(0o2 | 0o100 | 0o2000000) == ["O_RDWR", "O_CREAT", "O_CLOEXEC"]


def test_rename_takes_its_new_path_from_the_aux_record() -> None:
    event = normalize(["aux", 501, "/etc/cron.d/evil"], ["file", *TASK, 2, "/tmp/evil", 0])
    assert isinstance(event, ev.FileChangeEvent)
    assert (event.op, event.path, event.new_path) == ("rename", "/tmp/evil", "/etc/cron.d/evil")


def test_privilege_change_marks_unchanged_ids() -> None:
    event = normalize(["priv", *TASK, 5, 0, 0xFFFFFFFF, 0, 1000, 1000, 0])
    assert isinstance(event, ev.PrivilegeEvent)
    assert event.call == "setresuid" and event.requested == [0, None, 0]
    assert (event.old_uid, event.old_euid, event.result) == (1000, 1000, 0)


def test_capset_joins_both_capability_words() -> None:
    event = normalize(["capset", *TASK, 0, 1, 2, 3, 4, 5, 6, -1])
    assert isinstance(event, ev.CapsetEvent)
    assert (event.effective, event.permitted, event.inheritable) == (
        1 | 2 << 32,
        3 | 4 << 32,
        5 | 6 << 32,
    )
    assert event.result == -1


def test_tamper_records() -> None:
    ptrace = normalize(["ptrace", *TASK, 0x4206, 321, 0])
    assert isinstance(ptrace, ev.PtraceEvent) and ptrace.request == "SEIZE"
    memfd = normalize(["memfd", *TASK, "x", 1, 4])
    assert isinstance(memfd, ev.MemfdEvent) and (memfd.name, memfd.result) == ("x", 4)
    chmod = normalize(["chmod", *TASK, "/tmp/s", 0o4755, 0])
    assert isinstance(chmod, ev.ChmodEvent) and chmod.mode == 0o4755
    dup = normalize(["dup", *TASK, 3, 1])
    assert isinstance(dup, ev.DupSocketEvent) and (dup.oldfd, dup.newfd) == (3, 1)


def test_markers_and_malformed_records_produce_no_event() -> None:
    normalizer = RecordNormalizer(CLOCKS)
    assert normalizer.normalize(["ready", 4321]) is None and normalizer.ready_pid == 4321
    assert normalizer.normalize(["tick", 5]) is None and normalizer.last_tick == 5
    assert normalizer.normalize(["cgroup_add", 88, "/stack/web"]) is None
    assert normalizer.cgroups_added == [(88, "/stack/web")]
    assert normalizer.normalize(["exec", 1, 2]) is None
    assert normalizer.normalize(["mystery"]) is None
    assert normalizer.unknown_records == 2


def test_events_round_trip_through_the_wire_schema() -> None:
    event = normalize(["open", *TASK, "/etc/shadow", 1 << 32 | 257 << 40, 3])
    assert event is not None
    wire = ev.EVENT_ENCODER.encode(event)
    assert json.loads(wire)["kind"] == "kernel.open"
    assert ev.EVENT_DECODER.decode(wire) == event
