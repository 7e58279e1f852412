"""Frame bytes over a Trio stream, with a fast path for socket streams.

A round trip through Trio's generic stream API costs several scheduler passes per direction
(a checkpoint after every successful ``send``/``recv``, another for the send lock), and on a
Unix socket those passes, not encoding, dominate the agent round trip. When the stream is a
`trio.SocketStream`, this transport first tries the non-blocking system call directly and
only falls back to the scheduler when the kernel says "would block". Measured with
scripts/bench-agent-rtt; see the figures in docs/writing-agents.md.

Fairness is kept: a receive that finds data without waiting still yields once, so a peer
that floods us cannot starve the other tasks.
"""

from __future__ import annotations

import os

import trio

__all__ = ["FrameTransport"]

_RECEIVE_SIZE = 64 * 1024


class FrameTransport:
    """Sends whole frames atomically (never interleaved) and receives bytes."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._fd = stream.socket.fileno() if isinstance(stream, trio.SocketStream) else None
        self._send_lock = trio.Lock()

    async def send(self, frame: bytes) -> None:
        """Send one frame; raises `trio.BrokenResourceError` or `trio.ClosedResourceError`.

        A send cancelled part-way leaves a partial frame on the wire: the caller must then
        treat the connection as lost.
        """
        if self._fd is not None and not self._send_lock.locked():
            try:
                written = os.write(self._fd, frame)
            except BlockingIOError:
                written = 0
            except OSError as error:
                raise trio.BrokenResourceError(str(error)) from error
            if written == len(frame):
                return
            frame = frame[written:]
            # Taken without yielding, so nobody can slip a frame between our two halves.
            self._send_lock.acquire_nowait()
            try:
                await self.stream.send_all(frame)
            finally:
                self._send_lock.release()
            return
        async with self._send_lock:
            await self.stream.send_all(frame)

    async def receive(self) -> bytes | bytearray:
        """Some bytes, or ``b""`` at the end of the stream."""
        if self._fd is None:
            return await self.stream.receive_some(_RECEIVE_SIZE)
        try:
            data = os.read(self._fd, _RECEIVE_SIZE)
        except BlockingIOError:
            pass
        except OSError as error:
            raise trio.BrokenResourceError(str(error)) from error
        else:
            await trio.lowlevel.checkpoint()
            return data
        while True:
            await trio.lowlevel.wait_readable(self._fd)
            try:
                return os.read(self._fd, _RECEIVE_SIZE)
            except BlockingIOError:
                continue
            except OSError as error:
                raise trio.BrokenResourceError(str(error)) from error
