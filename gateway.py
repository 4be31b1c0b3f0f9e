"""Start the gateway: python gateway.py -c config.toml"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import sys
from urllib.parse import urlsplit

from aiohttp import web

from kimi import __version__
from kimi.app import create_app
from kimi.config import ConfigError, exposure_problem, load_config
from kimi.errors import GatewayError


def _store_name(config) -> str:
    """The SQLite file, or PostgreSQL's address without its user and password."""
    if not config.store.url:
        return os.path.abspath(config.store.path)
    u = urlsplit(config.store.url)
    return f"{u.scheme}://{u.netloc.rpartition('@')[2]}{u.path}"    # host[:port] as written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OpenAI-compatible gateway for a Kimi web account")
    parser.add_argument("-c", "--config", help="path to config.toml (see config.example.toml)")
    parser.add_argument("--host", help="listen address (overrides [server] host)")
    parser.add_argument("--port", type=int, help="listen port (overrides [server] port)")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    parser.add_argument("--check-config", action="store_true", help="validate the config and exit")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop: uvloop when installed (auto, the default) or "
                             "asyncio's own")
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
    problem = exposure_problem(config, host)
    if problem:
        print(f"kimi-gateway: config error: {problem}", file=sys.stderr)
        return 2
    if args.check_config:
        print(f"kimi-gateway: {config.source} is valid ({len(config.kimi.tokens)} account(s))")
        return 0
    loop = new_event_loop(args.loop)
    if loop is None:
        print("kimi-gateway: --loop uvloop needs the 'fast' extra (pip install uvloop)",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    accounts = len(config.kimi.tokens)
    mode = f"accounts ({accounts})" if accounts else "pass-through (clients send Kimi tokens)"
    banner = (f"kimi-gateway {__version__} listening on http://{host}:{port} "
              f"config={config.source} accounts={accounts} mode={mode} "
              f"upstream={config.kimi.base_url} store={_store_name(config)} "
              f"keys={'required' if config.server.api_keys else 'none'} "
              f"loop={type(loop).__module__.split('.')[0]}")
    app = create_app(config)
    app.on_startup.append(_freeze_startup_objects)
    try:
        # run_app calls `print` once the socket is bound, so the banner means "listening".
        # A burst of clients overflows the default listen backlog of 128 (SYN retries cost 1 s).
        web.run_app(app, host=host, port=port, loop=loop, backlog=1024,
                    print=lambda _: print(banner, flush=True), handler_cancellation=True,
                    shutdown_timeout=config.server.shutdown_grace_seconds, access_log=None)
    except OSError as e:
        print(f"kimi-gateway: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return 1
    except GatewayError as e:      # e.g. the shared store is unreachable at start
        print(f"kimi-gateway: cannot start: {e.message}", file=sys.stderr)
        return 1
    logging.getLogger("kimi.app").info("kimi-gateway stopped (in-flight requests finished or "
                                       "%gs grace over)", config.server.shutdown_grace_seconds)
    return 0


async def _freeze_startup_objects(app: web.Application) -> None:
    """Everything made while starting (modules, config, the token table, accounts) lives as
    long as the process: moved out of the cyclic collector's reach, its full passes no longer
    re-scan it, which stalled the event loop for tens of milliseconds under load. (What of it
    later becomes garbage is still freed by reference counting, unless it sits in a cycle:
    a bounded, one-off amount.)"""
    gc.collect()
    gc.freeze()


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop | None:
    """uvloop (the optional `fast` extra) cuts the loop's own cost per chunk; see BENCHMARKS.md."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                return None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


if __name__ == "__main__":
    sys.exit(main())
