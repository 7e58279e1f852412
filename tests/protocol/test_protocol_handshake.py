"""Handshake negotiation and the proxy's check of the agent's answer."""

from __future__ import annotations

import pytest

from sentinel_stack.protocol import (
    AgentHello,
    AgentOffer,
    Encoding,
    EventKind,
    Feature,
    HandshakeError,
    Hello,
    Limits,
    check_agent_hello,
    negotiate,
)

OFFER = AgentOffer(
    name="waf",
    version="2.1",
    versions=(1, 2),
    events=(EventKind.REQUEST_HEADERS, EventKind.REQUEST_BODY),
    features=(Feature.HEALTH,),
    encodings=(Encoding.MSGPACK, Encoding.JSON),
    limits=Limits(max_frame=1 << 20, max_concurrency=64),
)


def test_agent_picks_highest_common_version_and_its_preferred_encoding() -> None:
    hello = Hello(versions=(1, 2, 3), encodings=("json", "msgpack", "cbor"))
    answer = negotiate(hello, OFFER)
    assert answer.version == 2
    assert answer.encoding is Encoding.MSGPACK
    assert answer.limits == OFFER.limits
    check_agent_hello(hello, answer)


def test_agent_uses_only_what_the_proxy_offers() -> None:
    hello = Hello(encodings=("json",), events=("request_headers", "websocket"), features=())
    answer = negotiate(hello, OFFER)
    assert answer.encoding is Encoding.JSON
    assert answer.events == (EventKind.REQUEST_HEADERS,)
    assert answer.features == ()


@pytest.mark.parametrize(
    ("hello", "problem"),
    [
        (Hello(versions=(7,)), "no common protocol version"),
        (Hello(encodings=("cbor",)), "no common encoding"),
    ],
)
def test_nothing_in_common_is_a_handshake_error(hello: Hello, problem: str) -> None:
    with pytest.raises(HandshakeError, match=problem):
        negotiate(hello, OFFER)


def test_proxy_rejects_choices_it_did_not_offer() -> None:
    hello = Hello(encodings=("json",), events=("request_headers",))
    answer = AgentHello(
        version=1, name="rogue", encoding=Encoding.MSGPACK, events=("response_body",)
    )
    with pytest.raises(HandshakeError, match=r"encoding msgpack.*events \['response_body'\]"):
        check_agent_hello(hello, answer)
