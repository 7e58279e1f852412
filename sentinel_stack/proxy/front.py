"""The proxy's ASGI application: one request from client to upstream and back.

limits → route → agent pipeline → upstream (streamed both ways) → response header ops →
access record. Everything the proxy decides for itself (limits, routing, failure modes)
comes from the pure cores; this module only moves bytes and records what happened.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import trio

from sentinel_stack.asgi import Receive, Scope, Send, serve_lifespan
from sentinel_stack.protocol import (
    Block,
    Challenge,
    HeaderOps,
    Redirect,
    RequestBodyChunk,
    RequestComplete,
    RequestHeaders,
    TlsInfo,
)
from sentinel_stack.proxy.limits import (
    BodyFraming,
    ForwardingPolicy,
    Rejection,
    RequestLimits,
    check_body_size,
    check_framing,
    check_head,
    prepare_upstream_headers,
    strip_hop_by_hop,
)
from sentinel_stack.proxy.metrics import ProxyMetrics
from sentinel_stack.proxy.pipeline import Pipeline, PipelineResult
from sentinel_stack.proxy.routing import PathRejection, Route, RouteTable, normalize_path
from sentinel_stack.proxy.settings import ProxySettings
from sentinel_stack.proxy.telemetry import AccessLog, RequestRecord
from sentinel_stack.proxy.trailers import client_takes_trailers, plan_trailers, trailer_block
from sentinel_stack.proxy.upstream_pool import UpstreamError, UpstreamResponse
from sentinel_stack.proxy.upstreams import NoTargetAvailable, UpstreamGroup


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


@dataclass
class ProxyState:
    """Everything a request needs; replaced whole on reload (requests in flight keep theirs)."""

    settings: ProxySettings
    routes: RouteTable
    groups: dict[str, UpstreamGroup]
    pipeline: Pipeline
    forwarding: ForwardingPolicy
    limits: RequestLimits


def apply_header_ops(headers: list[tuple[str, str]], ops: HeaderOps) -> list[tuple[str, str]]:
    """remove → set → add, names compared case-insensitively."""
    if not ops:
        return headers
    gone = {name.lower() for name in ops.remove} | {name.lower() for name, _ in ops.set}
    result = [(n, v) for n, v in headers if n.lower() not in gone]
    result.extend(ops.set)
    result.extend(ops.add)
    return result


def _text_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]


def _raw_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def _agent_headers(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


class ProxyApp:
    def __init__(
        self, state: ProxyState, metrics: ProxyMetrics, access: AccessLog, worker: int = 0
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.access = access
        self.worker = worker  # 1..N under a parent with workers, 0 alone
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        elif scope["type"] == "websocket":
            from sentinel_stack.proxy.websocket import proxy_websocket

            await proxy_websocket(self, scope, receive, send)
        elif scope["type"] == "lifespan":
            await serve_lifespan(receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        started = trio.current_time()
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        headers = _text_headers(scope["headers"])
        client = scope.get("client") or ("", 0)
        record = RequestRecord(method, raw_path.decode("latin-1"), query.decode("latin-1"), client)
        record.protocol = f"HTTP/{scope.get('http_version', '1.1')}"
        record.host = next((v for n, v in headers if n == "host"), "")
        try:
            await self._handle(
                scope, receive, send, state, method, raw_path, query, headers, record, started
            )
        finally:
            record.latency = trio.current_time() - started
            self._finish(record)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        state: ProxyState,
        method: str,
        raw_path: bytes,
        query: bytes,
        headers: list[tuple[str, str]],
        record: RequestRecord,
        started: float,
    ) -> None:
        target = raw_path + (b"?" + query if query else b"")
        http_version = scope.get("http_version", "1.1")
        rejection = check_head(target.decode("latin-1"), headers, state.limits)
        if rejection is None:
            framing = check_framing(
                headers, max_body=state.settings.limits.max_body, http_version=http_version
            )
            if isinstance(framing, Rejection):
                rejection = framing
        if rejection is not None:
            self.metrics.rejected.labels(str(rejection.reason)).inc()
            record.error = f"{rejection.reason}"
            await self._reply(send, record, rejection.status, f"{rejection.reason}\n")
            return
        assert isinstance(framing, BodyFraming)
        path = normalize_path(raw_path.decode("latin-1"))
        if isinstance(path, PathRejection):
            self.metrics.rejected.labels("path").inc()
            record.error = path.reason
            await self._reply(send, record, path.status, f"{path.reason}\n")
            return
        peer = client_ip = record.client[0] or None
        prepared = prepare_upstream_headers(
            headers,
            peer=peer,
            scheme=scope.get("scheme", "http"),
            host=record.host,
            policy=state.forwarding,
            random_bytes=os.urandom,
            framing=framing,
        )
        record.request_id = prepared.request_id
        route = state.routes.match(record.host, path, method, headers)
        if route is None:
            record.error = "no route"
            await self._reply(send, record, 404, "no route for this request\n")
            return
        record.route, record.upstream = route.id, route.upstream
        client_ip = prepared.client_address or client_ip
        record.client_ip = client_ip or record.client[0]
        upstream_headers = list(prepared.headers)
        agents = route.agents if route.agents is not None else state.settings.default_agents
        max_body = min(route.max_body, state.settings.limits.max_body)
        body_iter = _request_body(receive, max_body, record)
        buffered: bytes | None = None
        result: PipelineResult | None = None
        response_ops = HeaderOps()
        cid = next(self._ids)
        if agents:
            event = RequestHeaders(
                correlation_id=cid,
                request_id=prepared.request_id,
                method=method,
                path=path,
                query=query.decode("latin-1"),
                headers=_agent_headers(headers),
                client_ip=client_ip or "",
                client_port=record.client[1],
                route_id=route.id,
                upstream_id=route.upstream,
                protocol=record.protocol,
                tls=TlsInfo() if scope.get("scheme") == "https" else None,
            )
            result = await state.pipeline.consult(agents, event, route.failure_mode)
            if result.merged.pending and route.inspect_body and framing.kind != "none":
                try:
                    buffered = await _read_all(body_iter)
                except BodyTooLarge:
                    await self._reply(send, record, 413, "request body too large\n")
                    return
                result = await self._inspect_body(state, route, result, cid, buffered)
            record.note_agents(result)
            response_ops = result.merged.response_headers
            if result.merged.is_terminal:
                await self._answer_for_agent(send, record, result)
                await state.pipeline.complete(result, self._complete(cid, record))
                return
            upstream_headers = apply_header_ops(upstream_headers, result.merged.request_headers)
        group = state.groups.get(route.upstream)
        if group is None:
            await self._reply(send, record, 502, "upstream not configured\n")
            return
        body: Any = (
            buffered if buffered is not None else (None if framing.kind == "none" else body_iter)
        )
        deadline = started + state.settings.limits.request_timeout
        try:
            with trio.fail_after(state.settings.limits.request_timeout):
                async with group.send(
                    method,
                    target,
                    _raw_headers(upstream_headers),
                    body,
                    body_buffered=buffered is not None or body is None,
                    deadline=deadline,
                ) as sent:
                    record.target = sent.target.authority.decode()
                    self.metrics.upstream_latency.labels(route.upstream).observe(
                        trio.current_time() - started
                    )
                    trailers = client_takes_trailers(scope)
                    await self._relay(send, record, sent.response, response_ops, trailers)
        except NoTargetAvailable as error:
            record.error = str(error)
            await self._reply_if_possible(send, record, 503, "no upstream available\n")
        except BodyTooLarge:
            record.error = "request body too large"
            await self._reply_if_possible(send, record, 413, "request body too large\n")
        except UpstreamError as error:
            record.error = str(error)
            timeout = "Timeout" in type(error).__name__
            await self._reply_if_possible(
                send,
                record,
                504 if timeout else 502,
                "upstream timed out\n" if timeout else "bad gateway\n",
            )
        except trio.TooSlowError:
            record.error = "request timeout"
            await self._reply_if_possible(send, record, 504, "request timed out\n")
        except ClientGone:
            record.error = "client went away"
        finally:
            if result is not None:
                await state.pipeline.complete(result, self._complete(cid, record))

    async def _inspect_body(
        self, state: ProxyState, route: Route, result: PipelineResult, cid: int, body: bytes
    ) -> PipelineResult:
        """Give the body to the agents that asked for it (one chunk, marked last)."""
        chunk = RequestBodyChunk(correlation_id=cid, data=body, offset=0, last=True)
        again = await state.pipeline.consult(result.merged.pending, chunk, route.failure_mode)
        decided = {c.agent: c for c in again.consultations}
        merged_pairs = [c for c in result.consultations if c.agent not in decided]
        merged_pairs += list(again.consultations)
        from sentinel_stack.protocol import merge_decisions

        decisions = [(c.agent, c.decision) for c in merged_pairs if c.decision is not None]
        order = {name: i for i, name in enumerate(c.agent for c in result.consultations)}
        decisions.sort(key=lambda pair: order.get(pair[0], 0))
        return PipelineResult(merge_decisions(decisions), tuple(merged_pairs))

    async def _answer_for_agent(
        self, send: Send, record: RequestRecord, result: PipelineResult
    ) -> None:
        merged = result.merged
        action = merged.action
        record.decided_by = merged.decided_by or ""
        reason = ""
        for audit in merged.audits:
            if audit.agent == merged.decided_by:
                reason = audit.audit.reason or ",".join(audit.audit.rule_ids)
        self.metrics.blocked.labels(
            record.decided_by, reason or type(action).__name__.lower()
        ).inc()
        extra = [("x-sentinel-decided-by", record.decided_by)]
        if isinstance(action, Block):
            await self._reply(
                send,
                record,
                action.status,
                action.body or "blocked\n",
                [*action.headers, *extra],
                merged.response_headers,
            )
        elif isinstance(action, Redirect):
            await self._reply(
                send,
                record,
                action.status,
                "",
                [("location", action.url), *extra],
                merged.response_headers,
            )
        elif isinstance(action, Challenge):
            body = action.body or f"challenge required ({action.kind})\n"
            await self._reply(
                send,
                record,
                action.status,
                body,
                [*action.headers, *extra],
                merged.response_headers,
            )

    async def _relay(
        self,
        send: Send,
        record: RequestRecord,
        response: UpstreamResponse,
        ops: HeaderOps,
        client_takes_trailers: bool,
    ) -> None:
        # hypercorn adds its own Date; the upstream's would make a second one.
        upstream = [(n, v) for n, v in _text_headers(response.headers) if n.lower() != "date"]
        headers = apply_header_ops(strip_hop_by_hop(upstream), ops)
        headers.append(("x-request-id", record.request_id))
        record.status = response.status
        plan = plan_trailers(
            headers,
            client_takes=client_takes_trailers,
            upstream_http2=response.http_version == "2",
            ended_with_head=response.complete,
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": _raw_headers(plan.head),
                "trailers": plan.announce,
            }
        )
        record.started_response = True
        async for chunk in response.body():
            record.bytes_out += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if plan.announce:
            upstream_trailers = strip_hop_by_hop(_text_headers(response.trailers))
            fields = trailer_block(plan, upstream_trailers, record.request_id)
            await send({"type": "http.response.trailers", "headers": _raw_headers(fields)})

    async def _reply(
        self,
        send: Send,
        record: RequestRecord,
        status: int,
        body: str,
        headers: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
        ops: HeaderOps | None = None,
    ) -> None:
        data = body.encode()
        out = [
            ("content-type", "text/plain; charset=utf-8"),
            ("content-length", str(len(data))),
            *headers,
        ]
        if record.request_id:
            out.append(("x-request-id", record.request_id))
        if ops is not None:
            out = apply_header_ops(out, ops)
        record.status = status
        record.bytes_out += len(data)
        await send({"type": "http.response.start", "status": status, "headers": _raw_headers(out)})
        record.started_response = True
        await send({"type": "http.response.body", "body": data, "more_body": False})

    async def _reply_if_possible(
        self, send: Send, record: RequestRecord, status: int, body: str
    ) -> None:
        if not record.started_response:
            await self._reply(send, record, status, body)

    def _complete(self, cid: int, record: RequestRecord) -> RequestComplete:
        return RequestComplete(
            correlation_id=cid,
            status=record.status,
            duration_us=int((trio.current_time() - record.mono_start) * 1e6),
            request_bytes=record.bytes_in,
            response_bytes=record.bytes_out,
            decided_by=record.decided_by,
            error=record.error,
        )

    def _finish(self, record: RequestRecord) -> None:
        route = record.route or "-"
        self.metrics.requests.labels(route, str(record.status)).inc()
        self.metrics.latency.labels(route).observe(record.latency)
        self.access.record(record.to_access(self.access.source, self.worker))
        self.metrics.records_dropped.set(self.access.dropped)


def _request_body(receive: Receive, max_body: int, record: RequestRecord) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            data = message.get("body", b"")
            if data:
                received += len(data)
                record.bytes_in = received
                if check_body_size(received, max_body) is not None:
                    raise BodyTooLarge()
                yield data
            if not message.get("more_body", False):
                return

    return chunks()


async def _read_all(body: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in body])
