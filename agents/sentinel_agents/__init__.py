"""Bundled security agents: one program per agent, each runnable alone."""
