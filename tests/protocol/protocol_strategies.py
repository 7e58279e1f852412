"""Hypothesis strategies for every agent-protocol message (shared by the protocol tests)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from sentinel_stack.protocol import (
    AgentDecision,
    AgentHello,
    Allow,
    Audit,
    Block,
    Cancel,
    Challenge,
    Configure,
    ConfigureResult,
    Decision,
    Encoding,
    EventError,
    GoAway,
    HeaderOps,
    Health,
    Hello,
    Limits,
    Message,
    NeedsMore,
    Ping,
    Pong,
    Redirect,
    RequestBodyChunk,
    RequestComplete,
    RequestHeaders,
    ResponseBodyChunk,
    ResponseHeaders,
    TlsInfo,
)

text = st.text(max_size=20)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
ids = st.integers(min_value=0, max_value=2**63 - 1)
counts = st.integers(min_value=0, max_value=2**63 - 1)
statuses = st.integers(min_value=100, max_value=599)
headers = st.dictionaries(names, st.lists(text, max_size=3), max_size=4)
header_fields = st.lists(st.tuples(names, text), max_size=3).map(tuple)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
limits = st.builds(
    Limits,
    max_frame=st.integers(min_value=64, max_value=16 * 1024 * 1024),
    max_concurrency=st.integers(min_value=1, max_value=1_000_000),
)

header_ops = st.builds(
    HeaderOps,
    remove=st.lists(names, max_size=3).map(tuple),
    set=header_fields,
    add=header_fields,
)
audits = st.builds(
    Audit,
    tags=st.lists(names, max_size=3).map(tuple),
    rule_ids=st.lists(names, max_size=3).map(tuple),
    reason=text,
    confidence=st.floats(min_value=0.0, max_value=1.0),
)
actions = st.one_of(
    st.just(Allow()),
    st.just(NeedsMore()),
    st.builds(Block, status=statuses, body=text, headers=header_fields),
    st.builds(Redirect, url=text, status=st.integers(min_value=300, max_value=399)),
    st.builds(Challenge, kind=names, status=statuses, body=text, headers=header_fields),
)
decisions = st.builds(
    Decision,
    action=actions,
    request_headers=header_ops,
    response_headers=header_ops,
    audit=st.none() | audits,
)

MESSAGES: dict[type[Message], st.SearchStrategy[Any]] = {
    Hello: st.builds(
        Hello,
        versions=st.lists(st.integers(min_value=0, max_value=255), max_size=3).map(tuple),
        name=text,
        version=text,
        events=st.lists(names, max_size=5).map(tuple),
        features=st.lists(names, max_size=3).map(tuple),
        encodings=st.lists(names, max_size=3).map(tuple),
        limits=limits,
    ),
    AgentHello: st.builds(
        AgentHello,
        version=st.integers(min_value=0, max_value=255),
        name=text,
        agent_version=text,
        events=st.lists(names, max_size=5).map(tuple),
        features=st.lists(names, max_size=3).map(tuple),
        encoding=st.sampled_from(Encoding),
        limits=limits,
    ),
    GoAway: st.builds(GoAway, reason=text),
    Ping: st.builds(Ping, nonce=counts),
    Pong: st.builds(Pong, nonce=counts),
    RequestHeaders: st.builds(
        RequestHeaders,
        correlation_id=ids,
        request_id=text,
        method=names,
        path=text,
        query=text,
        headers=headers,
        client_ip=text,
        client_port=st.integers(min_value=0, max_value=65535),
        route_id=text,
        upstream_id=text,
        protocol=text,
        tls=st.none() | st.builds(TlsInfo, version=text, cipher=text, sni=text),
    ),
    RequestBodyChunk: st.builds(
        RequestBodyChunk,
        correlation_id=ids,
        data=st.binary(max_size=64),
        offset=counts,
        last=st.booleans(),
    ),
    ResponseHeaders: st.builds(
        ResponseHeaders, correlation_id=ids, status=statuses, headers=headers
    ),
    ResponseBodyChunk: st.builds(
        ResponseBodyChunk,
        correlation_id=ids,
        data=st.binary(max_size=64),
        offset=counts,
        last=st.booleans(),
    ),
    RequestComplete: st.builds(
        RequestComplete,
        correlation_id=ids,
        status=st.integers(min_value=0, max_value=599),
        duration_us=counts,
        request_bytes=counts,
        response_bytes=counts,
        decided_by=text,
        error=text,
    ),
    Cancel: st.builds(Cancel, correlation_id=ids, reason=text),
    Configure: st.builds(
        Configure, revision=counts, config=st.dictionaries(text, json_values, max_size=4)
    ),
    ConfigureResult: st.builds(ConfigureResult, revision=counts, ok=st.booleans(), error=text),
    Health: st.builds(
        Health,
        status=st.sampled_from(["ok", "degraded", "failing"]),
        detail=text,
        in_flight=counts,
        served=counts,
        errors=counts,
        config_revision=counts,
    ),
    AgentDecision: st.builds(AgentDecision, correlation_id=ids, decision=decisions),
    EventError: st.builds(EventError, correlation_id=ids, code=names, message=text),
}

any_message: st.SearchStrategy[Message] = st.one_of(*MESSAGES.values())
# Messages that may follow an AgentHello without changing the decoder's encoding.
non_handshake_message: st.SearchStrategy[Message] = st.one_of(
    *(s for cls, s in MESSAGES.items() if cls not in (Hello, AgentHello))
)
