"""A small, scriptable child program for supervisor tests (never shipped in the product).

Flags say what to do: become ready (sd_notify) after a delay, crash, flood stdout,
ignore SIGTERM, leave a grandchild behind, serve an inherited socket, ping a watchdog.
Every start is appended to --record so tests can see order and timing.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sentinel_stack.child.activation import listen_sockets
from sentinel_stack.child.sdnotify import notify, watchdog_interval


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--name", default=os.environ.get("SENTINEL_CHILD_NAME", "child"))
    p.add_argument("--record")
    p.add_argument("--ready-after", type=float, default=0.0)
    p.add_argument("--no-ready", action="store_true")
    p.add_argument("--exit-after", type=float)
    p.add_argument("--exit-code", type=int, default=1)
    p.add_argument("--flood", type=int, default=0, help="bytes to write to stdout")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--grandchild", action="store_true")
    p.add_argument("--serve-socket", action="store_true")
    p.add_argument("--watchdog", action="store_true", help="ping WATCHDOG=1")
    p.add_argument("--listen-tcp", type=int)
    args = p.parse_args()

    if args.record:
        with open(args.record, "a") as f:
            f.write(f"start {args.name} {os.getpid()} {time.time():.6f}\n")
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:

        def on_term(signum: int, frame: object) -> None:
            if args.record:
                with open(args.record, "a") as f:
                    f.write(f"term {args.name} {os.getpid()} {time.time():.6f}\n")
            sys.exit(0)

        signal.signal(signal.SIGTERM, on_term)
    if args.grandchild:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"grandchild {child.pid}", flush=True)
    if args.flood:
        block = (b"x" * 99 + b"\n") * 1000
        written = 0
        out = sys.stdout.buffer
        while written < args.flood:
            out.write(block)
            written += len(block)
        out.flush()
        print(f"flooded {written}", flush=True)
    if args.listen_tcp:
        server = socket.create_server(("127.0.0.1", args.listen_tcp))
        threading.Thread(
            target=lambda: [server.accept()[0].close() for _ in iter(int, 1)], daemon=True
        ).start()
    if args.serve_socket:
        sockets = listen_sockets()
        sock = next(iter(sockets.values())) if sockets else None
        path = os.environ.get("SENTINEL_AGENT_SOCKET")
        if sock is None and path:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(path)
            sock.listen()
        assert sock is not None

        def serve() -> None:
            while True:
                conn, _ = sock.accept()
                data = conn.recv(1024)
                conn.sendall(f"{os.getpid()}:".encode() + data)
                conn.close()

        threading.Thread(target=serve, daemon=True).start()
        print(f"serving inherited={bool(sockets)}", flush=True)
    if args.watchdog:
        interval = watchdog_interval() or 1.0

        def ping() -> None:
            while True:
                notify("WATCHDOG=1")
                time.sleep(interval / 4)

        threading.Thread(target=ping, daemon=True).start()
    if args.ready_after:
        time.sleep(args.ready_after)
    if not args.no_ready:
        notify("READY=1", f"STATUS=ready as {args.name}")
    print(f"{args.name} up pid {os.getpid()}", flush=True)
    if args.exit_after is not None:
        time.sleep(args.exit_after)
        print(f"{args.name} exiting {args.exit_code}", flush=True)
        return args.exit_code
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
