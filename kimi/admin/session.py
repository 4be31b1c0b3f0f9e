"""Who may use the console: the admin key, presented once at login (a session cookie follows)
or on every API call as a Bearer. The cookie holds a random session id, never the key; it is
HttpOnly and SameSite=Strict, and state-changing calls made with it must also carry the
`X-Console` header, which no cross-site form can send."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from aiohttp import web

from ..errors import PermissionDenied, Unauthorized
from ..web.auth import bearer

COOKIE = "kg_console"
SAFE_METHODS = ("GET", "HEAD")


class Sessions:
    def __init__(self, admin_key: str, hours: float, max_sessions: int = 256):
        self._key = admin_key.encode()
        self._ttl = hours * 3600
        self._max = max_sessions
        self._live: dict[str, float] = {}       # sha256 of the session id -> expiry

    def key_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented.encode(), self._key)

    def open(self) -> str:
        now = time.time()
        self._live = {s: t for s, t in self._live.items() if t > now}
        if len(self._live) >= self._max:        # oldest first out: the dict is bounded
            del self._live[min(self._live, key=self._live.get)]
        sid = secrets.token_urlsafe(32)
        self._live[_digest(sid)] = now + self._ttl
        return sid

    def close(self, sid: str | None) -> None:
        if sid:
            self._live.pop(_digest(sid), None)

    def valid(self, sid: str | None) -> bool:
        return bool(sid) and self._live.get(_digest(sid), 0.0) > time.time()

    def logged_in(self, request: web.Request) -> bool:
        return self.valid(request.cookies.get(COOKIE))

    def check(self, request: web.Request) -> None:
        """Raises unless the request comes from a console session or carries the admin key."""
        if self.key_matches(bearer(request)):
            return
        if not self.logged_in(request):
            raise Unauthorized("log in to the console first (or send the admin key as "
                               "'Authorization: Bearer <key>')", code="console_login_required")
        if request.method not in SAFE_METHODS and request.headers.get("X-Console") != "1":
            raise PermissionDenied("a console change must come from the console page",
                                   code="console_header_missing")

    def set_cookie(self, request: web.Request, resp: web.StreamResponse, sid: str) -> None:
        secure = request.headers.get("X-Forwarded-Proto", request.scheme).lower() == "https"
        resp.set_cookie(COOKIE, sid, max_age=int(self._ttl), path="/admin", httponly=True,
                        samesite="Strict", secure=secure)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()
