"""Who is calling: a gateway API key, pass-through Kimi tokens, or nobody in particular."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from aiohttp import web

from ..errors import Unauthorized
from .keys import API_KEYS, CONFIG, SERVICE
from .middleware import TRACE


@dataclass(frozen=True, slots=True)
class Caller:
    api_key_id: str | None = None        # index of the matching key, never the key itself
    kimi_tokens: tuple[str, ...] = ()    # pass-through credentials (Bearer T1,T2)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return request.headers.get("x-api-key") or None
    return value.strip() or None


def caller_of(request: web.Request) -> Caller:
    """The caller of a request, with the app's API keys and accounts."""
    config, service = request.app[CONFIG], request.app[SERVICE]
    caller = authenticate(request, config.server.api_keys, bool(service.pool.accounts),
                          request.app.get(API_KEYS))
    if TRACE in request:
        request[TRACE].api_key = caller.api_key_id     # for the console's traffic record
    return caller


def authenticate(request: web.Request, api_keys: tuple[str, ...], has_server_tokens: bool,
                 stored=None) -> Caller:
    """With API keys configured, one must be presented and server accounts are used.
    Without, a Bearer of Kimi tokens is passed through; with server tokens configured, a
    Bearer that is not a Kimi JWT (many clients insist on some key) selects the server accounts."""
    presented = bearer(request)
    if api_keys or (stored is not None and stored.active):
        if presented is None:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' (or "
                               "'x-api-key: <key>')",
                               code="missing_api_key")
        match = None
        for i, key in enumerate(api_keys):
            if hmac.compare_digest(presented.encode(), key.encode()):
                match = str(i)
        if match is None and stored is not None:
            match = stored.match(presented)     # keys created in the console
        if match is None:
            raise Unauthorized("invalid API key", code="invalid_api_key")
        return Caller(api_key_id=match)
    tokens = tuple(t.strip() for t in (presented or "").split(",") if t.strip())
    if has_server_tokens and not (tokens and all(t.startswith("eyJ") for t in tokens)):
        return Caller()
    if not tokens:
        raise Unauthorized("no Kimi token: send 'Authorization: Bearer <kimi token>' or configure "
                           "[kimi] tokens on the gateway", code="missing_token")
    return Caller(kimi_tokens=tokens)
