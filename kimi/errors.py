"""Errors the gateway raises, each knowing how a client should see it.

    GatewayError                     500 server_error
    ├── InvalidRequest               400 invalid_request_error (names the field in `param`)
    ├── Unauthorized                 401 authentication_error
    ├── PaymentRequired              402 insufficient_quota (Kimi paywall)
    ├── PermissionDenied             403 permission_error
    ├── NotFound                     404 not_found_error
    ├── Conflict                     409 conflict_error
    ├── PayloadTooLarge              413 invalid_request_error
    ├── RateLimited                  429 rate_limit_error (upstream limit or busy pool)
    ├── UpstreamError                502 upstream_error
    ├── UpstreamUnavailable          503 upstream_error
    └── UpstreamTimeout              504 upstream_error

Routes raise these; one middleware renders them as OpenAI error objects. After a stream has
started, the SSE writer sends the same object in band, then `data: [DONE]`.
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after: float | None = None, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        # True when another account may well succeed where this one failed.
        self.retryable = retryable

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    type = "authentication_error"


class PaymentRequired(GatewayError):
    status = 402
    type = "insufficient_quota"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"


class Conflict(GatewayError):
    status = 409
    type = "conflict_error"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"


class UpstreamError(GatewayError):
    status = 502
    type = "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 503


class UpstreamTimeout(UpstreamError):
    status = 504
