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


def _handler(what: str):
    async def not_served(request: web.Request) -> web.Response:
        raise NotFound(f"{request.method} {request.path} is not served: the Kimi web chat has "
                       f"no {what}. This gateway serves chat: /v1/chat/completions, "
                       "/v1/completions, /v1/models (the homepage at / lists all its APIs).",
                       code="unsupported_endpoint")
    return not_served


def add_routes(app: web.Application) -> None:
    for name, what in CAPABILITIES.items():
        handler = _handler(what)
        for prefix in ("/v1/", "/"):
            app.router.add_route("*", prefix + name, handler)
            app.router.add_route("*", prefix + name + "/{tail:.*}", handler)
