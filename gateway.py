"""Start the gateway: python gateway.py -c config.toml"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from kimi import __version__
from kimi.app import create_app
from kimi.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAI-compatible gateway for a Kimi web account")
    parser.add_argument("-c", "--config", help="path to config.toml (see config.example.toml)")
    parser.add_argument("--host", help="listen address (overrides [server] host)")
    parser.add_argument("--port", type=int, help="listen port (overrides [server] port)")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    parser.add_argument("--check-config", action="store_true", help="validate the config and exit")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"kimi-gateway: config error: {e}", file=sys.stderr)
        return 2
    host = args.host or config.server.host
    port = args.port or config.server.port
    level = (args.log_level or config.server.log_level).upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        print(f"kimi-gateway: config error: log level {level.lower()!r} is not one of "
              "debug, info, warning, error", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"kimi-gateway: {config.source} is valid ({len(config.kimi.tokens)} account(s))")
        return 0
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    banner = (f"kimi-gateway {__version__} listening on http://{host}:{port} "
              f"config={config.source} accounts={len(config.kimi.tokens)}")
    try:
        # run_app calls `print` once the socket is bound, so the banner means "listening".
        web.run_app(create_app(config), host=host, port=port,
                    print=lambda _: print(banner, flush=True), handler_cancellation=True,
                    shutdown_timeout=config.server.shutdown_grace_seconds, access_log=None)
    except OSError as e:
        print(f"kimi-gateway: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
