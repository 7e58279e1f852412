"""The event hub: JSON lines in, filtered fan-out, malformed and oversized input counted."""

import contextlib
import socket

import trio

from sentinel_stack.events.hub import MAX_LINE, EventHub


async def send_lines(path, payload: bytes) -> None:
    stream = await trio.open_unix_socket(str(path))
    async with stream:
        await stream.send_all(payload)


async def test_events_reach_matching_subscribers_and_garbage_is_counted(short_dir):
    hub = EventHub(short_dir / "events.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.serve)
        async with hub.subscribe(("kernel.",)) as kernel, hub.subscribe() as everything:
            await send_lines(
                hub.path,
                b'{"kind": "kernel.exec", "time": 1.0, "pid": 7}\n'
                b"not json\n"
                b'{"kind": "access", "time": 2.0}\n'
                b'{"no_kind": 1}\n',
            )
            with trio.fail_after(5):
                first = await kernel.receive()
                seen = [await everything.receive(), await everything.receive()]
        assert b'"pid": 7' in first
        assert [b'"kernel.exec"' in seen[0], b'"access"' in seen[1]] == [True, True]
        stats = hub.snapshot()
        assert stats.received == 2 and stats.malformed == 2
        assert stats.by_kind == {"kernel.exec": 1, "access": 1}
        nursery.cancel_scope.cancel()


async def test_an_endless_line_drops_that_connection_only(short_dir):
    hub = EventHub(short_dir / "events.sock")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.serve)
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(str(hub.path))

        def flood() -> None:
            with contextlib.suppress(OSError):  # the hub hangs up on us, as it should
                sock.sendall(b"x" * (MAX_LINE + 200_000))

        await trio.to_thread.run_sync(flood)
        sock.close()
        with trio.fail_after(5):
            while hub.stats.oversized == 0:
                await trio.sleep(0.01)
        await send_lines(hub.path, b'{"kind": "probe.health"}\n')
        with trio.fail_after(5):
            while hub.stats.received == 0:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
