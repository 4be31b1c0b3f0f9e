"""The auth host: account-gateway RefreshToken and the legacy token refresh."""

from __future__ import annotations

from aiohttp import web

from .errors import connect_error
from .state import EmulatorState
from .tokens import bearer, mint_access_token

REFRESH = "/api/account.gateway.v1.AuthService/RefreshToken"
LEGACY_REFRESH = "/api/auth/token/refresh"


def gateway_refresh(state: EmulatorState, body: dict):
    state.refresh_calls += 1
    if state.refresh_gateway_refuses:
        return connect_error(404, "not_found", "method not found")
    token = body.get("refresh_token", body.get("refreshToken"))
    sub = state.use_refresh_token(token if isinstance(token, str) else None)
    if sub is None:
        return connect_error(401, "unauthenticated", "invalid refresh token")
    return {"accessToken": mint_access_token(sub, ttl=state.access_ttl),
            "refreshToken": state.issue_refresh_token(sub)}


def legacy_refresh(state: EmulatorState, request: web.Request):
    state.refresh_calls += 1
    sub = state.use_refresh_token(bearer(request.headers))
    if sub is None:
        return web.json_response({"error_type": "auth.token.invalid",
                                  "message": "refresh token invalid"}, status=401)
    return {"access_token": mint_access_token(sub, ttl=state.access_ttl),
            "refresh_token": state.issue_refresh_token(sub)}
