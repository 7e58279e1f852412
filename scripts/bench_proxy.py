"""Side-by-side proxy benchmark on loopback with wrk (HTTP/1.1) and h2load (HTTP/2, h2c).

Targets, measured in one run: nginx serving a static response directly, nginx as a
reverse proxy in front of it, sentinel-stack's proxy with no agents and with the default
agent chain (when the proxy is part of this installation). Servers are pinned to CPU 0
and the load generator to CPU 1, so client and server do not fight over one core.
Each figure is the median over --runs runs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

STATIC_H1, STATIC_H2, NGINX_PROXY_H1, NGINX_PROXY_H2 = 18180, 18181, 18190, 18191
BODY = "x" * 612  # about the size of nginx's default index page

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  upstream static {{ server 127.0.0.1:{static_h1}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{static_h1};
    listen 127.0.0.1:{static_h2} http2;
    location / {{ default_type text/plain; return 200 "{body}"; }}
  }}
  server {{
    listen 127.0.0.1:{proxy_h1};
    listen 127.0.0.1:{proxy_h2} http2;
    location / {{
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if shutil.which("taskset") else argv


def wait_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            time.sleep(0.02)
        else:
            return
    raise RuntimeError(f"nothing listens on {port}")


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(url: str, connections: int, duration: int, cpu: int | None = 1) -> Result:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url]
    out = subprocess.run(
        pinned(cpu, argv) if cpu is not None else argv,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Result(rps, p50, p99)


def run_h2load(url: str, connections: int, duration: int, workdir: Path) -> Result:
    log = workdir / "h2load.log"
    streams = 10
    out = subprocess.run(
        pinned(
            1,
            [
                "h2load",
                "-D",
                str(duration),
                "-c",
                str(connections),
                "-m",
                str(streams),
                "--log-file",
                str(log),
                url,
            ],
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    latencies = sorted(int(line.split("\t")[2]) for line in log.read_text().splitlines() if line)
    p50 = latencies[len(latencies) // 2] / 1000
    p99 = latencies[int(len(latencies) * 0.99)] / 1000
    return Result(rps, p50, p99)


def median(results: list[Result]) -> Result:
    return Result(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
    )


SENTINEL_H1 = {
    "sentinel proxy, no agents": 18200,
    "sentinel proxy, example agent": 18210,
    "sentinel proxy, default chain": 18220,
}

_AGENT = '[agents.{name}]\ncommand = ["${{SENTINEL_PYTHON}}", "-m", "sentinel_agents.{name}"]\n'
# The embedded default config's chain (denylist, rate limit, WAF), as `up` starts it with no
# config file; the rate limiter in dry-run so that one load generator is counted, not refused.
AGENT_CHAINS: dict[str, tuple[list[str], str]] = {
    "no agents": ([], ""),
    "example agent": (["example"], _AGENT.format(name="example")),
    "default chain": (
        ["denylist", "ratelimit", "waf"],
        _AGENT.format(name="denylist")
        + _AGENT.format(name="ratelimit")
        + "[agents.ratelimit.config]\ndry_run = true\n"
        + '[[agents.ratelimit.config.rules]]\nname = "per-client"\nrate = 100\nperiod = "1s"\n'
        + 'burst = 200\nkey = ["client_ip"]\n'
        + _AGENT.format(name="waf")
        + '[agents.waf.config]\nmode = "block"\nparanoia_level = 1\nanomaly_threshold = 5\n',
    ),
}


def sentinel_config(port: int, chain: str) -> str:
    names, agents = AGENT_CHAINS[chain]
    return f"""
[stack]
name = "bench{port}"
[proxy]
listen = ["127.0.0.1:{port}"]
admin = "127.0.0.1:{port + 1}"
agents = {json.dumps(names)}
[upstreams.static]
targets = ["127.0.0.1:{STATIC_H1}"]
health_check = {{ kind = "none" }}
[[routes]]
id = "all"
path_prefix = "/"
upstream = "static"
inspect_body = true
{agents}"""


def sentinel_targets(workdir: Path) -> dict[str, tuple[subprocess.Popen[str], str, str]]:
    """Start sentinel-stack's proxy without agents, with the example agent, and with the
    embedded default config's agent chain."""
    started: dict[str, tuple[subprocess.Popen[str], str, str]] = {}
    for name, port in SENTINEL_H1.items():
        config = workdir / f"sentinel-{port}.toml"
        config.write_text(sentinel_config(port, name.removeprefix("sentinel proxy, ")))
        proc = subprocess.Popen(
            pinned(
                0,
                [
                    sys.executable,
                    "-m",
                    "sentinel_stack",
                    "up",
                    "--no-tui",
                    "-c",
                    str(config),
                    "--run-dir",
                    str(workdir / f"run-{port}"),
                ],
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if "children ready" in line or "degraded" in line:
                break
        # keep draining its output so the launcher never blocks on a full pipe
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        url = f"http://127.0.0.1:{port}/"
        started[name] = (proc, url, url)
    return started


def write_nginx_conf(
    workdir: Path, proxy_h1: int = NGINX_PROXY_H1, proxy_h2: int = NGINX_PROXY_H2
) -> Path:
    conf = workdir / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            dir=workdir,
            static_h1=STATIC_H1,
            static_h2=STATIC_H2,
            proxy_h1=proxy_h1,
            proxy_h2=proxy_h2,
            body=BODY,
        )
    )
    return conf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--mode",
        choices=["compare", "workers", "latency"],
        default="compare",
        help="compare: side by side with nginx (default); workers: req/s at workers=1 vs 2; "
        "latency: added latency at 50%% of max load (open loop)",
    )
    args = parser.parse_args()
    if args.mode != "compare":
        import bench_proxy_load

        bench_proxy_load.main(args)
        return
    with tempfile.TemporaryDirectory(prefix="ssbp-", dir="/tmp") as tmp:
        workdir = Path(tmp)
        conf = write_nginx_conf(workdir)
        nginx = subprocess.Popen(pinned(0, ["nginx", "-c", str(conf), "-p", str(workdir)]))
        started = []
        try:
            for port in (STATIC_H1, NGINX_PROXY_H1):
                wait_port(port)
            targets = {
                "nginx direct (static)": (
                    f"http://127.0.0.1:{STATIC_H1}/",
                    f"http://127.0.0.1:{STATIC_H2}/",
                ),
                "nginx as reverse proxy": (
                    f"http://127.0.0.1:{NGINX_PROXY_H1}/",
                    f"http://127.0.0.1:{NGINX_PROXY_H2}/",
                ),
            }
            for name, (proc, h1, h2) in sentinel_targets(workdir).items():
                started.append(proc)
                targets[name] = (h1, h2)
            table: dict[str, dict[str, Result]] = {}
            for name, (h1, h2) in targets.items():
                table[name] = {
                    "HTTP/1.1 (wrk)": median(
                        [run_wrk(h1, args.connections, args.duration) for _ in range(args.runs)]
                    ),
                    "HTTP/2 h2c (h2load)": median(
                        [
                            run_h2load(h2, args.connections // 4 or 1, args.duration, workdir)
                            for _ in range(args.runs)
                        ]
                    ),
                }
                print(f"measured: {name}", file=sys.stderr)
        finally:
            for proc in started:
                proc.terminate()
                proc.wait(timeout=30)
            nginx.terminate()
            nginx.wait(timeout=10)
    if args.json:
        print(
            json.dumps({t: {k: vars(v) for k, v in r.items()} for t, r in table.items()}, indent=2)
        )
        return
    print(
        f"loopback, {args.duration}s x {args.runs} runs (median), servers on CPU 0, "
        f"client on CPU 1; wrk -t1 -c{args.connections}; h2load -c{args.connections // 4} -m10"
    )
    print(f"{'target':34} {'protocol':20} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for name, rows in table.items():
        for protocol, r in rows.items():
            print(f"{name:34} {protocol:20} {r.rps:10.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f}")


if __name__ == "__main__":
    main()
