"""``python -m sentinel_agents.example --socket /tmp/example.sock``"""

import sys

from sentinel_agents.example.agent import ExampleAgent
from sentinel_stack.agent import run_agent

if __name__ == "__main__":
    sys.exit(run_agent(ExampleAgent()))
