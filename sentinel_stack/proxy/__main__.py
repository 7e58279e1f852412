"""`python -m sentinel_stack.proxy [--config FILE]`: the reverse proxy as its own program."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import trio

from sentinel_stack.config.loader import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sentinel-proxy", description=__doc__)
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ["SENTINEL_CONFIG"]) if "SENTINEL_CONFIG" in os.environ else None,
        help="the stack config (default: $SENTINEL_CONFIG)",
    )
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.config is None:
        parser.error("no config: pass --config FILE or set SENTINEL_CONFIG")
    from sentinel_stack.proxy.server import ProxyServer

    try:
        server = ProxyServer(args.config)
    except (ConfigError, ValueError) as error:
        print(f"sentinel-proxy: {error}", file=sys.stderr)
        return 2
    trio.run(server.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
