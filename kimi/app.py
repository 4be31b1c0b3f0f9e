"""Composition root: the only place that wires concrete classes together."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from .api import openai_routes
from .chat.service import ChatService, TokenManager
from .config import Config
from .upstream.accounts import AccountPool
from .upstream.client import KimiClient
from .web.home import home
from .web.keys import CONFIG, SERVICE, STARTED_AT
from .web.metrics import METRICS, Metrics, metrics_handler
from .web.middleware import TRACE_HOOKS, errors_and_logs
from .web.status import readyz

log = logging.getLogger("kimi.app")


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[errors_and_logs],
                          client_max_size=config.server.max_body_mb * 1024 * 1024)
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app[METRICS] = Metrics(app)
    app[TRACE_HOOKS] = [app[METRICS].observe]
    app.cleanup_ctx.append(_services)
    openai_routes.add_routes(app)
    app.router.add_get("/ping", ping)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/", home)
    return app


async def _services(app: web.Application):
    config: Config = app[CONFIG]
    client = KimiClient(config.kimi.base_url, config.kimi.connect_timeout_seconds,
                        config.kimi.idle_timeout_seconds)
    pool = AccountPool(config.kimi.tokens, client.new_session,
                       max_streams=config.pool.max_streams_per_account,
                       queue_timeout=config.pool.queue_timeout_seconds)
    service = ChatService(pool, client, TokenManager(), delete_chats=config.kimi.delete_chats)
    app[SERVICE] = service
    yield
    await service.drain()
    await pool.close()


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
