"""Composition root: the only place that wires concrete classes together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from .api import openai_routes
from .canonical.models import ModelCatalogue
from .chat.service import ChatService, TokenManager
from .config import Config
from .upstream.accounts import AccountPool
from .upstream.catalog import CatalogueRefresher
from .upstream.client import KimiClient
from .usage import load_counter
from .web.keys import CATALOGUE, CONFIG, SERVICE, STARTED_AT, TOKEN_COUNTER
from .web.middleware import errors_and_logs

log = logging.getLogger("kimi.app")


def create_app(config: Config) -> web.Application:
    app = web.Application(middlewares=[errors_and_logs],
                          client_max_size=config.server.max_body_mb * 1024 * 1024)
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app[CATALOGUE] = ModelCatalogue()
    app[TOKEN_COUNTER] = load_counter()
    app.cleanup_ctx.append(_services)
    openai_routes.add_routes(app)
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
    service = ChatService(pool, client, TokenManager(), delete_chats=config.kimi.delete_chats)
    app[SERVICE] = service
    refresher = _catalogue_task(app, client, pool, service)
    yield
    if refresher is not None:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
    await service.drain()
    await pool.close()


def _catalogue_task(app: web.Application, client: KimiClient, pool: AccountPool,
                    service: ChatService) -> asyncio.Task | None:
    """Refresh the live model catalogue in the background with the first configured account;
    with no server account there is no token to ask with, and the static table stands."""
    if not pool.accounts:
        return None
    account = pool.accounts[0]
    refresher = CatalogueRefresher(app[CATALOGUE], client, pool.session(account),
                                   lambda: service.tokens.access_token(account),
                                   app[CONFIG].kimi.models_refresh_seconds)
    return asyncio.get_running_loop().create_task(refresher.run())


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
