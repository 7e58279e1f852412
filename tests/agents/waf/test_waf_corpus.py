"""The corpora are well-formed, and both engines clear a coarse quality floor on them.

The floors are far below the measured rates (docs/waf.md) and only catch a broken engine or a
broken corpus; the benchmark, not this test, measures the rates.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sentinel_agents.waf.corpus import CorpusRecord, load_corpus
from sentinel_agents.waf.fallback_engine import FallbackEngine
from waf_helpers import CORPUS_DIR


@pytest.fixture(scope="module")
def corpora() -> dict[str, list[CorpusRecord]]:
    return {
        name: load_corpus(CORPUS_DIR / f"{name}.jsonl")
        for name in ("attacks", "benign", "holdout-attacks", "holdout-benign")
    }


def test_corpora_shape(corpora: dict[str, list[CorpusRecord]]) -> None:
    assert len(corpora["attacks"]) >= 300 and len(corpora["benign"]) >= 300
    ids = [r.id for records in corpora.values() for r in records]
    assert len(ids) == len(set(ids))
    for name, records in corpora.items():
        expected = "attack" if "attacks" in name else "benign"
        assert {r.label for r in records} == {expected}
    categories = Counter(r.category for r in corpora["attacks"])
    for category in ("sqli", "xss", "lfi", "rce", "protocol", "scanner"):
        assert categories[category] >= 10, category
    assert any(r.body_base64 for r in corpora["benign"])  # binary uploads are represented


def test_load_errors_name_the_line(tmp_path: Any) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "x", "label": "attack", "category": "c", "method": "GET", "path": "/"}\n{"id": 3}\n'
    )
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        load_corpus(path)


def _rates(
    engine: Any, attacks: list[CorpusRecord], benign: list[CorpusRecord]
) -> tuple[float, float]:
    detected = sum(engine.inspect(r.to_request()).would_block for r in attacks)
    flagged = sum(engine.inspect(r.to_request()).would_block for r in benign)
    return detected / len(attacks), flagged / len(benign)


def test_fallback_quality_floor(corpora: dict[str, list[CorpusRecord]]) -> None:
    from sentinel_agents.waf import WafConfig

    detection, false_positives = _rates(
        FallbackEngine(WafConfig()), corpora["attacks"], corpora["benign"]
    )
    assert detection >= 0.80 and false_positives <= 0.02


def test_modsecurity_quality_floor(
    corpora: dict[str, list[CorpusRecord]], modsec_engine: Any
) -> None:
    detection, false_positives = _rates(
        modsec_engine, corpora["holdout-attacks"], corpora["holdout-benign"]
    )
    assert detection >= 0.85 and false_positives <= 0.02
