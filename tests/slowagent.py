"""A test agent that answers after a delay (read from $SLOW_AGENT_DELAY); never shipped."""

from __future__ import annotations

import os
import sys

import trio

from sentinel_stack.agent import Agent, Decision, RequestHeaders, allow, run_agent


class SlowAgent(Agent):
    name = "slow"
    version = "0"

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        if request.path.startswith("/slow"):
            await trio.sleep(float(os.environ.get("SLOW_AGENT_DELAY", "1")))
        return allow()


if __name__ == "__main__":
    sys.exit(run_agent(SlowAgent()))
