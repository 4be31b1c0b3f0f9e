"""Composition root: the only place that wires concrete classes together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

from aiohttp import web

from .admin import routes as console_routes
from .admin.accounts import ConsoleAccounts
from .admin.console import CONSOLE, TRAFFIC, Console, replica_name
from .admin.follow import Follower
from .admin.keys import ApiKeys
from .admin.session import Sessions
from .admin.traffic import TrafficLog
from .api import admin_routes, unserved
from .api import models as model_routes
from .api.anthropic import routes as anthropic_routes
from .api.completions import routes as completions_routes
from .api.gemini import routes as gemini_routes
from .api.openai import routes as openai_routes
from .api.responses import routes as responses_routes
from .canonical.models import ModelCatalogue
from .chat.addresses import AddressPolicy
from .chat.attachments import AttachmentService
from .chat.conversations import Conversations
from .chat.responses import StoredResponses
from .chat.fetch import RemoteFetcher
from .chat.service import ChatService
from .config import Config
from .coord import LocalJobs, SharedUnary
from .coord.pool import LeasedPool
from .coord.state import open_state
from .store.admin import ConsoleRepo
from .upstream.accounts import AccountPool
from .upstream.auth import TokenManager
from .upstream.catalog import CatalogueRefresher
from .upstream.client import KimiClient
from .upstream.kimi import KimiUpstream
from .upstream.uploads import FileUploads
from .upstream.files import FileUploader
from .usage import load_counter
from .web.home import home
from .web.budget import BodyBudget
from .web.connections import handler_args, use_json_errors
from .web.cors import add_cors_headers, preflight
from .web.keys import (API_KEYS, BODY_BUDGET, CATALOGUE, CONFIG, PROBES, RESPONSES, SERVICE,
                       STARTED_AT, TOKEN_CHECKS, TOKEN_COUNTER)
from .web.metrics import METRICS, Metrics, metrics_handler
from .web.middleware import TRACE_HOOKS, errors_and_logs
from .web.ratelimit import SlidingWindowLimit
from .web.status import readyz

log = logging.getLogger("kimi.app")


def create_app(config: Config) -> web.Application:
    use_json_errors()       # requests aiohttp's parser refuses get a JSON error too
    app = web.Application(middlewares=[preflight, errors_and_logs],
                          handler_args=handler_args(config.server.idle_connection_seconds),
                          client_max_size=config.server.max_body_mb * 1024 * 1024)
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app[CATALOGUE] = ModelCatalogue()
    app[TOKEN_COUNTER] = load_counter()
    app[METRICS] = Metrics(app)
    app[BODY_BUDGET] = BodyBudget(config.server.body_memory_mb * 1024 * 1024)
    app[TOKEN_CHECKS] = SlidingWindowLimit(config.server.token_checks_per_minute)
    app[TRACE_HOOKS] = [app[METRICS].observe]
    app.cleanup_ctx.append(_services)
    app.on_response_prepare.append(add_cors_headers)
    openai_routes.add_routes(app)
    anthropic_routes.add_routes(app)
    responses_routes.add_routes(app)
    model_routes.add_routes(app)
    gemini_routes.add_routes(app)
    completions_routes.add_routes(app)
    unserved.add_routes(app)
    admin_routes.add_routes(app)
    if config.admin.key:
        app[TRAFFIC] = TrafficLog(config.admin.traffic_records)
        app[TRACE_HOOKS].append(app[TRAFFIC].observe)
        console_routes.add_routes(app)
    app.router.add_get("/ping", ping)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/", home)
    return app


async def _services(app: web.Application):
    config: Config = app[CONFIG]
    client = KimiClient(config.kimi.base_url, config.kimi.connect_timeout_seconds,
                        config.kimi.idle_timeout_seconds, config.kimi.idle_connection_seconds)
    state = await open_state(config)
    pool = AccountPool(config.kimi.tokens, client.new_session,
                       max_streams=config.pool.max_streams_per_account,
                       queue_timeout=config.pool.queue_timeout_seconds)
    if state.shared_leases:
        pool = LeasedPool(pool, state.leases)
    tokens = TokenManager(auth_url=config.kimi.auth_url, base_url=config.kimi.base_url,
                          store=state.vault, session_for=pool.session,
                          margin=config.pool.refresh_margin_seconds)
    conversations = Conversations(state.conversations,
                                  ttl_seconds=config.store.conversation_ttl_days * 86400,
                                  auto_ttl_seconds=config.store.auto_continue_minutes * 60,
                                  locks=state.locks)
    attachments, uploads = _attachments(config, client, state.uploads)
    upstream = KimiUpstream(client, pool, tokens, uploads)
    service = ChatService(pool, upstream, conversations, attachments=attachments,
                          counter=app[TOKEN_COUNTER], delete_chats=config.kimi.delete_chats,
                          overflow=config.store.overflow, think_tags=config.kimi.think_tags,
                          retries=config.tools.retries, count_usage=bool(config.admin.key))
    app[PROBES] = state.probes
    app[SERVICE] = service
    app[RESPONSES] = StoredResponses(state.responses,
                                     config.store.conversation_ttl_days * 86400)
    for account in pool.accounts:
        await tokens.restore(account)
    managed = await _console(app, state.console, pool, tokens, client)
    if state.shared_leases:     # every account is in: this replica's own order
        pool.spread(random.SystemRandom())
    loop = asyncio.get_running_loop()
    # Once per cluster: the replica that claims the round runs it (always, in one process).
    background = [loop.create_task(client.warm_up()),
                  loop.create_task(_every(30.0, state.jobs, tokens.refresh_due, pool.all_accounts)),
                  loop.create_task(_every(60.0, state.jobs, service.purge_expired)),
                  loop.create_task(_every(60.0, state.jobs, app[RESPONSES].purge_expired))]
    if CONSOLE in app:
        background.append(loop.create_task(_every(10.0, LocalJobs(), app[CONSOLE].fold)))
    if config.store.url:        # other replicas change keys and accounts too: follow them
        background.append(loop.create_task(
            Follower(state.console, app[API_KEYS], managed).run()))
    catalogue = _catalogue_task(app, client, pool, tokens, state.jobs)
    if catalogue is not None:
        background.append(catalogue)
    yield
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if CONSOLE in app:
        await app[CONSOLE].fold()       # the last per-key counts reach the store
    await service.drain()
    await tokens.drain()
    await managed.close()
    await pool.close()
    await client.close()
    await attachments.close()
    await state.close()


async def _console(app: web.Application, repo: ConsoleRepo, pool: AccountPool,
                   tokens: TokenManager, client: KimiClient) -> ConsoleAccounts:
    """What the console added in earlier runs (accounts, API keys) is loaded whether or not the
    console is on now: turning it off must not drop keys or open the API."""
    config = app[CONFIG]
    await repo.create_schema()
    keys = app[API_KEYS] = ApiKeys(repo, config.server.api_keys)
    await keys.load()
    managed = ConsoleAccounts(pool, tokens, client, repo)
    await managed.load()
    if config.admin.key:
        app[CONSOLE] = Console(managed, keys, app[TRAFFIC],
                               Sessions(config.admin.key, config.admin.session_hours), repo,
                               app[SERVICE], config.pool.refresh_margin_seconds,
                               replica_name() if config.store.url else None)
    return managed


async def _every(seconds: float, jobs, job, *arg_factories) -> None:
    """Run `job` now and then every `seconds` (token refresh, conversation purge), off the
    request path, when this replica claims the round; a failure is logged and the loop goes on."""
    # The qualified name: ChatService.purge_expired and StoredResponses.purge_expired are two
    # jobs, each claimed on its own.
    name = getattr(job, "__qualname__", "job")
    while True:
        try:
            if await jobs.claim(name, seconds):
                await job(*(f() for f in arg_factories))
        except Exception:
            log.exception("background job %s failed", getattr(job, "__name__", job))
        await asyncio.sleep(seconds)


def _catalogue_task(app: web.Application, client: KimiClient, pool: AccountPool,
                    tokens: TokenManager, jobs) -> asyncio.Task | None:
    """Refresh the live model catalogue in the background with the first configured account;
    with no server account there is no token to ask with, and the static table stands.
    With several replicas one of them asks Kimi per round and the others read its answer."""
    if not pool.accounts:
        return None
    account = pool.accounts[0]
    interval = app[CONFIG].kimi.models_refresh_seconds
    refresher = CatalogueRefresher(app[CATALOGUE], SharedUnary(client, jobs, interval),
                                   pool.session(account), lambda: tokens.access_token(account),
                                   interval)
    return asyncio.get_running_loop().create_task(refresher.run())


def _attachments(config: Config, client: KimiClient,
                 uploads) -> tuple[AttachmentService, FileUploads]:
    files, max_bytes = config.files, config.files.max_mb * 1024 * 1024
    fetcher = RemoteFetcher(AddressPolicy(files.allow_hosts), max_bytes,
                            files.download_timeout_seconds)
    uploader = FileUploader(client, files.upload_timeout_seconds, files.parse_timeout_seconds)
    return (AttachmentService(fetcher, max_bytes=max_bytes, parallel=files.parallel_uploads),
            FileUploads(uploader, uploads, parallel=files.parallel_uploads))


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="pong")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
