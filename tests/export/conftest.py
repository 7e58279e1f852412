"""`--update-golden` (or SENTINEL_UPDATE_GOLDEN=1) rewrites tests/export/golden/ instead of
comparing with it; see test_export_golden.py."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the export golden files from the current exporters",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden")) or (
        os.environ.get("SENTINEL_UPDATE_GOLDEN") == "1"
    )
