"""The sans-IO codec: framing, both encodings, and every way bad bytes are reported."""

from __future__ import annotations

import struct

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import MESSAGES, any_message, non_handshake_message

from sentinel_stack.protocol import (
    MESSAGE_TABLE,
    AgentDecision,
    AgentHello,
    Encoding,
    FrameDecoder,
    FrameTooLarge,
    Hello,
    MalformedPayload,
    Message,
    MessageType,
    Ping,
    ProtocolError,
    RequestHeaders,
    TruncatedFrame,
    UnknownMessageType,
    block,
    encode_message,
    message_type,
)


def encode_stream(messages: list[Message]) -> bytes:
    """Frame ``messages`` as a peer would, switching encoding after an AgentHello."""
    encoding = Encoding.JSON
    out = bytearray()
    for message in messages:
        out += encode_message(message, encoding)
        if isinstance(message, AgentHello):
            encoding = message.encoding
    return bytes(out)


def decode_chunks(
    chunks: list[bytes], *, max_frame: int = 16 * 1024 * 1024
) -> tuple[list[Message], type[ProtocolError] | None]:
    decoder = FrameDecoder(max_frame=max_frame)
    messages: list[Message] = []
    try:
        for chunk in chunks:
            messages += decoder.feed(chunk)
        decoder.eof()
    except ProtocolError as error:
        return messages + error.messages, type(error)
    return messages, None


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def test_every_message_type_has_a_strategy() -> None:
    assert set(MESSAGES) == set(MESSAGE_TABLE.values())


def test_frame_layout_matches_the_spec_example() -> None:
    # docs/agent-protocol.md shows exactly these bytes.
    assert encode_message(Ping(7)) == b'\x00\x00\x00\x0c\x04{"nonce":7}'
    assert message_type(Ping(7)) is MessageType.PING


@pytest.mark.parametrize("encoding", list(Encoding))
@given(data=st.data())
def test_every_message_round_trips(encoding: Encoding, data: st.DataObject) -> None:
    for cls, strategy in MESSAGES.items():
        message = data.draw(strategy, label=cls.__name__)
        decoder = FrameDecoder(encoding)
        assert decoder.feed(encode_message(message, encoding)) == [message]
        assert decoder.buffered == 0


@given(
    head=st.lists(non_handshake_message, max_size=4),
    switch=st.none() | st.sampled_from(Encoding),
    tail=st.lists(non_handshake_message, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=4096), max_size=12),
)
def test_any_split_of_the_stream_decodes_identically(
    head: list[Message], switch: Encoding | None, tail: list[Message], cuts: list[int]
) -> None:
    hello = [] if switch is None else [AgentHello(version=1, name="a", encoding=switch)]
    messages = [*head, *hello, *tail]
    stream = encode_stream(messages)
    assert decode_chunks([stream]) == (messages, None)
    assert decode_chunks(split(stream, cuts)) == (messages, None)
    assert decode_chunks([bytes([b]) for b in stream]) == (messages, None)


@given(
    good=st.lists(any_message, max_size=3),
    garbage=st.binary(max_size=64),
    cuts=st.lists(st.integers(min_value=0, max_value=2048), max_size=8),
)
def test_garbage_yields_only_typed_errors_whatever_the_split(
    good: list[Message], garbage: bytes, cuts: list[int]
) -> None:
    stream = encode_stream(good) + garbage
    # Small limit so random length fields exercise FrameTooLarge instead of waiting for data.
    whole = decode_chunks([stream], max_frame=4096)
    assert decode_chunks(split(stream, cuts), max_frame=4096) == whole
    messages, _error = whole
    assert messages[: len(good)] == good


@given(message=any_message, data=st.data())
def test_a_cut_frame_is_truncated_at_eof(message: Message, data: st.DataObject) -> None:
    frame = encode_message(message)
    cut = data.draw(st.integers(min_value=1, max_value=len(frame) - 1))
    decoder = FrameDecoder()
    assert decoder.feed(frame[:cut]) == []
    with pytest.raises(TruncatedFrame):
        decoder.eof()


def test_oversized_frame_is_refused_from_its_header_alone() -> None:
    decoder = FrameDecoder(max_frame=1024)
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(struct.pack(">I", 1025))
    assert (caught.value.length, caught.value.limit) == (1025, 1024)


def test_sender_refuses_to_exceed_the_receivers_limit() -> None:
    big = block(body="x" * 2000)
    with pytest.raises(FrameTooLarge):
        encode_message(AgentDecision(1, big), max_frame=1024)


def test_unknown_type_and_zero_length_are_typed_errors() -> None:
    with pytest.raises(UnknownMessageType) as caught:
        FrameDecoder().feed(b"\x00\x00\x00\x03\x7f{}")
    assert caught.value.code == 0x7F
    with pytest.raises(MalformedPayload):
        FrameDecoder().feed(b"\x00\x00\x00\x00")


def test_payload_that_does_not_match_its_type_is_malformed() -> None:
    wrong = msgspec.json.encode({"correlation_id": "seven"})
    with pytest.raises(MalformedPayload, match="REQUEST_HEADERS"):
        FrameDecoder().feed(struct.pack(">IB", len(wrong) + 1, 0x10) + wrong)


def test_messages_before_an_error_are_handed_over_once() -> None:
    ping = encode_message(Ping(1))
    decoder = FrameDecoder()
    with pytest.raises(UnknownMessageType) as caught:
        decoder.feed(ping + b"\x00\x00\x00\x01\xee")
    assert caught.value.messages == [Ping(1)]
    with pytest.raises(UnknownMessageType) as again:
        decoder.feed(ping)
    assert again.value.messages == []


def test_handshake_frames_stay_json_and_switch_the_decoder() -> None:
    answer = AgentHello(version=1, name="waf", encoding=Encoding.MSGPACK)
    request = RequestHeaders(correlation_id=3, request_id="r", method="GET", path="/")
    frames = encode_message(answer, Encoding.MSGPACK) + encode_message(request, Encoding.MSGPACK)
    assert frames[5:6] == b"{"  # JSON even when asked for MessagePack
    decoder = FrameDecoder()
    assert decoder.feed(frames) == [answer, request]
    assert decoder.encoding is Encoding.MSGPACK
    assert encode_message(Hello(), Encoding.MSGPACK)[5:6] == b"{"
