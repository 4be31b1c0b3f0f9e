"""Kimi token kinds, read from the JWT claims without verifying them (we are not the issuer)."""

from __future__ import annotations

import base64
import functools
import hashlib
import time

import orjson


def jwt_claims(token: str) -> dict | None:
    parts = token.split(".")
    if len(parts) != 3 or not token.startswith("eyJ"):
        return None
    try:
        raw = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = orjson.loads(base64.urlsafe_b64decode(raw))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def token_kind(token: str) -> str:
    """"access" for a usable Kimi access JWT, else "refresh" (how every Gen B client decides)."""
    claims = jwt_claims(token)
    if claims and claims.get("typ") == "access" and claims.get("app_id", "kimi") == "kimi":
        return "access"
    return "refresh"


@functools.lru_cache(maxsize=4096)
def expires_at(token: str) -> float | None:
    """Read once per token (every request checks its account's token; bounded like the pool)."""
    claims = jwt_claims(token)
    exp = claims.get("exp") if claims else None
    return float(exp) if isinstance(exp, (int, float)) else None


def is_expired(token: str, margin: float = 0.0, now: float | None = None) -> bool:
    exp = expires_at(token)
    return exp is not None and (now or time.time()) >= exp - margin


def alias_for(token: str) -> str:
    """A stable, non-reversible name for logs and status pages. Short, so it is a label only:
    it never selects stored tokens, conversations or a refresh in flight (see `key_for`)."""
    return "acct-" + key_for(token)[:10]


def key_for(token: str) -> str:
    """The full SHA-256 of a token: what stored tokens and refreshes in flight are keyed by,
    so reaching them takes the token itself, not one of 2^40 look-alikes."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

