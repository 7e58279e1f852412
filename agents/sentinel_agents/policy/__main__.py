"""``python -m sentinel_agents.policy [--socket PATH] [--config FILE]``: the policy agent."""

import sys

from sentinel_agents.policy.agent import PolicyAgent
from sentinel_agents.program import run_program

if __name__ == "__main__":
    sys.exit(run_program(PolicyAgent()))
