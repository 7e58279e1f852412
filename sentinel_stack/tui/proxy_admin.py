"""The proxy's admin `/status` (upstream target health, agent links and breakers).

The control API does not carry these, so the TUI asks the proxy itself, on the loopback
admin listener named in the stack's config. Anything unexpected just means "not shown".
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_ADMIN = "127.0.0.1:9090"


def admin_address(config_path: str) -> tuple[str, int] | None:
    """(host, port) of the proxy's admin listener per the config file, if it has a proxy."""
    try:
        with Path(config_path).open("rb") as f:
            config = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return None
    proxy = config.get("proxy")
    if not isinstance(proxy, dict) or proxy.get("enabled") is False:
        return None
    address = proxy.get("admin", DEFAULT_ADMIN)
    if not isinstance(address, str) or "${" in address:
        return None
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


ADMIN_TIMEOUT = 1.0


async def fetch_status(address: tuple[str, int]) -> dict[str, Any] | None:
    """GET /status, or None when the proxy does not answer well within `ADMIN_TIMEOUT`."""
    host, port = address
    try:
        async with asyncio.timeout(ADMIN_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                request = (
                    f"GET /status HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
                )
                writer.write(request.encode())
                await writer.drain()
                response = await reader.read(-1)
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return None
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return None
    try:
        status = json.loads(body)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None
