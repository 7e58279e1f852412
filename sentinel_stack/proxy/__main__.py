"""`python -m sentinel_stack.proxy [--config FILE]`: the reverse proxy as its own program.

With ``[proxy] workers = N > 1`` this process becomes the parent of N workers (`parent`);
the ``--worker`` options are how it starts them, not for people.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path

import trio

from sentinel_stack.config.loader import ConfigError

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM (a drain) when the parent dies; it may already have, before this call."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        sys.exit("sentinel-proxy worker: the parent is already gone")


def read_fd(fd: int) -> str:
    with open(fd, encoding="utf-8", closefd=True) as file:
        file.seek(0)  # a memfd the parent wrote: its offset is shared and at the end
        return file.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentinel-proxy", description=__doc__)
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ["SENTINEL_CONFIG"]) if "SENTINEL_CONFIG" in os.environ else None,
        help="the stack config (default: $SENTINEL_CONFIG)",
    )
    parser.add_argument("--log-level", default="WARNING")
    worker = parser.add_argument_group("worker (started by the proxy itself)")
    worker.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    worker.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)
    worker.add_argument("--channel-fd", type=int, default=-1, help=argparse.SUPPRESS)
    worker.add_argument("--config-fd", type=int, default=-1, help=argparse.SUPPRESS)
    worker.add_argument("--listen-fd", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    prefix = f"worker {args.worker} " if args.worker else ""
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format=f"%(levelname)s {prefix}%(name)s: %(message)s",
    )
    if args.config is None:
        parser.error("no config: pass --config FILE or set SENTINEL_CONFIG")
    from sentinel_stack.proxy.parent import ProxyParent
    from sentinel_stack.proxy.server import ProxyServer, WorkerRole
    from sentinel_stack.proxy.settings import load_settings
    from sentinel_stack.proxy.workers import WorkerStartFailed

    try:
        if args.worker:
            die_with_parent(args.parent_pid)
            fds = [spec.split(":", 1) for spec in args.listen_fd]
            role = WorkerRole(
                number=args.worker,
                channel_fd=args.channel_fd,
                plain_fds=tuple(int(fd) for kind, fd in fds if kind == "plain"),
                secure_fds=tuple(int(fd) for kind, fd in fds if kind == "secure"),
                config_text=read_fd(args.config_fd) if args.config_fd >= 0 else None,
            )
            trio.run(ProxyServer(args.config, role).run)
            return 0
        settings = load_settings(args.config)
        if settings.workers > 1:
            trio.run(ProxyParent(args.config, settings, args.log_level).run)
        else:
            trio.run(ProxyServer(args.config).run)
    except (ConfigError, ValueError) as error:
        print(f"sentinel-proxy: {error}", file=sys.stderr)
        return 2
    except WorkerStartFailed as error:
        print(f"sentinel-proxy: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
