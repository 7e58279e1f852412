"""Structured logs on stderr: one JSON object per line.

The launcher drains each child's stderr into ``logs/<name>.log``; JSON lines keep every field
(``correlation_id``, ``revision``, ``error``...) machine-readable there and in the TUI, while
``msg`` stays a sentence a person can read.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, ClassVar

__all__ = ["JsonLineFormatter", "configure_logging"]


class JsonLineFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "agent", "logger", "msg", ...extra fields}``."""

    _STANDARD: ClassVar[frozenset[str]] = frozenset(
        vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
    )

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "agent": self.agent,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                fields[key] = value
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str)


def configure_logging(level: str, agent: str) -> None:
    """Send every log record of the process to stderr as JSON lines, at ``level`` and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter(agent))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
