"""MetalCloud error bodies mapped onto the :mod:`mfa_common.errors` hierarchy.

The spec documents no error schema. The server is a NestJS application (operation ids such as
``UserController_handleEmailVerify``) and the official CLI's own test server answers
``{"message": "...", "statusCode": N}``, so the mapper reads the NestJS default body
``{"statusCode": N, "message": "text" | ["validation", "messages"], "error": "Bad Request"}``
and falls back to the status alone when the body is anything else (the exact real body is
UNCONFIRMED). ``message`` lists are joined for the error text and kept in ``details["messages"]``.

Status classes: 400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError,
404 NotFoundError, 409 ConflictError, 412 PreconditionFailedError (stale ``If-Match``
revision), 428 PreconditionRequiredError (``If-Match`` missing), 429 RateLimitError, 5xx
ServerError.
"""

from __future__ import annotations

from typing import Any

from mfa_common._httpx import Response
from mfa_common.errors import (
    APIStatusError,
    AuthenticationError,
    ConflictError,
    MfaCodeRejectedError,
    MfaRequiredError,
)
from mfa_common.wire import build_status_error, json_or_none

__all__ = [
    "MetalCloudMfaRequiredError",
    "TwoFactorAlreadyDisabledError",
    "TwoFactorAlreadyEnabledError",
    "TwoFactorCodeRejectedError",
    "map_error",
    "parse_error_body",
]


class TwoFactorAlreadyEnabledError(ConflictError):
    """409 from ``2fa-enable``: the caller already has 2FA enabled."""


class TwoFactorAlreadyDisabledError(ConflictError):
    """409 from ``2fa-disable``: the caller has no 2FA to disable."""


class TwoFactorCodeRejectedError(MfaCodeRejectedError):
    """The TOTP code sent to ``login-2fa`` or ``2fa-enable`` was refused (wrong or reused)."""


class MetalCloudMfaRequiredError(MfaRequiredError):
    """The login needs a second factor and the auth backend has no code provider."""


def parse_error_body(response: Response) -> tuple[str | None, Any, dict[str, Any]]:
    """(message, parsed body, details) of an error response; never raises."""
    body: Any = json_or_none(response.content)
    details: dict[str, Any] = {}
    message: str | None = None
    if isinstance(body, dict):
        raw = body.get("message")
        if isinstance(raw, list):
            items = [str(m) for m in raw]
            details["messages"] = items
            message = "; ".join(items) or None
        elif isinstance(raw, str) and raw:
            message = raw
        error = body.get("error")
        if isinstance(error, str) and error:
            details["error"] = error
            message = message or error
        status = body.get("statusCode")
        if isinstance(status, int) and not isinstance(status, bool):
            details["status_code"] = status
    return message, body, details


def map_error(response: Response, *, cls: type[APIStatusError] | None = None) -> APIStatusError:
    """The typed error for a MetalCloud error response (the client's ``error_mapper``)."""
    message, body, details = parse_error_body(response)
    return build_status_error(
        response,
        server_message=message,
        error_code=details.get("error"),
        details=details,
        body=body,
        cls=cls,
    )


def map_code_rejection(response: Response) -> APIStatusError:
    """A 400/401/403 answer to a TOTP code becomes :class:`TwoFactorCodeRejectedError`."""
    if response.status_code in (400, 401, 403):
        return map_error(response, cls=TwoFactorCodeRejectedError)
    return map_error(response)


def is_authentication_error(error: BaseException) -> bool:
    """Whether ``error`` says the credential was refused."""
    return isinstance(error, AuthenticationError)
