"""Errors the proxy side handles when it talks to an agent; each maps to fail-open or closed."""

from __future__ import annotations

__all__ = [
    "AgentDraining",
    "AgentError",
    "AgentEventError",
    "AgentUnavailable",
    "ConnectionLost",
]


class AgentError(Exception):
    """Base of the errors a caller of `AgentConnection` handles (fail open or closed)."""


class AgentUnavailable(AgentError):
    """Nothing accepts connections at the agent's socket."""


class ConnectionLost(AgentError):
    """The connection closed or broke before the answer came; ``__cause__`` says why."""


class AgentDraining(AgentError):
    """The agent said `GoAway`: send new requests over a new connection."""


class AgentEventError(AgentError):
    """The agent answered `EventError` instead of a decision (or the proxy cancelled)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
