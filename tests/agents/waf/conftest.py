"""Fixtures for the WAF engine tests: real engines, built once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sentinel_agents.waf import EngineChoice, WafConfig
from sentinel_agents.waf.fallback_engine import FallbackEngine
from waf_helpers import modsecurity_or_skip


@pytest.fixture(scope="session")
def modsec_engine() -> Iterator[object]:
    modsecurity_or_skip()
    from sentinel_agents.waf.modsec_engine import ModSecurityEngine

    engine = ModSecurityEngine(WafConfig(engine=EngineChoice.MODSECURITY))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def fallback_engine() -> FallbackEngine:
    return FallbackEngine(WafConfig(engine=EngineChoice.FALLBACK))
