"""Labelled request samples (JSON lines) for measuring WAF engines.

The corpora live in ``tests/data/waf``; the benchmark and the tests read them through this
module so both agree on the format. One line is one request, with headers as ``[name, value]``
pairs in arrival order and the body as UTF-8 text (``body``) or base64 (``body_base64``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Literal

import msgspec

from sentinel_agents.waf.model import HttpRequest


class CorpusRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One labelled request as stored on disk."""

    id: str
    label: Literal["attack", "benign"]
    category: str
    note: str = ""
    method: str
    path: str
    query: str = ""
    http_version: str = "1.1"
    headers: list[tuple[str, str]] = msgspec.field(default_factory=list)
    body: str = ""
    body_base64: str = ""
    client_ip: str = "198.51.100.10"
    route: str | None = None

    def to_request(self) -> HttpRequest:
        """The request an engine inspects."""
        headers: dict[str, list[str]] = {}
        for name, value in self.headers:
            headers.setdefault(name, []).append(value)
        body = base64.b64decode(self.body_base64) if self.body_base64 else self.body.encode()
        return HttpRequest(
            method=self.method,
            path=self.path,
            query=self.query,
            http_version=self.http_version,
            headers=headers,
            body=body,
            client_ip=self.client_ip,
            client_port=40000 + (hash(self.id) % 20000),
            server_ip="127.0.0.1",
            server_port=443,
            route=self.route,
        )


_decoder = msgspec.json.Decoder(CorpusRecord)


def load_corpus(path: Path) -> list[CorpusRecord]:
    """Every record of a JSON-lines corpus; a bad line names its file and line number."""
    records: list[CorpusRecord] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(_decoder.decode(line))
            except msgspec.ValidationError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
    return records
