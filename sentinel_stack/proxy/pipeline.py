"""The agent pipeline: consult a route's agents at once, apply failure modes, merge.

First block/redirect/challenge wins in pipeline order, header operations merge, audit
tags accumulate (`merge_decisions`). An agent that cannot answer (down, slow, breaker
open, broken) is skipped when its failure mode is "open", and turns into a 503 block
when it is "closed" — so a fail-closed agent can never be bypassed by crashing it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import trio

from sentinel_stack.protocol import Audit, Decision, RequestComplete, block, merge_decisions
from sentinel_stack.protocol.merge import MergedDecision
from sentinel_stack.protocol.messages import DecisionEvent
from sentinel_stack.proxy.agentlink import AgentLink, Consultation

FailureMode = Literal["open", "closed"]


@dataclass(frozen=True)
class PipelineResult:
    merged: MergedDecision
    consultations: tuple[Consultation, ...]


def fail_closed_decision(consultation: Consultation) -> Decision:
    return block(
        503,
        f"security check unavailable ({consultation.agent}: {consultation.error})\n",
        headers=(("retry-after", "1"),),
        audit=Audit(tags=("fail-closed",), reason=f"agent {consultation.error}"),
    )


class Pipeline:
    def __init__(self, links: Mapping[str, AgentLink]) -> None:
        self.links = links

    async def consult(
        self, agents: Sequence[str], event: DecisionEvent, route_mode: FailureMode | None
    ) -> PipelineResult:
        links = [self.links[name] for name in agents if name in self.links]
        if not links:
            return PipelineResult(merge_decisions([]), ())
        if len(links) == 1:  # the common case, without a nursery
            consultations: list[Consultation] = [await links[0].consult(event)]
        else:
            slots: list[Consultation | None] = [None] * len(links)

            async def one(index: int, link: AgentLink) -> None:
                slots[index] = await link.consult(event)

            async with trio.open_nursery() as nursery:
                for index, link in enumerate(links):
                    nursery.start_soon(one, index, link)
            consultations = [c for c in slots if c is not None]
        decisions: list[tuple[str, Decision]] = []
        for link, consultation in zip(links, consultations, strict=True):
            if consultation.decision is not None:
                decisions.append((link.name, consultation.decision))
            elif (route_mode or link.settings.failure_mode) == "closed":
                decisions.append((link.name, fail_closed_decision(consultation)))
        return PipelineResult(merge_decisions(decisions), tuple(consultations))

    async def complete(self, result: PipelineResult, complete: RequestComplete) -> None:
        for consultation in result.consultations:
            link = self.links.get(consultation.agent)
            if link is not None:
                await link.complete(consultation, complete)
