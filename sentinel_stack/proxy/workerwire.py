"""What the proxy's parent process and its workers say to each other over a socketpair.

With ``[proxy] workers = N > 1`` the proxy process supervises N worker processes; each gets
one end of a Unix socketpair. The wire is JSON lines of the typed messages below. The same
socket is the worker's lifeline: when it reads end-of-file the parent is gone and the
worker drains and exits.

Parent → worker: `Scrape` (send a `Snapshot` answering ``seq``), `Reload` (load the config
text the parent validated, as SIGHUP would), `Drain` (stop accepting, finish in-flight
requests, exit).
Worker → parent: `Ready` once its listeners serve, `Snapshot` (its metrics and status:
answering a scrape, every second unasked, and once more before it exits), `Reloaded`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

import msgspec
import trio

MAX_LINE = 16 * 1024 * 1024


class Sample(msgspec.Struct, frozen=True, array_like=True):
    """One Prometheus sample: ``sentinel_proxy_requests_total{route="a"} 3``."""

    name: str
    labels: dict[str, str]
    value: float


class Family(msgspec.Struct, frozen=True):
    """One Prometheus metric family as `prometheus_client` collects it."""

    name: str
    type: str
    help: str
    samples: list[Sample]


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    worker: int
    pid: int
    listening: list[str]


class Snapshot(msgspec.Struct, frozen=True, tag="snapshot"):
    seq: int  # the `Scrape` answered; 0 when sent unasked
    families: list[Family]
    status: dict[str, Any]


class Reloaded(msgspec.Struct, frozen=True, tag="reloaded"):
    revision: str
    error: str = ""


class Scrape(msgspec.Struct, frozen=True, tag="scrape"):
    seq: int


class Reload(msgspec.Struct, frozen=True, tag="reload"):
    text: str  # the config the parent validated: every worker loads the same one


class Drain(msgspec.Struct, frozen=True, tag="drain"):
    pass


ToParent = Ready | Snapshot | Reloaded
ToWorker = Scrape | Reload | Drain


class WireError(Exception):
    """The other side sent something that is not a message of this wire."""


class LineBuffer:
    """Bytes in, complete lines out (sans-IO); a line over `MAX_LINE` is an error."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self._buffer = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        *lines, rest = self._buffer.split(b"\n")
        if len(rest) > self._max_line:
            raise WireError(f"a line longer than {self._max_line} bytes on the worker channel")
        self._buffer = bytearray(rest)
        return [bytes(line) for line in lines if line]


Incoming = TypeVar("Incoming")


class WireChannel(Generic[Incoming]):
    """One end of the socketpair: `send` a message, iterate over the ones that arrive.

    Iteration ends at end-of-file or when the socket breaks: either way the other side is
    gone, which is all a caller needs to know.
    """

    def __init__(self, stream: trio.SocketStream, incoming: type[Incoming] | Any) -> None:
        self.stream = stream
        self._encoder = msgspec.json.Encoder()
        self._decoder: msgspec.json.Decoder[Incoming] = msgspec.json.Decoder(incoming)
        self._lines = LineBuffer()
        self._send_lock = trio.Lock()

    async def send(self, message: msgspec.Struct) -> None:
        """Raises `trio.BrokenResourceError`/`ClosedResourceError` when the other side is gone."""
        data = self._encoder.encode(message) + b"\n"
        async with self._send_lock:  # two tasks' lines must not interleave
            await self.stream.send_all(data)

    async def messages(self) -> AsyncIterator[Incoming]:
        while True:
            try:
                data = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
            if not data:
                return
            for line in self._lines.feed(data):
                try:
                    yield self._decoder.decode(line)
                except msgspec.DecodeError as error:
                    raise WireError(f"bad message on the worker channel: {error}") from error
