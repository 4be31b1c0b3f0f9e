"""Live access tokens for accounts: refresh, rotation, single-flight (reference, section 4.3).

Kimi's refresh token ROTATES on every refresh, so the new pair is written to the store before
the new access token is used: a crash at any point leaves the store holding a refresh token
that still works.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson

from ..errors import GatewayError, UpstreamUnavailable
from .accounts import DEAD, HEALTHY, Account
from .client import SUBSCRIPTION_PATH
from .decode import UpstreamAuthError
from .fields import field
from .tokens import is_expired, jwt_claims, token_kind

log = logging.getLogger("kimi.auth")

REFRESH_PATH = "/api/account.gateway.v1.AuthService/RefreshToken"
LEGACY_REFRESH_PATH = "/api/auth/token/refresh"


class TokenManager:
    def __init__(self, *, auth_url: str, base_url: str, store, session_for, margin: float = 300.0,
                 timeout: float = 15.0):
        self.auth_url = auth_url.rstrip("/")
        self.base_url = base_url.rstrip("/")
        self.store = store
        self.session_for = session_for
        self.margin = margin
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._inflight: dict[str, asyncio.Future] = {}
        self._restoring: dict[str, asyncio.Future] = {}

    async def restore(self, account: Account) -> None:
        """Pick up the tokens a previous run rotated to (the configured ones may be spent).
        Single-flight: no caller may refresh with the configured token while it loads."""
        if account.restored:
            return
        fut = self._restoring.get(account.key)
        if fut is None:
            fut = asyncio.ensure_future(self._restore(account))
            self._restoring[account.key] = fut
            fut.add_done_callback(lambda _: self._restoring.pop(account.key, None))
        await asyncio.shield(fut)

    async def _restore(self, account: Account) -> None:
        row = await self.store.load_tokens(account.key)
        if row is None and account.origin == "config":
            # Stores written before tokens were keyed by their full hash: the operator's own
            # configured token may be found by its alias. Never a client's: an alias is short.
            row = await self.store.load_tokens(account.alias)
        account.restored = True
        if row is None:
            return
        refresh, access = row
        if refresh:
            account.refresh_token = refresh
        if access and token_kind(access) == "access":
            account.access_token = access

    async def access_token(self, account: Account) -> str:
        await self.restore(account)
        token = account.access_token
        if token and not is_expired(token, self.margin):
            return token
        if account.refresh_token is None:
            if token and not is_expired(token):
                return token        # close to expiry, but nothing to refresh with
            account.mark_dead("access token expired and no refresh token is known")
            raise UpstreamAuthError("the Kimi access token has expired; use a refresh token "
                                    "(refresh_token from Local Storage) instead",
                                    code="token_expired")
        return await self.refresh(account)

    async def refresh_due(self, accounts: list[Account]) -> None:
        """Proactive refresh: every account whose access token is close to expiry."""
        for account in accounts:
            await self.restore(account)
            if account.state == DEAD or account.refresh_token is None:
                continue
            if account.access_token is None or is_expired(account.access_token, self.margin):
                try:
                    await self.refresh(account)
                except GatewayError as e:
                    log.warning("proactive refresh failed for %s: %s", account.alias, e.code)

    async def drain(self) -> None:
        """Let refreshes in flight finish (and store their rotated token) before shutdown."""
        pending = list(self._inflight.values()) + list(self._restoring.values())
        if pending:
            await asyncio.wait(pending, timeout=15)

    async def refresh(self, account: Account) -> str:
        """Single-flight: concurrent callers for one account share one refresh call."""
        fut = self._inflight.get(account.key)
        if fut is None:
            fut = asyncio.ensure_future(self._refresh(account))
            self._inflight[account.key] = fut
            fut.add_done_callback(lambda _: self._inflight.pop(account.key, None))
        return await asyncio.shield(fut)

    async def _refresh(self, account: Account) -> str:
        rt = account.refresh_token
        if rt is None:
            raise UpstreamAuthError("no refresh token for this account", code="token_expired")
        if rt == account.refused_token:
            _refused(account, rt)   # asking again would only repeat the refusal and its logs
        # The vault is the account's one writer: it stores the rotated pair before it is used,
        # and with several replicas it hands back a pair another one just stored.
        pair = await self.store.rotate(account.key, rt, account.access_token,
                                       lambda token: self._exchange(account, token),
                                       lambda access: not is_expired(access, self.margin))
        if pair is None:
            account.refused_token = rt
            _refused(account, rt)
        account.access_token, account.refresh_token = pair
        if account.state == DEAD:
            account.state, account.last_error = HEALTHY, None
        account.refreshes += 1
        account.refreshed_at = time.time()
        log.info("refreshed access token for %s", account.alias)
        return account.access_token

    async def _exchange(self, account: Account, rt: str):
        return (await self._gateway_refresh(account, rt)
                or await self._legacy_refresh(account, rt))

    async def _gateway_refresh(self, account: Account, rt: str):
        data = await self._call("POST", self.auth_url + REFRESH_PATH, account,
                                json_body={"refresh_token": rt}, what="account gateway")
        return _pair(data, "accessToken", "refreshToken")

    async def _legacy_refresh(self, account: Account, rt: str):
        data = await self._call("GET", self.base_url + LEGACY_REFRESH_PATH, account,
                                headers={"Authorization": f"Bearer {rt}"}, what="legacy endpoint")
        return _pair(data, "access_token", "refresh_token", alt="token")

    async def _call(self, method: str, url: str, account: Account, *, json_body=None,
                    headers=None, what: str = "") -> dict | None:
        """The decoded JSON of a 200 answer; None when refused; raises when unreachable."""
        body = orjson.dumps(json_body) if json_body is not None else None
        h = {"Content-Type": "application/json", "Connect-Protocol-Version": "1", **(headers or {})}
        try:
            async with self.session_for(account).request(method, url, data=body, headers=h,
                                                         timeout=self._timeout) as resp:
                if resp.status != 200:
                    log.info("refresh of %s at the %s refused with HTTP %s", account.alias, what,
                             resp.status)
                    return None
                data = orjson.loads(await resp.read())
        except (aiohttp.ClientError, TimeoutError) as e:
            raise UpstreamUnavailable(f"cannot reach Kimi to refresh a token: {type(e).__name__}",
                                      code="refresh_unreachable", retryable=True) from None
        except orjson.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None


def _refused(account: Account, rt: str):
    if jwt_claims(rt) is None:
        account.mark_dead("not a Kimi token")
        raise UpstreamAuthError("this is not a Kimi token: neither an access JWT nor a refresh "
                                "token Kimi accepts (copy refresh_token from Local Storage)",
                                code="invalid_kimi_token")
    account.mark_dead("Kimi refused the refresh token")
    raise UpstreamAuthError("Kimi refused the refresh token; log in again and replace it",
                            code="refresh_refused")


def _pair(data, access_key: str, refresh_key: str, alt: str | None = None):
    if not data:
        return None
    access = field(data, access_key) or (data.get(alt) if alt else None)
    if not isinstance(access, str) or not access:
        return None
    new_rt = field(data, refresh_key)
    return access, new_rt if isinstance(new_rt, str) and new_rt else None


async def check_live(tokens: TokenManager, account: Account, client, session) -> bool:
    """Seed endpoint /token/check: can this token talk to Kimi right now?

    A refresh token is never exchanged here: Kimi rotates it on every use, so a check would
    spend the token the user holds (and log their browser out). An access token (given, or
    already held by the gateway for this refresh token) is tried against Kimi; a refresh token
    with no access token known is judged by its shape and expiry alone."""
    await tokens.restore(account)
    access = account.access_token
    if access is None or is_expired(access):
        rt = account.refresh_token
        claims = jwt_claims(rt) if rt else None
        return bool(claims and claims.get("typ") == "refresh" and not is_expired(rt))
    try:
        await client.unary(session, access, SUBSCRIPTION_PATH, {})
        return True
    except GatewayError:
        return False
