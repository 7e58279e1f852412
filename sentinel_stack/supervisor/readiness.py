"""Readiness checks other than sd_notify: a socket that accepts, an HTTP 200, a command."""

from __future__ import annotations

import socket
import subprocess
from urllib.parse import urlsplit

import trio

from sentinel_stack.supervisor.spec import ReadinessCheck


def split_host_port(address: str, default_port: int = 80) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep:
        return address, default_port
    return host.strip("[]") or "127.0.0.1", int(port)


async def probe_once(check: ReadinessCheck) -> bool:
    """One attempt; False on any failure (the caller retries until its deadline)."""
    try:
        if check.kind == "tcp":
            host, port = split_host_port(str(check.target))
            stream = await trio.open_tcp_stream(host, port)
            await stream.aclose()
            return True
        if check.kind == "unix":
            sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with sock:
                await sock.connect(str(check.target))
            return True
        if check.kind == "http":
            return await _http_ok(str(check.target))
        if check.kind == "exec":
            result = await trio.run_process(
                list(check.target),
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            return result.returncode == 0
    except (OSError, ValueError, trio.BrokenResourceError):
        return False
    return False


async def _http_ok(url: str) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        head = b""
        while b"\r\n" not in head and len(head) < 4096:
            chunk = await stream.receive_some(4096)
            if not chunk:
                break
            head += chunk
    status = head.split(b"\r\n", 1)[0].split()
    return len(status) >= 2 and status[1].startswith(b"2")


async def wait_ready(check: ReadinessCheck) -> None:
    """Return once the check passes; the caller bounds it with a cancel scope."""
    # Polling is the only way to learn that another program's socket accepts.
    while not await probe_once(check):  # noqa: ASYNC110
        await trio.sleep(check.interval)
