"""``python -m sentinel_agents.waf [--socket PATH] [--config FILE]``: the WAF agent."""

import sys

from sentinel_agents.program import run_program
from sentinel_agents.waf.agent import WafAgent

if __name__ == "__main__":
    sys.exit(run_program(WafAgent()))
