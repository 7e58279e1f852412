"""The lineage table: pure, time passed in."""

from __future__ import annotations

from sentinel_stack.probe import events as ev
from sentinel_stack.probe.lineage import LineageTable
from sentinel_stack.probe.procfs import ProcessSnapshot


def snap(pid: int, ppid: int, comm: str, start: int, exe: str | None = None) -> ProcessSnapshot:
    return ProcessSnapshot(pid=pid, ppid=ppid, comm=comm, start_ticks=start, exe=exe, argv=[comm])


def seeded() -> LineageTable:
    table = LineageTable()
    table.seed(
        [
            snap(1, 0, "init", 1, "/sbin/init"),
            snap(10, 1, "launcher", 100, "/usr/bin/python3"),
            snap(20, 10, "proxy", 200, "/usr/bin/python3"),
        ]
    )
    return table


def test_processes_older_than_the_probe_have_parents() -> None:
    table = seeded()
    event = ev.OpenEvent(time=0.0, pid=20, ppid=10, comm="proxy", start_ticks=200, path="/x")
    table.apply(event, now=0.0)
    assert [a.pid for a in event.lineage] == [10, 1]
    assert event.exe == "/usr/bin/python3" and event.argv == ["proxy"]


def test_fork_then_exec_builds_the_chain() -> None:
    table = seeded()
    fork = ev.ForkEvent(time=1.0, pid=30, ppid=20, comm="proxy", start_ticks=300)
    table.apply(fork, now=1.0)
    assert fork.exe == "/usr/bin/python3"  # inherited until exec
    execd = ev.ExecEvent(
        time=1.1, pid=30, ppid=20, comm="sh", start_ticks=300, exe="/bin/sh", argv=["sh"]
    )
    table.apply(execd, now=1.1)
    child = ev.ExecEvent(
        time=1.2, pid=31, ppid=30, comm="id", start_ticks=301, exe="/usr/bin/id", argv=["id"]
    )
    table.apply(child, now=1.2)
    assert [(a.pid, a.comm, a.exe) for a in child.lineage] == [
        (30, "sh", "/bin/sh"),
        (20, "proxy", "/usr/bin/python3"),
        (10, "launcher", "/usr/bin/python3"),
        (1, "init", "/sbin/init"),
    ]


def test_a_fork_start_one_tick_off_is_the_same_process() -> None:
    table = seeded()
    table.apply(ev.ForkEvent(time=1.0, pid=30, ppid=20, comm="proxy", start_ticks=300), 1.0)
    later = ev.OpenEvent(time=2.0, pid=30, ppid=20, comm="proxy", start_ticks=299, path="/y")
    table.apply(later, 2.0)
    record = table.lookup(30)
    assert record is not None and record.start_ticks == 300


def test_a_reused_pid_is_a_new_process_and_cuts_a_stale_chain() -> None:
    table = seeded()
    # pid 10 exits; the pid comes back as something started after pid 20.
    reused = ev.ExecEvent(time=5.0, pid=10, ppid=1, comm="evil", start_ticks=500, exe="/tmp/e")
    table.apply(reused, 5.0)
    event = ev.OpenEvent(time=6.0, pid=20, ppid=10, comm="proxy", start_ticks=200, path="/z")
    table.apply(event, 6.0)
    assert event.lineage == []  # the parent that started pid 20 is gone
    assert table.lookup(10, start_ticks=100) is None


def test_exited_processes_linger_then_are_forgotten() -> None:
    table = LineageTable(linger=30.0)
    table.seed([snap(1, 0, "init", 1), snap(40, 1, "job", 400)])
    table.apply(ev.ExitEvent(time=10.0, pid=40, ppid=1, comm="job", start_ticks=400), now=10.0)
    assert table.expire(now=20.0) == 0 and table.lookup(40) is not None
    assert table.expire(now=40.5) == 1 and table.lookup(40) is None


def test_lineage_cache_follows_an_exec_up_the_tree() -> None:
    table = seeded()
    first = ev.OpenEvent(time=0.0, pid=20, ppid=10, comm="proxy", start_ticks=200, path="/a")
    table.apply(first, 0.0)
    assert first.lineage[0].comm == "launcher"
    table.apply(
        ev.ExecEvent(time=1.0, pid=10, ppid=1, comm="relaunched", start_ticks=100, exe="/x"), 1.0
    )
    second = ev.OpenEvent(time=2.0, pid=20, ppid=10, comm="proxy", start_ticks=200, path="/a")
    table.apply(second, 2.0)
    assert second.lineage[0].comm == "relaunched"


def test_loops_and_depth_are_bounded() -> None:
    table = LineageTable(max_depth=3)
    table.seed([snap(i, i - 1, f"p{i}", i) for i in range(1, 10)] + [snap(50, 51, "a", 1)])
    table.seed([snap(51, 50, "b", 1)])
    assert len(table.ancestors(9, 9)) == 3
    assert [a.pid for a in table.ancestors(51, 1)] == [51, 50]


def test_table_size_is_capped() -> None:
    table = LineageTable(max_size=3)
    table.seed([snap(i, 1, "p", i) for i in range(1, 10)])
    assert len(table) == 3
