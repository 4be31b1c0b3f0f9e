"""How the HTTP server treats connections and requests it cannot parse.

- An idle connection (none of its requests in progress, also one that never finishes sending
  a request head) is closed after `[server] idle_connection_seconds`, not aiohttp's 75 s.
- A request aiohttp's parser refuses (an oversized header, bad chunking, a malformed line) is
  logged as one line naming the error class: the parser's own message quotes the bytes it
  choked on, which may be a header holding a key or a token.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

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


def handler_args(idle_seconds: float) -> dict:
    """Keyword arguments for aiohttp's request handler (web.Application(handler_args=...))."""
    return {"keepalive_timeout": idle_seconds, "logger": ParserErrorLog()}
