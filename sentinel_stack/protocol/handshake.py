"""Handshake negotiation as pure functions: the agent's answer and the proxy's check of it.

The proxy opens with `Hello` listing what it can do; the agent answers with `AgentHello`
choosing one version, one encoding and the subsets of events and features it will use. The
proxy then verifies the choice was one it offered. Both frames are JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from sentinel_stack.protocol.errors import HandshakeError
from sentinel_stack.protocol.messages import (
    PROTOCOL_VERSION,
    AgentHello,
    Encoding,
    EventKind,
    Feature,
    Hello,
    Limits,
)

__all__ = ["AgentOffer", "check_agent_hello", "negotiate"]


class AgentOffer(msgspec.Struct, frozen=True):
    """What an agent implementation can do, in its order of preference."""

    name: str
    version: str = ""
    versions: tuple[int, ...] = (PROTOCOL_VERSION,)
    events: tuple[EventKind, ...] = (EventKind.REQUEST_HEADERS,)
    features: tuple[Feature, ...] = tuple(Feature)
    encodings: tuple[Encoding, ...] = (Encoding.MSGPACK, Encoding.JSON)
    limits: Limits = Limits()


def _first_common(preferred: Sequence[str], offered: Sequence[str]) -> str | None:
    return next((item for item in preferred if item in offered), None)


def negotiate(hello: Hello, offer: AgentOffer) -> AgentHello:
    """The agent's answer to ``hello``; `HandshakeError` when the two cannot talk."""
    versions = sorted(set(hello.versions) & set(offer.versions), reverse=True)
    if not versions:
        raise HandshakeError(
            f"no common protocol version: proxy speaks {list(hello.versions)}, "
            f"agent {offer.name!r} speaks {list(offer.versions)}"
        )
    encoding = _first_common(offer.encodings, hello.encodings)
    if encoding is None:
        raise HandshakeError(
            f"no common encoding: proxy offers {list(hello.encodings)}, "
            f"agent {offer.name!r} supports {[str(e) for e in offer.encodings]}"
        )
    return AgentHello(
        version=versions[0],
        name=offer.name,
        agent_version=offer.version,
        events=tuple(e for e in offer.events if e in hello.events),
        features=tuple(f for f in offer.features if f in hello.features),
        encoding=Encoding(encoding),
        limits=offer.limits,
    )


def check_agent_hello(hello: Hello, answer: AgentHello) -> None:
    """Raise `HandshakeError` unless every choice in ``answer`` was offered in ``hello``."""
    problems = []
    if answer.version not in hello.versions:
        problems.append(f"version {answer.version} (offered {list(hello.versions)})")
    if answer.encoding not in hello.encodings:
        problems.append(f"encoding {answer.encoding!s} (offered {list(hello.encodings)})")
    if extra := set(answer.events) - set(hello.events):
        problems.append(f"events {sorted(extra)}")
    if extra := set(answer.features) - set(hello.features):
        problems.append(f"features {sorted(extra)}")
    if problems:
        raise HandshakeError(
            f"agent {answer.name!r} chose what the proxy did not offer: " + "; ".join(problems)
        )
