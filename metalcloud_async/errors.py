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

import contextlib
from collections.abc import Iterator
from typing import Any

from mfa_common._httpx import Response
from mfa_common.errors import (
    AccountLockedError,
    APIStatusError,
    AuthenticationError,
    ConflictError,
    MfaCodeRejectedError,
    MfaRequiredError,
)
from mfa_common.wire import ErrorBody, json_or_none


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


def parse_error_body(response: Response) -> ErrorBody:
    """The :class:`~mfa_common.wire.ErrorBody` of an error answer (NestJS ``message``,
    ``error``, ``statusCode``; ``code`` is the ``error`` text); never raises."""
    body: Any = json_or_none(response.content)
    if not isinstance(body, dict):
        return ErrorBody(body=body)
    details: dict[str, Any] = {}
    message: str | None = None
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
    return ErrorBody(code=details.get("error"), message=message, details=details, body=body)


_LOCKOUT_HINTS = ("too many failed", "too many login", "locked out", "account is locked")


def is_lockout_message(message: str | None) -> bool:
    """Whether a refused login's message says the address is locked out."""
    lowered = (message or "").lower()
    return any(hint in lowered for hint in _LOCKOUT_HINTS)


def map_error(response: Response, *, cls: type[APIStatusError] | None = None) -> APIStatusError:
    """The typed error for a MetalCloud error response (the client's error mapper); ``cls``
    forces a class (an operation's own, e.g. a 409 that means "already enabled"). A refused
    login whose message says the address is locked out is an
    :class:`~mfa_common.errors.AccountLockedError` (the real server allows 5 failures within
    300 s; its status is UNCONFIRMED: 401, 403 or 429 are read so)."""
    error = parse_error_body(response)
    if cls is None and response.status_code in (401, 403, 429) and is_lockout_message(error.message):
        cls = AccountLockedError
    return error.error(response, cls)


@contextlib.contextmanager
def refined(general: type[APIStatusError], specific: type[APIStatusError]) -> Iterator[None]:
    """Re-raise a ``general`` status error (e.g. any 409) as the operation's ``specific`` class."""
    try:
        yield
    except general as exc:
        if exc.response is None or isinstance(exc, specific):
            raise
        raise map_error(exc.response, cls=specific) from None


def map_code_rejection(response: Response) -> APIStatusError:
    """A 400/401/403 answer to a TOTP code becomes :class:`TwoFactorCodeRejectedError`."""
    if response.status_code in (400, 401, 403):
        return map_error(response, cls=TwoFactorCodeRejectedError)
    return map_error(response)


def is_authentication_error(error: BaseException) -> bool:
    """Whether ``error`` says the credential was refused."""
    return isinstance(error, AuthenticationError)
