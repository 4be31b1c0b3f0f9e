"""Calls to Kimi over aiohttp: the streaming Chat call and the unary calls.

Each account has its own persistent ClientSession (its identity: cookies, headers), and all of
them share one connector, so a connection left warm by one account's request serves the next
request of any account. Idle connections are kept `keepalive` seconds (aiohttp's default, 15 s,
is shorter than a user's pause), and `warm_up` opens one at start, so a request rarely pays for
a TCP and TLS handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
from yarl import URL

from ..errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .decode import map_connect_error
from .framing import FLAG_END_STREAM, ConnectFrameDecoder, encode_frame
from .tokens import jwt_claims

CHAT_PATH = "/apiv2/kimi.gateway.chat.v1.ChatService/Chat"
DELETE_PATH = "/apiv2/kimi.chat.v1.ChatService/DeleteChat"
CANCEL_PATH = "/apiv2/kimi.gateway.chat.v1.ChatService/CancelChat"
SUBSCRIPTION_PATH = "/apiv2/kimi.gateway.order.v1.SubscriptionService/GetSubscription"
MODELS_PATH = "/apiv2/kimi.gateway.config.v1.ConfigService/GetAvailableModels"
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/140.0.0.0 Safari/537.36")
MAX_ERROR_BODY = 64 * 1024
DRAIN_SECONDS = 1.0         # how long the end of a response is awaited after its last frame

log = logging.getLogger("kimi.upstream")


def frame_json(body: bytes) -> dict | None:
    """A frame's JSON object (None when it is some other JSON value)."""
    try:
        obj = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        raise UpstreamError("Kimi sent a frame that is not JSON", code="upstream_bad_frame") from None
    return obj if isinstance(obj, dict) else None


class KimiClient:
    def __init__(self, base_url: str, connect_timeout: float, idle_timeout: float,
                 keepalive: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.keepalive = keepalive
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                              sock_read=idle_timeout)
        self._unary_timeout = aiohttp.ClientTimeout(total=connect_timeout + idle_timeout,
                                                    sock_connect=connect_timeout)
        self._connector: aiohttp.TCPConnector | None = None
        self._ending: set[asyncio.Task] = set()    # responses read to their end meanwhile

    def connector(self) -> aiohttp.TCPConnector:
        """The one connection pool of every account (made on first use: it needs the loop)."""
        if self._connector is None or self._connector.closed:
            self._connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300,
                                                   keepalive_timeout=self.keepalive)
        return self._connector

    def new_session(self) -> aiohttp.ClientSession:
        """An account's session: its own cookie jar on the shared connector."""
        return aiohttp.ClientSession(timeout=self._timeout, auto_decompress=True,
                                     connector=self.connector(), connector_owner=False)

    async def warm_up(self) -> bool:
        """Open one connection to Kimi and leave it idle in the pool, so that the first request
        after start does not pay for the handshake. Nothing is sent on it (no request, no
        account); the probe request only names the pool key a real request will use. Failing
        is not fatal: the first request connects then."""
        probe = aiohttp.ClientRequest("POST", URL(self.base_url + CHAT_PATH),
                                      loop=asyncio.get_running_loop(), ssl=True)
        try:
            conn = await self.connector().connect(probe, [], self._unary_timeout)
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            log.info("could not open a connection to Kimi ahead of requests: %s",
                     type(e).__name__)
            return False
        conn.release()
        return True

    async def close(self) -> None:
        for task in list(self._ending):
            task.cancel()
        if self._connector is not None:
            await self._connector.close()

    def headers(self, token: str, content_type: str) -> dict[str, str]:
        """Request headers for a token. They are built once per token (its JWT read once),
        as an account's token serves many requests; each caller gets its own copy."""
        return dict(_headers(self.base_url, token, content_type))

    async def chat(self, session: aiohttp.ClientSession, headers: dict,
                   payload: dict) -> AsyncIterator[list[bytes]]:
        """Yields the data frames of each network read, as one list of their JSON texts (a
        read usually carries several frames; the reader decodes each with `frame_json` in
        turn, so the first piece goes on before the rest of the read is decoded); raises the
        mapped error of an error frame."""
        try:
            resp = await session.post(self.base_url + CHAT_PATH, data=encode_frame(payload),
                                      headers=headers)
            ended = False
            try:
                if resp.status != 200:
                    raise await http_error(resp)
                decoder = ConnectFrameDecoder()
                async for data in resp.content.iter_any():
                    frames = []
                    for flags, body in decoder.feed(data):
                        if flags & FLAG_END_STREAM:
                            ended = True
                            if frames:
                                yield frames
                            obj = frame_json(body)
                            if obj is not None and obj.get("error"):
                                raise map_connect_error(obj["error"])
                            return
                        frames.append(body)
                    if frames:
                        yield frames
            finally:
                self._release(resp, ended)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout("Kimi went silent: no data within the idle timeout",
                                  code="upstream_idle_timeout", retryable=True) from None
        except aiohttp.ClientPayloadError:
            raise UpstreamError("Kimi's stream was cut off", code="upstream_stream_interrupted",
                                retryable=True) from None
        except aiohttp.ClientConnectionError as e:
            raise UpstreamUnavailable(f"cannot reach Kimi: {type(e).__name__}",
                                      code="upstream_unreachable", retryable=True) from None
        raise UpstreamError("Kimi's stream ended without its end-stream frame",
                            code="upstream_stream_interrupted", retryable=True)

    def _release(self, resp: aiohttp.ClientResponse, ended: bool) -> None:
        """aiohttp closes a connection whose response was not read to its end instead of
        keeping it. After the end-stream frame the rest (the chunked terminator) is read in
        the background, so that the answer's end does not wait for it and the connection
        is kept; otherwise (an error, a client gone) the response is released as it is."""
        if not ended or resp.content.at_eof():
            resp.release()
            return
        task = asyncio.get_running_loop().create_task(_read_to_end(resp))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def unary(self, session: aiohttp.ClientSession, token: str, path: str,
                    body: dict, base_url: str | None = None) -> dict:
        url = (base_url or self.base_url).rstrip("/") + path
        try:
            async with session.post(url, data=orjson.dumps(body), timeout=self._unary_timeout,
                                    headers=self.headers(token, "application/json")) as resp:
                if resp.status != 200:
                    raise await http_error(resp)
                data = await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise UpstreamTimeout(f"Kimi did not answer {path.rsplit('/', 1)[-1]} in time",
                                  code="upstream_timeout", retryable=True) from None
        except aiohttp.ClientError as e:
            raise UpstreamUnavailable(f"cannot reach Kimi: {type(e).__name__}",
                                      code="upstream_unreachable", retryable=True) from None
        try:
            obj = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            raise UpstreamError("Kimi answered with something that is not JSON") from None
        return obj if isinstance(obj, dict) else {}


async def _read_to_end(resp: aiohttp.ClientResponse) -> None:
    """Read what follows the end-stream frame (the chunked terminator, normally), then give
    the connection back. Bounded: an upstream that keeps sending or holds the response open
    only costs that connection."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with asyncio.timeout(DRAIN_SECONDS):
            left = MAX_ERROR_BODY
            while left > 0 and (data := await resp.content.readany()):
                left -= len(data)
    resp.release()


async def http_error(resp: aiohttp.ClientResponse):
    """The gateway error for a non-200 answer from Kimi (Connect error JSON, if any)."""
    body = await resp.content.read(MAX_ERROR_BODY)
    try:
        err = orjson.loads(body)
    except orjson.JSONDecodeError:
        err = {}
    if isinstance(err, dict) and isinstance(err.get("error"), dict):
        err = err["error"]
    if not isinstance(err, dict) or not (err.get("code") or err.get("message")):
        err = {"message": f"HTTP {resp.status}"}
    retry_after = None
    if resp.headers.get("Retry-After", "").strip().isdigit():
        retry_after = float(resp.headers["Retry-After"])
    return map_connect_error(err, http_status=resp.status, retry_after=retry_after)


@functools.lru_cache(maxsize=2048)
def _headers(base_url: str, token: str, content_type: str) -> dict[str, str]:
    claims = jwt_claims(token) or {}
    h = {"Authorization": f"Bearer {token}", "Content-Type": content_type,
         "Connect-Protocol-Version": "1", "X-Msh-Platform": "web", "User-Agent": USER_AGENT,
         "Origin": base_url, "Referer": base_url + "/"}
    for header, claim in (("X-Msh-Device-Id", "device_id"), ("X-Msh-Session-Id", "ssid"),
                          ("X-Traffic-Id", "sub")):
        if claims.get(claim):
            h[header] = str(claims[claim])
    return h
