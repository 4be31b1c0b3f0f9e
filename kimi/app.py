"""Composition root: the only place that wires concrete classes together."""

from __future__ import annotations

import logging
import time

from aiohttp import web

from .api import openai_routes
from .chat.addresses import AddressPolicy
from .chat.attachments import AttachmentService
from .chat.fetch import RemoteFetcher
from .chat.service import ChatService, TokenManager
from .config import Config
from .store.uploads import UploadStore
from .upstream.accounts import AccountPool
from .upstream.client import KimiClient
from .upstream.files import FileUploader
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
    attachments = await _attachments(config, client)
    service = ChatService(pool, client, TokenManager(), delete_chats=config.kimi.delete_chats,
                          attachments=attachments)
    app[SERVICE] = service
    yield
    await service.drain()
    await pool.close()
    await attachments.close()


async def _attachments(config: Config, client: KimiClient) -> AttachmentService:
    files, max_bytes = config.files, config.files.max_mb * 1024 * 1024
    store = UploadStore(config.store.path, files.dedupe_ttl_hours * 3600)
    await store.open()
    fetcher = RemoteFetcher(AddressPolicy(files.allow_hosts), max_bytes,
                            files.download_timeout_seconds)
    uploader = FileUploader(client, files.upload_timeout_seconds, files.parse_timeout_seconds)
    return AttachmentService(fetcher, uploader, store, max_bytes=max_bytes,
                             parallel=files.parallel_uploads)


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
