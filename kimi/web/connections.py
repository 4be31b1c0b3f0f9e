"""How the HTTP server treats connections and requests it cannot parse.

- An idle connection (none of its requests in progress, also one that never finishes sending
  a request head) is closed after `[server] idle_connection_seconds`, not aiohttp's 75 s.
- A request aiohttp's parser refuses (an oversized header, bad chunking, a malformed line) is
  answered with an OpenAI-shaped JSON error, like every other error, and logged as one line
  naming the error class: the parser's own message quotes the bytes it choked on, which may be
  a header holding a key or a token, so neither the answer nor the log repeats it.

aiohttp answers such requests itself, before any middleware, with a plain-text body, and has
no public hook for it (aio-libs/aiohttp#3287): `use_json_errors()` puts a subclass of its
request handler in its place, which changes the answer only for servers built with
`handler_args()` below (the gateway's), not for other aiohttp servers in the process.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

import orjson
from aiohttp import web, web_server
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("kimi.http")


class ParserErrorLog(logging.LoggerAdapter):
    """The `logger` aiohttp's request handler writes to."""

    def __init__(self):
        super().__init__(logging.getLogger("aiohttp.server"), {})

    def exception(self, msg, *args, exc_info=True, **kwargs):
        self._quiet(logging.WARNING, msg, args, exc_info, kwargs)

    def debug(self, msg, *args, **kwargs):
        self._quiet(logging.DEBUG, msg, args, kwargs.pop("exc_info", None), kwargs)

    def _quiet(self, level, msg, args, exc_info, kwargs) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc, HttpProcessingError):
            log.log(level, "%s: malformed HTTP request (%s, HTTP %s)", msg % args,
                    type(exc).__name__, exc.code)
        elif level >= logging.WARNING:
            self.logger.error(msg, *args, exc_info=exc_info, **kwargs)
        else:
            self.logger.debug(msg, *args, exc_info=exc_info, **kwargs)


class _JsonErrorHandler(RequestHandler):
    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        plain = super().handle_error(request, status, exc, message)  # logs; may raise
        if not isinstance(self.logger, ParserErrorLog):
            return plain                            # not the gateway's server
        if isinstance(exc, HttpProcessingError):
            what = ("a header or the request line is longer than the gateway accepts"
                    if isinstance(exc, LineTooLong) else "it is not valid HTTP/1.1")
            text = f"the request could not be parsed: {what} ({type(exc).__name__})"
            kind, code = "invalid_request_error", "malformed_http_request"
        else:
            text = f"the gateway failed to handle the request ({HTTPStatus(status).phrase})"
            kind, code = "server_error", "internal_error"
        body = {"error": {"message": text, "type": kind, "param": None, "code": code}}
        resp = web.Response(status=status, body=orjson.dumps(body),
                            content_type="application/json")
        resp.force_close()
        return resp


def use_json_errors() -> None:
    """aiohttp's servers make their connections' handlers with `_JsonErrorHandler` from now
    on; it answers in JSON only for servers made with `handler_args` (the gateway's)."""
    web_server.RequestHandler = _JsonErrorHandler


def handler_args(idle_seconds: float) -> dict:
    """Keyword arguments for aiohttp's request handler (web.Application(handler_args=...))."""
    return {"keepalive_timeout": idle_seconds, "logger": ParserErrorLog()}
