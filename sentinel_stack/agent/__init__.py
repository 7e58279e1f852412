"""The agent SDK: write a security agent as a small class, run it as a process.

Agent authors need `Agent` (or `FunctionAgent`), the decision helpers re-exported from
`sentinel_stack.protocol`, and `run_agent`. The proxy uses `connect_agent` and
`AgentConnection` from `sentinel_stack.agent.client`. See docs/writing-agents.md.
"""

from sentinel_stack.agent.base import Agent, AgentHealth, FunctionAgent
from sentinel_stack.agent.client import AgentConnection, agent_connection, connect_agent
from sentinel_stack.agent.errors import (
    AgentDraining,
    AgentError,
    AgentEventError,
    AgentUnavailable,
    ConnectionLost,
)
from sentinel_stack.agent.runner import run_agent
from sentinel_stack.agent.server import AgentServer
from sentinel_stack.protocol import (
    Audit,
    Configure,
    Decision,
    HeaderOps,
    RequestBodyChunk,
    RequestComplete,
    RequestHeaders,
    ResponseBodyChunk,
    ResponseHeaders,
    allow,
    block,
    challenge,
    needs_more,
    redirect,
)

__all__ = [
    "Agent",
    "AgentConnection",
    "AgentDraining",
    "AgentError",
    "AgentEventError",
    "AgentHealth",
    "AgentServer",
    "AgentUnavailable",
    "Audit",
    "Configure",
    "ConnectionLost",
    "Decision",
    "FunctionAgent",
    "HeaderOps",
    "RequestBodyChunk",
    "RequestComplete",
    "RequestHeaders",
    "ResponseBodyChunk",
    "ResponseHeaders",
    "agent_connection",
    "allow",
    "block",
    "challenge",
    "connect_agent",
    "needs_more",
    "redirect",
    "run_agent",
]
