"""Measure `up` to all-ready, crash to ready again, graceful `down`, and launcher idle CPU.

Each figure is the median of several runs of a real `sentinel-stack up` with 6 trivial
children (a shell that says READY=1 through systemd-notify, then sleeps).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

CLI = [sys.executable, "-m", "sentinel_stack"]
TRIVIAL = ["/bin/sh", "-c", "systemd-notify --ready; exec sleep infinity"]


def config(children: int, notify: bool) -> str:
    lines = ['[stack]\nname = "bench"\nshutdown_timeout = "5s"\n']
    for index in range(children):
        command = TRIVIAL if notify else ["sleep", "infinity"]
        lines.append(
            f"[processes.c{index}]\ncommand = {json.dumps(command)}\n"
            f"readiness = {{ notify = {'true' if notify else 'false'} }}\n"
            'backoff = { initial = "0s", jitter = 0.0 }\nmax_restarts = 1000\n'
        )
    return "\n".join(lines)


class Stack:
    def __init__(self, workdir: Path, notify: bool = True, children: int = 6) -> None:
        self.config = workdir / "bench.toml"
        self.config.write_text(config(children, notify))
        self.args = ["-c", str(self.config), "--run-dir", str(workdir / "run")]
        self.control = workdir / "run" / "control.sock"
        self.children = children

    def start(self) -> float:
        """Start `up`; return seconds from exec to the launcher printing all-ready."""
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            [*CLI, "up", "--json-logs", *self.args], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            if event.get("type") == "stack" and "children ready in" in event["message"]:
                self.internal_ready = float(event["message"].rsplit(" in ", 1)[1].rstrip("s"))
                return time.perf_counter() - began
        raise RuntimeError("the stack never became ready")

    def request(self, op: str, **fields: object) -> dict:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.control))
            sock.sendall(json.dumps({"op": op, "id": 1, **fields}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                data += sock.recv(65536)
        return json.loads(data)["result"]

    def crash_to_ready(self, name: str) -> float:
        """SIGKILL one child; seconds until the supervisor reports it running again."""
        with socket.socket(socket.AF_UNIX) as sub:
            sub.connect(str(self.control))
            sub.sendall(b'{"op": "subscribe", "id": 9, "topics": ["state"]}\n')
            pid = next(c["pid"] for c in self.request("status")["children"] if c["name"] == name)
            time.sleep(0.05)  # let the subscription register before the crash
            killed = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            buffer = b""
            while True:
                buffer += sub.recv(65536)
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    event = json.loads(line).get("event", {})
                    if event.get("child") == name and event.get("state") == "running":
                        return time.perf_counter() - killed

    def idle_cpu(self, seconds: float) -> float:
        launcher = psutil.Process(self.proc.pid)
        before = launcher.cpu_times()
        time.sleep(seconds)
        after = launcher.cpu_times()
        used = (after.user - before.user) + (after.system - before.system)
        return 100.0 * used / seconds

    def down(self) -> tuple[float, float]:
        """`sentinel-stack down`: (seconds for the CLI command, seconds inside the launcher)."""
        began = time.perf_counter()
        subprocess.run([*CLI, "down", *self.args], check=True, capture_output=True)
        wall = time.perf_counter() - began
        assert self.proc.stdout is not None
        stopping = stopped = None
        for line in self.proc.stdout:
            event = json.loads(line)
            if event.get("type") == "stack" and event["message"] == "stopping the stack":
                stopping = event["time"]
            if event.get("type") == "stack" and event["message"] == "stopped":
                stopped = event["time"]
        self.proc.wait(timeout=30)
        assert stopping is not None and stopped is not None
        return wall, stopped - stopping


def median_ms(values: list[float]) -> str:
    low, high = min(values) * 1000, max(values) * 1000
    return f"{statistics.median(values) * 1000:.0f} ms (min {low:.0f}, max {high:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--crashes", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "up_wall",
            "up_internal",
            "up_wall_sleep",
            "crash",
            "down_wall",
            "down_internal",
            "idle",
        )
    }
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="ssb-", dir="/tmp") as tmp:
            stack = Stack(Path(tmp), notify=False)
            results["up_wall_sleep"].append(stack.start())
            stack.down()
        with tempfile.TemporaryDirectory(prefix="ssb-", dir="/tmp") as tmp:
            stack = Stack(Path(tmp))
            results["up_wall"].append(stack.start())
            results["up_internal"].append(stack.internal_ready)
            for index in range(args.crashes // args.runs or 1):
                results["crash"].append(stack.crash_to_ready(f"c{index % stack.children}"))
            if run == 0:
                results["idle"].append(stack.idle_cpu(args.idle_seconds))
            wall, internal = stack.down()
            results["down_wall"].append(wall)
            results["down_internal"].append(internal)
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    report = [
        f"cores: {os.cpu_count()}, runs: {args.runs}, children: 6",
        "up -> all ready, 6 sd_notify children, launcher's own clock: "
        + median_ms(results["up_internal"]),
        "up -> all ready, 6 sd_notify children, from exec of `sentinel-stack up`: "
        + median_ms(results["up_wall"]),
        "up -> all ready, 6 `sleep` children (no readiness check), from exec: "
        + median_ms(results["up_wall_sleep"]),
        f"crash (SIGKILL) -> running again, backoff 0: {median_ms(results['crash'])} "
        f"over {len(results['crash'])} crashes",
        "graceful down of 6 children, inside the launcher: " + median_ms(results["down_internal"]),
        "graceful down of 6 children, `sentinel-stack down` command: "
        + median_ms(results["down_wall"]),
        f"launcher idle CPU with 6 children over {args.idle_seconds:g}s: "
        f"{results['idle'][0]:.2f} % of one core",
    ]
    print("\n".join(report))


if __name__ == "__main__":
    main()
