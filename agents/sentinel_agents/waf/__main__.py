"""``python -m sentinel_agents.waf [--socket PATH] [--config FILE]``: the WAF agent."""

import sys

from sentinel_agents.waf.allocator import reexec_with_jemalloc

if __name__ == "__main__":
    reexec_with_jemalloc()  # before anything else: see allocator.py

    from sentinel_agents.program import run_program
    from sentinel_agents.waf.agent import WafAgent

    sys.exit(run_program(WafAgent()))
