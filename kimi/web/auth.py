"""Who is calling: a gateway API key, pass-through Kimi tokens, or nobody in particular.

Every caller gets a `scope`: the namespace of its stored conversations. A scope is derived from
a secret the caller proves it holds on every request (a full SHA-256 of it, never a short alias,
a position in a list or anything shown in logs, /metrics or status pages):

- `key:<sha256 of the API key>` with `[server] api_keys`: reordering or removing other keys
  changes nothing; `key:<id>` for a key created in the console (its id never changes);
- `kimi:<sha256 of the first Kimi token>` for pass-through callers;
- `bearer:<sha256 of the bearer>` for callers of an open gateway (server tokens, no API keys)
  that send some key of their own, so clients with different keys are kept apart;
- `server` for callers of an open gateway that send no key at all: they share one scope (the
  string earlier versions used for every caller of such a gateway).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass

from aiohttp import web

from ..errors import Unauthorized
from .keys import API_KEYS, CONFIG, SERVICE
from .middleware import TRACE

ANONYMOUS_SCOPE = "server"


@dataclass(frozen=True, slots=True)
class Caller:
    scope: str = ANONYMOUS_SCOPE
    api_key_id: str | None = None        # for the console: a config key's index or a stored id
    kimi_tokens: tuple[str, ...] = ()    # pass-through credentials (Bearer T1,T2)


CALLER = web.RequestKey("caller", Caller)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return other_key(request)
    return value.strip() or None


def other_key(request: web.Request) -> str | None:
    """The secret in the other places clients put it: Anthropic's `x-api-key`, Google's
    `x-goog-api-key` header and `?key=` query parameter. It means what a bearer means."""
    for value in (request.headers.get("x-api-key"), request.headers.get("x-goog-api-key"),
                  request.query.get("key")):
        if value and value.strip():
            return value.strip()
    return None


def caller_of(request: web.Request) -> Caller:
    """The caller of a request, with the app's API keys and accounts; checked once per
    request (a route asks before reading the body, the turn again)."""
    caller = request.get(CALLER)
    if caller is not None:
        return caller
    config, service = request.app[CONFIG], request.app[SERVICE]
    caller = authenticate(request, config.server.api_keys, bool(service.pool.accounts),
                          request.app.get(API_KEYS))
    request[CALLER] = caller
    if TRACE in request:
        request[TRACE].api_key = caller.api_key_id     # for the console's traffic record
    return caller


def require_key(request: web.Request) -> None:
    """For the gateway's own endpoints: an API key when keys are configured."""
    stored = request.app.get(API_KEYS)
    api_keys = request.app[CONFIG].server.api_keys
    if api_keys or (stored is not None and stored.active):
        _key_caller(bearer(request), api_keys, stored)


def authenticate(request: web.Request, api_keys: tuple[str, ...], has_server_tokens: bool,
                 stored=None) -> Caller:
    """With API keys configured, one must be presented and server accounts are used.
    Without, a Bearer of Kimi tokens is passed through; with server tokens configured, a
    Bearer that is not a Kimi JWT (many clients insist on some key) selects the server accounts."""
    presented = bearer(request)
    if api_keys or (stored is not None and stored.active):
        return _key_caller(presented, api_keys, stored)
    return _open_caller(presented, has_server_tokens)


@functools.lru_cache(maxsize=512)
def _open_caller(presented: str | None, has_server_tokens: bool) -> Caller:
    """The caller of a gateway without API keys: it depends on nothing but the secret, so it
    is remembered for the few secrets that call often (bounded, in memory only)."""
    tokens = tuple(t.strip() for t in (presented or "").split(",") if t.strip())
    if has_server_tokens and not (tokens and all(t.startswith("eyJ") for t in tokens)):
        if presented is None:
            return Caller()
        return Caller(scope="bearer:" + secret_digest(presented))
    if not tokens:
        raise Unauthorized("no Kimi token: send 'Authorization: Bearer <kimi token>' or configure "
                           "[kimi] tokens on the gateway", code="missing_token")
    return Caller(scope="kimi:" + secret_digest(tokens[0]), kimi_tokens=tokens)


def _key_caller(presented: str | None, api_keys: tuple[str, ...], stored=None) -> Caller:
    if presented is None:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>' (or "
                           "'x-api-key: <key>')", code="missing_api_key")
    given = presented.encode("utf-8", "surrogatepass")
    index = None
    for i, key in enumerate(api_keys):  # every key compared: the time says nothing of which
        if hmac.compare_digest(given, key.encode("utf-8", "surrogatepass")):
            index = str(i)
    if index is not None:
        return Caller(scope="key:" + secret_digest(presented), api_key_id=index)
    key_id = stored.match(presented) if stored is not None else None     # made in the console
    if key_id is None:
        raise Unauthorized("invalid API key", code="invalid_api_key")
    return Caller(scope="key:" + key_id, api_key_id=key_id)
