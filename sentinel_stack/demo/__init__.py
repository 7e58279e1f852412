"""The demo upstream the embedded default config serves behind the proxy."""
