"""OpenAI routes the Kimi web chat has no capability for: a clear OpenAI-shaped error that
says so (404, so clients do not retry), instead of a bare `Not Found`. With and without the
`/v1` prefix, any method."""

from __future__ import annotations

from aiohttp import web

from ..errors import NotFound

CAPABILITIES = {
    "embeddings": "embeddings",
    "images": "image generation",
    "audio": "speech, transcription or translation",
    "moderations": "a moderation model",
    "files": "a Files API (send images and documents inline in the chat request)",
    "uploads": "a Files API (send images and documents inline in the chat request)",
    "fine_tuning": "fine-tuning",
    "fine-tunes": "fine-tuning",
    "batches": "batch jobs",
    "assistants": "the Assistants API",
    "threads": "the Assistants API",
    "vector_stores": "vector stores",
    "realtime": "realtime sessions",
    "videos": "video generation",
    "edits": "edits (retired by OpenAI; use /v1/chat/completions)",
    "engines": "engines (retired by OpenAI; use /v1/models)",
}


# Routes served in another form: the message names the one that works.
INSTEAD = {
    "responses": "this gateway has no Responses API. Use Chat Completions at "
                 "/v1/chat/completions (tools and streaming work there; OpenCode: the "
                 "@ai-sdk/openai-compatible provider, not @ai-sdk/openai; the openai SDK: "
                 "client.chat.completions).",
}


def _instead(advice: str):
    async def not_served(request: web.Request) -> web.Response:
        raise NotFound(f"{request.method} {request.path} is not served: {advice}",
                       code="unsupported_endpoint")
    return not_served


def _handler(what: str):
    async def not_served(request: web.Request) -> web.Response:
        raise NotFound(f"{request.method} {request.path} is not served: the Kimi web chat has "
                       f"no {what}. This gateway serves chat: /v1/chat/completions, "
                       "/v1/completions, /v1/models (the homepage at / lists all its APIs).",
                       code="unsupported_endpoint")
    return not_served


def add_routes(app: web.Application) -> None:
    handlers = {**{name: _handler(what) for name, what in CAPABILITIES.items()},
                **{name: _instead(advice) for name, advice in INSTEAD.items()}}
    for name, handler in handlers.items():
        for prefix in ("/v1/", "/"):
            app.router.add_route("*", prefix + name, handler)
            app.router.add_route("*", prefix + name + "/{tail:.*}", handler)
