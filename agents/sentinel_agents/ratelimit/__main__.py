"""``python -m sentinel_agents.ratelimit [--socket PATH] [--config FILE]``: the rate-limit agent."""

import sys

from sentinel_agents.program import run_program
from sentinel_agents.ratelimit.agent import RateLimitAgent

if __name__ == "__main__":
    sys.exit(run_program(RateLimitAgent()))
