"""Composition root: the only place that wires concrete classes together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web


from .api import admin_routes, openai_routes
from .chat.service import ChatService
from .config import Config
from .store.sqlite import Store
from .upstream.accounts import AccountPool
from .upstream.auth import TokenManager
from .upstream.client import KimiClient
from .web.keys import CONFIG, SERVICE, STARTED_AT
from .web.middleware import errors_and_logs

log = logging.getLogger("kimi.app")


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[errors_and_logs],
                          client_max_size=config.server.max_body_mb * 1024 * 1024)
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app.cleanup_ctx.append(_services)
    openai_routes.add_routes(app)
    admin_routes.add_routes(app)
    app.router.add_get("/ping", ping)
    app.router.add_get("/healthz", healthz)
    return app


async def _services(app: web.Application):
    config: Config = app[CONFIG]
    client = KimiClient(config.kimi.base_url, config.kimi.connect_timeout_seconds,
                        config.kimi.idle_timeout_seconds)
    pool = AccountPool(config.kimi.tokens, client.new_session,
                       max_streams=config.pool.max_streams_per_account,
                       queue_timeout=config.pool.queue_timeout_seconds)
    store = Store(config.store.path)
    await store.open()
    tokens = TokenManager(auth_url=config.kimi.auth_url, base_url=config.kimi.base_url,
                          store=store, session_for=pool.session,
                          margin=config.pool.refresh_margin_seconds)
    service = ChatService(pool, client, tokens, delete_chats=config.kimi.delete_chats)
    app[SERVICE] = service
    for account in pool.accounts:
        await tokens.restore(account)
    refresher = asyncio.get_running_loop().create_task(_refresh_loop(pool, tokens))
    yield
    refresher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await refresher
    await service.drain()
    await pool.close()
    await store.close()


async def _refresh_loop(pool: AccountPool, tokens: TokenManager, every: float = 30.0) -> None:
    """Refresh access tokens before they expire, off the request path."""
    while True:
        await tokens.refresh_due(pool.all_accounts())
        await asyncio.sleep(every)


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
