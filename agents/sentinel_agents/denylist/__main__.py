"""``python -m sentinel_agents.denylist [--socket PATH] [--config FILE]``: the denylist agent."""

import sys

from sentinel_agents.denylist.agent import DenylistAgent
from sentinel_agents.program import run_program

if __name__ == "__main__":
    sys.exit(run_program(DenylistAgent()))
