"""Shared test helpers: short run dirs (Unix socket paths are limited to 107 bytes)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ss-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    """Keep what stacks write outside their run dir (audit keys, audit logs of the embedded
    config, baselines) out of the user's home: one throwaway home-like tree per session,
    inherited by every launcher the tests start."""
    home = Path(tempfile.mkdtemp(prefix="ss-xdg-", dir="/tmp"))
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        os.environ[name] = str(home / name.lower())
