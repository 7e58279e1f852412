"""Typed failures of the agent protocol.

Every way a peer can send us bad bytes maps to one `ProtocolError` subclass, so the I/O
layers can catch one type, log what the peer did wrong, and close the connection. The codec
never raises anything else for bad input and never waits for bytes that cannot complete a
frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentinel_stack.protocol.messages import Message

__all__ = [
    "FrameTooLarge",
    "HandshakeError",
    "MalformedPayload",
    "ProtocolError",
    "TruncatedFrame",
    "UnexpectedMessage",
    "UnknownMessageType",
]


class ProtocolError(Exception):
    """The peer broke the agent protocol; the connection cannot continue.

    ``messages`` holds the well-formed messages decoded in the same `FrameDecoder.feed` call
    before the bad frame, so a caller loses nothing the peer sent correctly (for instance a
    decision that arrived just before garbage).
    """

    def __init__(self, message: str, *, messages: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.messages: list[Message] = list(messages)


class FrameTooLarge(ProtocolError):
    """A frame's declared length exceeds the receiver's (or the sender's peer's) limit."""

    def __init__(self, length: int, limit: int, *, messages: Sequence[Message] = ()) -> None:
        super().__init__(
            f"frame of {length} bytes exceeds the limit of {limit} bytes; "
            "split bodies into smaller chunks or raise max_frame in the handshake",
            messages=messages,
        )
        self.length = length
        self.limit = limit


class UnknownMessageType(ProtocolError):
    """A frame carries a message type byte this protocol version does not define."""

    def __init__(self, code: int, *, messages: Sequence[Message] = ()) -> None:
        super().__init__(
            f"unknown message type 0x{code:02x}; see the message table in docs/agent-protocol.md",
            messages=messages,
        )
        self.code = code


class MalformedPayload(ProtocolError):
    """A frame is complete but its payload does not decode to its message type."""


class TruncatedFrame(ProtocolError):
    """The stream ended in the middle of a frame."""


class HandshakeError(ProtocolError):
    """The two sides share no protocol version or encoding, or broke the handshake order."""


class UnexpectedMessage(ProtocolError):
    """A well-formed message arrived that the peer's role or the connection's state forbids."""
