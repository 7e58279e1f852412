"""Does code leave objects of a type for the cyclic garbage collector? (It should not, on the
request path: docs/BENCHMARKS.md, "Added latency".)"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def nothing_left_for_gc(type_name: str) -> Iterator[None]:
    """Assert the body leaves no more live ``type_name`` objects than it found, with the
    cycle collector off: what only it could free would still be there."""
    gc.collect()
    gc.disable()
    try:
        before = _live(type_name)
        yield
        assert _live(type_name) == before, f"{type_name} objects left in reference cycles"
    finally:
        gc.enable()


def _live(type_name: str) -> int:
    return sum(1 for o in gc.get_objects() if type(o).__name__ == type_name)
