"""sd_notify client: tell the supervisor (ours or systemd) about readiness and health.

Without `NOTIFY_SOCKET` in the environment every call is a no-op, so a child run by hand
behaves the same minus the notifications.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "watchdog_interval"]


def _socket_address(raw: str) -> str:
    # systemd allows abstract sockets written with a leading "@".
    return "\0" + raw[1:] if raw.startswith("@") else raw


def notify(*fields: str, environ: dict[str, str] | None = None) -> bool:
    """Send `KEY=VALUE` fields (e.g. ``"READY=1"``, ``"STATUS=serving"``) in one datagram.

    Returns False when there is no supervisor to tell. Errors sending are swallowed on
    purpose: a lost notification must never take the child down.
    """
    env = os.environ if environ is None else environ
    path = env.get("NOTIFY_SOCKET")
    if not path or not fields:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), _socket_address(path))
    except OSError:
        return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds within which the supervisor expects ``WATCHDOG=1``, or None when not asked.

    Callers should ping at half this interval, as sd_watchdog_enabled(3) advises.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1_000_000 if value > 0 else None
