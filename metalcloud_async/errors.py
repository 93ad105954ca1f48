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
    PermissionDeniedError,
)
from mfa_common.wire import build_status_error, json_or_none

__all__ = [
    "DelegateAlreadyAddedError",
    "EmailAlreadyInUseError",
    "EmailAlreadyVerifiedError",
    "LoginLockedOutError",
    "MetalCloudMfaRequiredError",
    "ReenrolmentAlreadyPendingError",
    "SshKeyAlreadyPresentError",
    "TwoFactorAlreadyDisabledError",
    "TwoFactorAlreadyEnabledError",
    "TwoFactorCodeRejectedError",
    "TwoFactorEnrolmentRequiredError",
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


class TwoFactorEnrolmentRequiredError(MfaRequiredError):
    """The password was right, but an administrator forced a new authenticator
    (``authenticatorMustChange``): the session only serves enrolment until a new one is enabled.

    ``step`` is the :class:`~metalcloud_async.auth.LoginStep` holding that enrolment-only session;
    finish with :meth:`metalcloud_async.client.SessionAPI.complete_reenrolment`, then log in again.
    """

    def __init__(self, message: str, *, step: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.step = step


class LoginLockedOutError(PermissionDeniedError):
    """``POST /login`` refused because too many failed attempts were made for this address
    (by default 5 within 300 s on the real server). The HTTP status is UNCONFIRMED: a 403 (or
    401) whose message speaks of too many attempts is read as a lockout."""


class EmailAlreadyInUseError(ConflictError):
    """409 from ``POST /users``: a user with this e-mail address exists."""


class EmailAlreadyVerifiedError(ConflictError):
    """409 from ``resend-email-verification``: the address is verified already."""


class SshKeyAlreadyPresentError(ConflictError):
    """409 from ``POST /users/{id}/ssh-keys``: the user has this key already (or is at its limit)."""


class DelegateAlreadyAddedError(ConflictError):
    """409 from ``add-delegate``: that user is a delegate already."""


class ReenrolmentAlreadyPendingError(ConflictError):
    """409 from a configuration update forcing re-enrolment when it is already due."""


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


_LOCKOUT_HINTS = ("too many failed", "too many login", "locked out", "account is locked")


def is_lockout_message(message: str | None) -> bool:
    """Whether a refused login's message says the address is locked out."""
    lowered = (message or "").lower()
    return any(hint in lowered for hint in _LOCKOUT_HINTS)


def map_error(response: Response, *, cls: type[APIStatusError] | None = None) -> APIStatusError:
    """The typed error for a MetalCloud error response (the client's ``error_mapper``)."""
    message, body, details = parse_error_body(response)
    if cls is None and response.status_code in (401, 403, 429) and is_lockout_message(message):
        cls = LoginLockedOutError
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
