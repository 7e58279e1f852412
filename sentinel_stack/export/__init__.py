"""`sentinel-stack export`: the same stack config as systemd units, Compose or Kubernetes.

`deployment.prepare` turns a config into a `Deployment` (the plan relocated to the target's
paths, env split into inline values and operator-supplied ones); `systemd`, `compose` and
`kubernetes` each map a `Deployment` to files ``{relative path: text}``; `writer` puts them
on disk. Nothing is imported here so `python -m sentinel_stack.export.healthcheck` (run by
container health checks) starts fast. docs/deploy.md says how each tier maps the config.
"""
