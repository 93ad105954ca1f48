"""Quatrix error codes and the mapping of ``{code, msg, details}`` bodies onto the SDK errors.

Every error body of the Quatrix API is an ``ErrorModel``: ``{"code": int, "msg": str,
"details": {...}}``. :func:`map_error` turns an error response into the matching class of
the :mod:`mfa_common.errors` hierarchy; the Quatrix code stays reachable as ``error.error_code``
(an int, comparable with :class:`QuatrixErrorCode`), the text as ``error.server_message`` and the
details as ``error.details``.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any

from mfa_common._httpx import Response
from mfa_common.errors import (
    APIStatusError,
    AuthenticationError,
    MfaCodeRejectedError,
    MfaRequiredError,
    PermissionDeniedError,
)
from mfa_common.wire import ErrorBody, json_or_none

__all__ = [
    "MFA_CODE_ERRORS",
    "CaptchaRejectedError",
    "QuatrixErrorCode",
    "SessionExpiredError",
    "UnknownSecondFactorError",
    "UserBlacklistedError",
    "error_code_in",
    "is_json_response",
    "map_error",
    "parse_error_body",
]


class QuatrixErrorCode(IntEnum):
    """The ``code`` values of Quatrix error bodies known from public clients."""

    UNKNOWN = -1
    BAD_PARAMETER_VALUE = 10
    MISSING_PARAMETER = 11
    BAD_HOSTNAME = 12
    ACCOUNT_SUSPENDED = 13
    NOT_AUTHORIZED = 14
    LOGIN_NOT_ALLOWED = 15
    NOT_FOUND = 20
    NOT_SUPPORTED = 21
    OBJECT_EXISTS = 30
    USER_EXISTS = 31
    CONTACT_EXISTS = 32
    RESTRICTION = 50
    EXPIRED = 60
    NOT_ALLOWED = 70
    NOT_ALLOWED_WITHOUT_2FA = 71
    NOT_ALLOWED_WITHOUT_PIN = 73
    USER_BLACKLISTED = 74
    DEACTIVATED = 80
    INACTIVE = 81
    WRONG_AUTH_CODE = 83
    WRONG_USER_PIN = 84
    NO_DATA = 90
    METADATA_NOT_A_DIRECTORY = 91
    PARENT_NOT_SET = 95
    QUOTA_EXCEEDED = 122
    ZERO_SIZE_NOT_ALLOWED = 159


#: Codes meaning "the second factor was refused" (never a dead session).
MFA_CODE_ERRORS = frozenset({QuatrixErrorCode.WRONG_AUTH_CODE, QuatrixErrorCode.WRONG_USER_PIN})


class SessionExpiredError(AuthenticationError):
    """The session id is unknown or expired (Quatrix code 60 with a 401).

    Clients with a session auth backend rarely see it: the backend logs in again and replays the
    call once.
    """


class UserBlacklistedError(AuthenticationError):
    """The user is blacklisted (Quatrix code 74); logging in again will not help."""


class CaptchaRejectedError(AuthenticationError):
    """``/session/unblock-captcha`` answered ``{"valid": false}``: the CAPTCHA token was wrong."""

    def __init__(self, message: str, *, valid: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.valid = valid


def _integer_code(raw: Any) -> int | None:
    """The error code as an int; None for anything else (a non-finite or fractional number,
    a bool, a non-numeric string): servers are not trusted to send what the spec says."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return int(raw) if math.isfinite(raw) and raw.is_integer() else None
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit() and len(raw) < 20:
        return int(raw)
    return None


def is_json_response(response: Response) -> bool:
    """True when the response declares a JSON body (``application/json``, ``...+json``)."""
    media = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def error_code_in(content: bytes) -> int | None:
    """The Quatrix error ``code`` of an error body, or None."""
    body: Any = json_or_none(content)
    return _integer_code(body.get("code")) if isinstance(body, dict) else None


class UnknownSecondFactorError(MfaRequiredError):
    """The server asked for a second factor this SDK does not know (an ``Mfa-Code`` other than
    71 / 73 / 61). ``mfa_code`` is the code, ``session_id`` the partial session (a Secret)."""

    def __init__(
        self, message: str, *, session_id: Any = None, mfa_code: int | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.session_id = session_id
        self.mfa_code = mfa_code


def parse_error_body(response: Response) -> ErrorBody:
    """The :class:`~mfa_common.wire.ErrorBody` of a Quatrix error answer (``code``, ``msg``,
    ``details``); empty when it is not JSON.

    The body is read only when the content type says JSON, as Maytech's own C# client does
    (CONFIRMED there): an HTML error page from a proxy, or text that happens to parse as JSON,
    is never taken for an ``ErrorModel``; the error is then typed by its HTTP status alone.
    """
    body: Any = json_or_none(response.content) if is_json_response(response) else None
    if not isinstance(body, dict):
        return ErrorBody(body=body)
    raw_msg = body.get("msg") or body.get("message")
    raw_details = body.get("details")
    return ErrorBody(
        code=_integer_code(body.get("code")),
        message=raw_msg if isinstance(raw_msg, str) else None,
        details=raw_details if isinstance(raw_details, dict) else {},
        body=body,
    )


def _class_for(status: int, code: int | None) -> type[APIStatusError] | None:
    if code in MFA_CODE_ERRORS:
        return MfaCodeRejectedError
    if code == QuatrixErrorCode.USER_BLACKLISTED:
        return UserBlacklistedError
    if code in (QuatrixErrorCode.NOT_ALLOWED_WITHOUT_2FA, QuatrixErrorCode.NOT_ALLOWED_WITHOUT_PIN):
        return MfaRequiredError
    if status == 401 and code == QuatrixErrorCode.EXPIRED:
        return SessionExpiredError
    if status == 403:
        return PermissionDeniedError
    return None


def map_error(response: Response) -> APIStatusError:
    """The typed error for a Quatrix error response (see the module docstring).

    83 / 84 → :class:`~mfa_common.errors.MfaCodeRejectedError`; 74 → :class:`UserBlacklistedError`;
    71 / 73 → :class:`~mfa_common.errors.MfaRequiredError`; 401 + 60 → :class:`SessionExpiredError`;
    anything else by HTTP status (401 → AuthenticationError, 400 → BadRequestError, ...).
    """
    error = parse_error_body(response)
    code = error.code if isinstance(error.code, int) else None
    cls = _class_for(response.status_code, code)
    extra: dict[str, Any] = {}
    if cls is MfaRequiredError:
        from mfa_common.code_providers import MfaChallenge

        kind = "totp" if code == QuatrixErrorCode.NOT_ALLOWED_WITHOUT_2FA else "pin"
        extra["challenge"] = MfaChallenge(kind=kind)
    return error.error(response, cls, **extra)
