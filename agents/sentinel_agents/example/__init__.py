"""The example agent: a small, complete agent to copy from (docs/writing-agents.md).

It blocks configured path prefixes, scans request bodies for configured markers, tags allowed
requests with a header, and hot-reloads its configuration.
"""

from sentinel_agents.example.agent import ExampleAgent, ExampleConfig

__all__ = ["ExampleAgent", "ExampleConfig"]
