"""One error hierarchy for every package of the SDK.

::

    MfaSdkError
    ├── InvalidInputError (also a ValueError): bad caller input, raised before any request
    │   ├── InvalidSecretError, InvalidOtpauthUriError, InvalidCodeError,
    │   ├── InvalidRecoveryCodeError, InsecureTransportError
    ├── RecoveryCodesExhaustedError, ClientClosedError
    ├── StateFileError (also an OSError): a state file or its directory cannot be used
    └── APIError: something happened on the wire; carries method, URL (secrets redacted), request id
        ├── APIConnectionError (request_sent tells whether the server may have seen it)
        │   ├── APITimeoutError
        │   └── OutcomeUnknownError: a write was sent and its answer could not be read
        │       └── OutcomeUnknownTimeoutError (also an APITimeoutError): no answer in time
        ├── ResponseDecodeError
        ├── ResponseTooLargeError: a header or body above the configured limit
        └── APIStatusError: status, parsed body, API error code, message, response
            ├── BadRequestError 400, AuthenticationError 401, PermissionDeniedError 403,
            ├── NotFoundError 404, ConflictError 409, PreconditionFailedError 412,
            ├── UnprocessableEntityError 422, PreconditionRequiredError 428,
            ├── RateLimitError 429 (retry_after), ServerError 5xx,
            ├── RedirectError 3xx (never followed; ``location`` redacted)
            └── the MFA family (also subclasses of MfaError):
                MfaRequiredError, MfaCodeRejectedError, MfaTokenExpiredError,
                RecoveryCodeRejectedError, CaptchaRequiredError, AccountLockedError

Messages never contain credentials: the URL is redacted, and bodies are parsed by the
API-specific error parser, which keeps only the server's error code, message and details.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._httpx import Response


__all__ = [
    "STATUS_ERRORS",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AccountAwaitingApprovalError",
    "AccountLockedError",
    "AuthenticationError",
    "BadRequestError",
    "CaptchaRequiredError",
    "ClientClosedError",
    "ConflictError",
    "InsecureTransportError",
    "InvalidCodeError",
    "InvalidInputError",
    "InvalidOtpauthUriError",
    "InvalidRecoveryCodeError",
    "InvalidSecretError",
    "MfaCodeRejectedError",
    "MfaError",
    "MfaRequiredError",
    "MfaSdkError",
    "MfaTokenExpiredError",
    "NotFoundError",
    "OutcomeUnknownError",
    "OutcomeUnknownTimeoutError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "PreconditionRequiredError",
    "RateLimitError",
    "RecoveryCodeRejectedError",
    "RecoveryCodesExhaustedError",
    "RedirectError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ServerError",
    "StateFileError",
    "UnprocessableEntityError",
    "status_error_class",
    "unix_to_datetime",
]


class MfaSdkError(Exception):
    """Base class of every error raised by the SDK."""


# --------------------------------------------------------------------------- caller input


class InvalidInputError(MfaSdkError, ValueError):
    """The caller passed something the SDK refuses to send. Nothing was sent."""


class InvalidSecretError(InvalidInputError):
    """A TOTP secret is not valid base32 (or decodes to nothing usable)."""


class InvalidOtpauthUriError(InvalidInputError):
    """An ``otpauth://`` URI is malformed."""


class InvalidCodeError(InvalidInputError):
    """A one-time code has the wrong length or alphabet."""


class InvalidRecoveryCodeError(InvalidInputError):
    """A recovery code does not match the provider's format."""


class InsecureTransportError(InvalidInputError):
    """Credentials would travel over plain ``http://`` to a host that is not loopback."""


class RecoveryCodesExhaustedError(MfaSdkError):
    """The recovery-code store has no unused code left."""


class ClientClosedError(MfaSdkError):
    """The client was used after ``aclose()``."""


class StateFileError(MfaSdkError, OSError):
    """A file the SDK keeps state in (a recovery-code store, a batch journal, the TOTP step
    state, the command-line tools' saved sessions, login record and plans), or its directory,
    cannot be used: a link at its path, another user's file, a file open to others, damaged or
    of a format this version does not know, a directory that cannot be written. The message
    names the path (also in ``path``) and what to do; the file is left as it was."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


# --------------------------------------------------------------------------- wire errors


class APIError(MfaSdkError):
    """An error that arose while talking to the server."""

    method: str | None
    url: str | None
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url
        self.request_id = request_id


class APIConnectionError(APIError):
    """The connection failed. ``request_sent`` is False only when the request surely never left."""

    def __init__(self, message: str, *, request_sent: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """A timeout or the call's total deadline expired."""


class OutcomeUnknownError(APIConnectionError):
    """A write reached the server but its answer could not be read (the connection dropped
    mid-answer, or a 2xx arrived with an unreadable body). The write may have been applied:
    check before repeating it. ``status_code`` is the status when one arrived."""

    def __init__(self, message: str, *, status_code: int | None = None, **kw: Any) -> None:
        kw.setdefault("request_sent", True)
        super().__init__(message, **kw)
        self.status_code = status_code


class OutcomeUnknownTimeoutError(APITimeoutError, OutcomeUnknownError):
    """A non-idempotent request was sent and timed out before its answer: an
    :class:`OutcomeUnknownError` (check before repeating the write) that is also an
    :class:`APITimeoutError`, so code that catches timeouts still catches it."""


class ResponseTooLargeError(APIError):
    """The answer's headers or body exceeded the client's size limit (``limit`` bytes).

    Deterministic: never retried. ``status_code`` is the status when headers arrived."""

    def __init__(self, message: str, *, limit: int, status_code: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.limit = limit
        self.status_code = status_code


class ResponseDecodeError(APIError):
    """The server answered with a body the SDK cannot read (malformed JSON, wrong shape)."""

    def __init__(self, message: str, *, status_code: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.status_code = status_code


class APIStatusError(APIError):
    """The server answered with an error status.

    Attributes: ``status_code``; ``body`` (parsed JSON or text); ``error_code`` (the API's own
    code, e.g. Quatrix ``83``); ``server_message``; ``details``; ``response`` (the raw response,
    whose request headers may hold credentials: do not log it).
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        error_code: int | str | None = None,
        server_message: str | None = None,
        details: Mapping[str, Any] | None = None,
        response: Response | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.status_code = status_code
        self.body = body
        self.error_code = error_code
        self.server_message = server_message
        self.details = dict(details) if details else {}
        self.response = response


class RedirectError(APIStatusError):
    """3xx: the SDK never follows a redirect (credentials must not reach another URL), and a
    redirect is not a success. ``location`` is the redacted ``Location`` header."""

    def __init__(self, message: str, *, location: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.location = location


class BadRequestError(APIStatusError):
    """400."""


class AuthenticationError(APIStatusError):
    """401: the credential is missing, wrong or expired."""


class PermissionDeniedError(APIStatusError):
    """403."""


class NotFoundError(APIStatusError):
    """404."""


class ConflictError(APIStatusError):
    """409: e.g. 2FA already enabled."""


class PreconditionFailedError(APIStatusError):
    """412: the ``If-Match`` revision is stale; re-read the resource."""


class UnprocessableEntityError(APIStatusError):
    """422."""


class PreconditionRequiredError(APIStatusError):
    """428: the write needs an ``If-Match`` revision."""


class RateLimitError(APIStatusError):
    """429. ``retry_after`` (seconds) when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx."""


# --------------------------------------------------------------------------- the MFA family


class MfaError(MfaSdkError):
    """Mixin marking the MFA-specific errors."""


class MfaRequiredError(APIStatusError, MfaError):
    """The server demands a second factor. ``challenge`` describes what it wants."""

    def __init__(self, message: str, *, challenge: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.challenge = challenge


class MfaCodeRejectedError(AuthenticationError, MfaError):
    """The one-time code (TOTP or PIN) was rejected: wrong, expired or reused."""


class MfaTokenExpiredError(AuthenticationError, MfaError):
    """The MFA token of a pending login is unknown or expired; start again from the password."""


class RecoveryCodeRejectedError(AuthenticationError, MfaError):
    """The recovery code was rejected (wrong or already used)."""


class CaptchaRequiredError(APIStatusError, MfaError):
    """Login is blocked until a CAPTCHA is solved. ``session_id`` identifies the blocked session."""

    def __init__(self, message: str, *, session_id: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.session_id = session_id


class AccountAwaitingApprovalError(PermissionDeniedError):
    """The account exists but an administrator has not approved it yet (ShellHub answers a
    login with 423 Locked, ``{"message": "user awaiting approval"}``); retrying will not help."""


class AccountLockedError(RateLimitError, MfaError):
    """Too many failed attempts: the account is locked until ``locked_until`` (UTC)."""

    def __init__(self, message: str, *, locked_until: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.locked_until = locked_until


STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: UnprocessableEntityError,
    428: PreconditionRequiredError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The error class for ``status_code`` (5xx → ServerError, 3xx → RedirectError, other →
    APIStatusError)."""
    if status_code >= 500:
        return ServerError
    if 300 <= status_code < 400:
        return RedirectError
    return STATUS_ERRORS.get(status_code, APIStatusError)


def unix_to_datetime(value: str | float | None) -> datetime | None:
    """Parse a Unix-seconds header value (``X-Account-Lockout``, ``X-Expires-At``); None if absent."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not 0 < seconds <= 1e11:  # also refuses NaN, which no comparison lets through
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
