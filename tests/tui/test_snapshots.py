"""Snapshots (pytest-textual-snapshot) of every panel at 80x24 and 160x48, on a fake feed.

Update after an intended change: `pytest tests/tui/test_snapshots.py --snapshot-update`,
then look at the report it writes before committing the new SVGs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

pytest.importorskip("pytest_textual_snapshot")

from sentinel_stack.tui.app import SentinelApp
from tests.tui.fakes import FakeClock, FakeCommands, FakeFeed

SIZES = [(80, 24), (160, 48)]
PANELS = {"processes": "1", "traffic": "2", "alerts": "3", "probe": "4"}


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    """Alert times are shown in local time: pin it."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def make_app() -> tuple[SentinelApp, FakeFeed]:
    feed = FakeFeed()
    return SentinelApp(feed, FakeCommands(feed), mode="up", clock=FakeClock()), feed


def settle(app: SentinelApp, feed: FakeFeed, *keys: str) -> Any:
    async def run_before(pilot: Any) -> None:
        await asyncio.wait_for(feed.started.wait(), 10)
        app.tick(force=True)
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
        app.tick(force=True)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("panel", list(PANELS))
def test_panel(snap_compare, panel, size):
    app, feed = make_app()
    assert snap_compare(app, terminal_size=size, run_before=settle(app, feed, PANELS[panel]))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_alert_detail(snap_compare, size):
    app, feed = make_app()
    assert snap_compare(app, terminal_size=size, run_before=settle(app, feed, "3", "enter"))


def test_help(snap_compare):
    app, feed = make_app()
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle(app, feed, "question_mark"))
