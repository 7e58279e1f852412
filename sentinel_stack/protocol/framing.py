"""Sans-IO framing: bytes in, typed messages out; messages in, bytes out.

A frame is ``u32 big-endian length | u8 message type | payload``, the length counting the type
byte and the payload. Handshake frames (`Hello`, `AgentHello`) are always JSON, so both sides
can read them before an encoding is agreed; every frame after the `AgentHello` uses the
encoding it names, in both directions. Nothing here touches a socket or a clock.
"""

from __future__ import annotations

import struct
from typing import Any, NoReturn

import msgspec

from sentinel_stack.protocol.errors import (
    FrameTooLarge,
    MalformedPayload,
    ProtocolError,
    TruncatedFrame,
    UnknownMessageType,
)
from sentinel_stack.protocol.messages import (
    MAX_FRAME,
    MESSAGE_TABLE,
    AgentHello,
    Encoding,
    Message,
    MessageType,
    message_type,
)

__all__ = ["HEADER_SIZE", "FrameDecoder", "encode_message"]

_LENGTH = struct.Struct(">I")
_HEADER = struct.Struct(">IB")
HEADER_SIZE = _HEADER.size
_HANDSHAKE = frozenset({MessageType.HELLO, MessageType.AGENT_HELLO})

_JSON_ENCODER = msgspec.json.Encoder()
_MSGPACK_ENCODER = msgspec.msgpack.Encoder()
_Decoder = msgspec.json.Decoder[Any] | msgspec.msgpack.Decoder[Any]
_DECODERS: dict[tuple[int, Encoding], _Decoder] = {}
for _code, _cls in MESSAGE_TABLE.items():
    _DECODERS[_code, Encoding.JSON] = msgspec.json.Decoder(_cls)
    _DECODERS[_code, Encoding.MSGPACK] = msgspec.msgpack.Decoder(_cls)
    if _code in _HANDSHAKE:
        # Handshake frames are JSON whatever encoding is in force.
        _DECODERS[_code, Encoding.MSGPACK] = _DECODERS[_code, Encoding.JSON]


def encode_message(
    message: Message, encoding: Encoding = Encoding.JSON, *, max_frame: int = MAX_FRAME
) -> bytes:
    """Frame ``message`` in ``encoding`` (handshake messages are always JSON).

    ``max_frame`` is the *receiver's* limit; `FrameTooLarge` here means the caller must split
    what it sends (body chunks) rather than let the peer drop the connection.
    """
    code = message_type(message)
    encoder = (
        _MSGPACK_ENCODER
        if encoding is Encoding.MSGPACK and code not in _HANDSHAKE
        else _JSON_ENCODER
    )
    buffer = bytearray(HEADER_SIZE)
    encoder.encode_into(message, buffer, HEADER_SIZE)
    length = len(buffer) - _LENGTH.size
    if length > max_frame:
        raise FrameTooLarge(length, max_frame)
    _HEADER.pack_into(buffer, 0, length, code)
    return bytes(buffer)


class FrameDecoder:
    """Turns a byte stream, split anywhere, into messages.

    Feed it whatever the socket returned; it keeps the incomplete tail for next time. After a
    `ProtocolError` the decoder is dead (framing can no longer be trusted) and every later call
    raises the same error again, without messages.
    """

    def __init__(self, encoding: Encoding = Encoding.JSON, *, max_frame: int = MAX_FRAME) -> None:
        self.encoding = encoding
        """Encoding of non-handshake frames; switches by itself on receiving an `AgentHello`."""
        self.max_frame = max_frame
        """Largest length field accepted; lower it once the handshake has set our limit."""
        self._buffer = bytearray()
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Message]:
        """Add ``data`` and return every message it completes, in order."""
        if self._error is not None:
            self._raise_dead(self._error)
        buffer = self._buffer
        buffer += data
        messages: list[Message] = []
        end = len(buffer)
        position = 0
        try:
            while end - position >= _LENGTH.size:
                (length,) = _LENGTH.unpack_from(buffer, position)
                if length > self.max_frame:
                    raise FrameTooLarge(length, self.max_frame)
                if length == 0:
                    raise MalformedPayload("frame length 0 leaves no room for the type byte")
                frame_end = position + _LENGTH.size + length
                if frame_end > end:
                    break
                messages.append(self._decode(buffer, position + _LENGTH.size, frame_end))
                position = frame_end
        except ProtocolError as error:
            error.messages = messages
            self._fail(error)
            raise
        del buffer[:position]
        return messages

    def eof(self) -> None:
        """The peer closed its side: raise `TruncatedFrame` if a frame was cut short."""
        if self._error is not None:
            self._raise_dead(self._error)
        if self._buffer:
            error = TruncatedFrame(
                f"stream ended inside a frame ({len(self._buffer)} bytes of it received)"
            )
            self._fail(error)
            raise error

    def _fail(self, error: ProtocolError) -> None:
        self._error = error
        self._buffer.clear()

    def _raise_dead(self, error: ProtocolError) -> NoReturn:
        # The messages were handed over with the first raise; never deliver them twice.
        error.messages = []
        raise error

    def _decode(self, buffer: bytearray, start: int, end: int) -> Message:
        code = buffer[start]
        try:
            decoder = _DECODERS[code, self.encoding]
        except KeyError:
            raise UnknownMessageType(code) from None
        with memoryview(buffer) as view:
            payload = view[start + 1 : end]
            try:
                message: Message = decoder.decode(payload)
            except (msgspec.DecodeError, RecursionError) as error:
                name = MessageType(code).name
                raise MalformedPayload(
                    f"{name} payload is not valid {self._payload_encoding(code)}: {error}"
                ) from error
            finally:
                payload.release()
        if isinstance(message, AgentHello):
            self.encoding = message.encoding
        return message

    def _payload_encoding(self, code: int) -> str:
        return Encoding.JSON if code in _HANDSHAKE else self.encoding
