"""Socket activation (sd_listen_fds): take the listening sockets the supervisor bound for us."""

from __future__ import annotations

import os
import socket

__all__ = ["SD_LISTEN_FDS_START", "listen_sockets"]

SD_LISTEN_FDS_START = 3


def listen_sockets(
    environ: dict[str, str] | None = None, *, unset: bool = True
) -> dict[str, socket.socket]:
    """Return the inherited listening sockets by name (`LISTEN_FDNAMES`, else ``fd3``, ...).

    Empty when the environment does not hand us any (or hands them to another pid, as
    happens when the variables leak into a grandchild). With ``unset`` the variables are
    removed, as sd_listen_fds(3) recommends, so our own children do not inherit them.
    """
    env = os.environ if environ is None else environ
    try:
        pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return {}
    if pid != os.getpid() or count <= 0:
        return {}
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    result: dict[str, socket.socket] = {}
    for index in range(count):
        fd = SD_LISTEN_FDS_START + index
        os.set_inheritable(fd, False)
        name = names[index] if index < len(names) and names[index] else f"fd{fd}"
        result[name] = socket.socket(fileno=fd)
    if unset:
        for key in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            env.pop(key, None)
    return result
