"""Minting and checking of the emulator's JWT-shaped tokens (signatures are not verified)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid

import orjson


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _digits(seed: str, count: int) -> str:
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    return str(number).zfill(count)[:count]


def device_id_for(sub: str) -> str:
    """19 digits starting with 7, stable per user."""
    return "7" + _digits("device:" + sub, 18)


def ssid_for(sub: str) -> str:
    """19 digits starting with 17, stable per user."""
    return "17" + _digits("ssid:" + sub, 17)


def _mint(sub: str, ttl: float, typ: str, extra: dict) -> str:
    now = int(time.time())
    header = {"alg": "HS512", "typ": "JWT"}
    payload = {
        "iss": "user-center",
        "typ": typ,
        "app_id": "kimi",
        "sub": sub,
        "space_id": "space-" + sub,
        "abstract_user_id": "abs-" + sub,
        "ssid": ssid_for(sub),
        "device_id": device_id_for(sub),
        "region": "overseas",
        "membership": {"level": 10},
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": int(now + ttl),
    }
    payload.update(extra)
    return ".".join(
        (_b64(orjson.dumps(header)), _b64(orjson.dumps(payload)), _b64(secrets.token_bytes(32)))
    )


def mint_access_token(sub: str = "user-1", ttl: float = 30 * 86400, **extra_claims) -> str:
    """An access JWT (typ "access", app_id "kimi") valid for ``ttl`` seconds (negative = expired)."""
    return _mint(sub, ttl, "access", extra_claims)


def mint_refresh_token(sub: str = "user-1", ttl: float = 90 * 86400) -> str:
    """A refresh JWT (typ "refresh"). Not registered anywhere: use
    ``EmulatorState.issue_refresh_token`` to get one the emulator accepts."""
    return _mint(sub, ttl, "refresh", {})


def decode_claims(token: str) -> dict | None:
    """Payload of a 3-part JWT, or None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not token.startswith("eyJ"):
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def check_access(token: str | None, revoked: set[str],
                 revoked_tokens: set[str] = frozenset()) -> tuple[str | None, str]:
    """Return (sub, "") for a usable access token, else (None, reason)."""
    if not token:
        return None, "missing authorization"
    claims = decode_claims(token)
    if claims is None:
        return None, "malformed token"
    if claims.get("typ") != "access" or claims.get("app_id") != "kimi":
        return None, "not an access token"
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= time.time():
        return None, "token expired"
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        return None, "token without subject"
    if sub in revoked or token in revoked_tokens:
        return None, "token revoked"
    return sub, ""


def bearer(headers) -> str | None:
    value = headers.get("Authorization", "")
    if value[:7].lower() == "bearer ":
        return value[7:].strip() or None
    return None
