"""Errors the gateway raises: data (status, message, param, code, retry_after), no wire shape.

    GatewayError                     500
    ├── InvalidRequest               400 (names the field in `param`)
    ├── Unauthorized                 401
    ├── PaymentRequired              402 (Kimi paywall)
    ├── PermissionDenied             403
    ├── NotFound                     404
    ├── Conflict                     409
    ├── PayloadTooLarge              413
    ├── RateLimited                  429 (upstream limit or busy pool)
    ├── UpstreamError                502
    ├── UpstreamUnavailable          503
    └── UpstreamTimeout              504

Routes raise these; one middleware renders them in the shape of the route's dialect
(kimi/api/<dialect>/encode.py). After a stream has started, the dialect's encoder sends the
error in band.
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after: float | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        # True when another account may well succeed where this one failed.
        self.retryable = retryable


class InvalidRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class PaymentRequired(GatewayError):
    status = 402


class PermissionDenied(GatewayError):
    status = 403


class NotFound(GatewayError):
    status = 404


class Conflict(GatewayError):
    status = 409


class PayloadTooLarge(GatewayError):
    status = 413


class RateLimited(GatewayError):
    status = 429


class UpstreamError(GatewayError):
    status = 502


class UpstreamUnavailable(UpstreamError):
    status = 503


class UpstreamTimeout(UpstreamError):
    status = 504
