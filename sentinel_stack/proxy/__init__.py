"""The reverse proxy: a protocol-agnostic core (routing, agent pipeline, upstream selection,
breakers) behind a hypercorn front."""
