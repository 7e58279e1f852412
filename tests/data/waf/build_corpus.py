"""Rebuild the WAF corpora: ``python tests/data/waf/build_corpus.py``.

Writes ``attacks.jsonl`` and ``benign.jsonl`` beside this file, one request per line, in the
format ``sentinel_agents.waf.corpus`` reads. Deterministic: the same sources give the same
files.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus_attacks import build_attacks  # noqa: E402
from corpus_benign import build_benign  # noqa: E402
from corpus_holdout import build_holdout  # noqa: E402


def write(name: str, records: list[dict[str, object]]) -> None:
    ids = [r["id"] for r in records]
    duplicates = [i for i, c in Counter(ids).items() if c > 1]
    if duplicates:
        raise SystemExit(f"duplicate ids in {name}: {duplicates[:5]}")
    with (HERE / name).open("w", encoding="utf-8") as out:
        for rec in records:
            out.write(json.dumps(rec, ensure_ascii=False, sort_keys=False) + "\n")
    categories = Counter(str(r["category"]) for r in records)
    print(
        f"{name}: {len(records)} requests; "
        + ", ".join(f"{c}={n}" for c, n in sorted(categories.items()))
    )


if __name__ == "__main__":
    write("attacks.jsonl", build_attacks())
    write("benign.jsonl", build_benign())
    holdout_attacks, holdout_benign = build_holdout()
    write("holdout-attacks.jsonl", holdout_attacks)
    write("holdout-benign.jsonl", holdout_benign)
