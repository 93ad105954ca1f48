"""The X-MFA-Token exchange without I/O: paths, how to read a login answer, the error mapper.

Everything here works on a ``Response`` object already received (or on headers), so it is
tested without a network. The wire facts (ShellHub, ``openapi/spec``):

* ``POST /api/login`` answers 200 with the user and JWT; **401 with a non-empty** ``X-MFA-Token``
  header (UUID, valid 30 minutes) when MFA is required; **429 with** ``X-Account-Lockout``
  (Unix seconds) while locked out. The server sends both headers on every login answer
  (``""`` and ``0`` when not applicable) and Go canonicalises their names (``X-Mfa-Token``),
  so they are read case-insensitively and an empty value means "absent".
* ``POST /api/user/mfa/recover`` answers with ``X-Expires-At`` (epoch seconds): the end of the
  10-minute recovery window.
* Error bodies are ``{"message": ..., "fields": {...}}``.

The exact statuses and messages for a wrong code, an expired MFA token or a used recovery
code are UNCONFIRMED (the MFA routes live in ShellHub's closed cloud overlay). The mapper
therefore decides by operation first, then by what the message or ``fields`` talk about, and
accepts 401 and 403 (and 404 for an unknown MFA token) for each case.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import Any

import attrs

from .._httpx import Headers, Request, Response
from ..code_providers import MfaChallenge
from ..errors import (
    AccountAwaitingApprovalError,
    AccountLockedError,
    APIStatusError,
    InvalidInputError,
    MfaCodeRejectedError,
    MfaRequiredError,
    MfaTokenExpiredError,
    RecoveryCodeRejectedError,
    unix_to_datetime,
)
from ..secret import Secret
from ..wire import (
    JSON_ERRORS,
    build_status_error,
    default_error_mapper,
    json_or_none,
    parse_json_body,
    path_segment,
    structure,
)
from .errors import EmailCodeRejectedError, RecoveryWindowClosedError
from .models import ApiError, LoginResult, UserAuth, converter

__all__ = [
    "EXPIRES_AT_HEADER",
    "LOCKOUT_HEADER",
    "MFA_TOKEN_HEADER",
    "MFA_TOKEN_TTL",
    "RECOVERY_WINDOW",
    "LoginAnswer",
    "Operation",
    "XMfaErrorMapper",
    "XMfaPaths",
    "classify_login",
    "expires_at",
    "is_code_error",
    "is_credential_rejection",
    "lockout_until",
    "mfa_token_of",
    "parse_api_error",
    "parse_login_response",
    "parse_user_auth",
]

MFA_TOKEN_HEADER = "X-MFA-Token"
LOCKOUT_HEADER = "X-Account-Lockout"
EXPIRES_AT_HEADER = "X-Expires-At"
#: Lifetime of an ``X-MFA-Token`` on ShellHub (seconds).
MFA_TOKEN_TTL = 30 * 60.0
#: How long a recovery code stays usable to disable MFA after ``mfaRecover`` (seconds).
RECOVERY_WINDOW = 10 * 60.0


class Operation(str, Enum):
    """The operations of the API (``operationId`` in the OpenAPI document)."""

    LOGIN = "login"
    CURRENT_USER = "getUserInfo"
    AUTH = "authMFA"
    GENERATE = "generateMFA"
    ENABLE = "enableMFA"
    DISABLE = "disableMFA"
    RECOVERY_DISABLE = "recoveryDisableMFA"
    RECOVER = "mfaRecover"
    REQUEST_RESET = "requestResetMFA"
    RESET = "resetMFA"


@attrs.frozen
class XMfaPaths:
    """Where each operation lives. Servers differ (``/api/login`` vs its alias
    ``/api/auth/user``; older docs name ``/api/mfa/auth``), so every path can be changed.
    ``reset`` holds ``{user_id}``, replaced by the reset token or the user id."""

    login: str = "/api/login"
    current_user: str = "/api/auth/user"
    auth: str = "/api/user/mfa/auth"
    generate: str = "/api/user/mfa/generate"
    enable: str = "/api/user/mfa/enable"
    disable: str = "/api/user/mfa/disable"
    recovery_disable: str = "/api/user/mfa/recovery/disable"
    recover: str = "/api/user/mfa/recover"
    request_reset: str = "/api/user/mfa/reset"
    reset: str = "/api/user/mfa/reset/{user_id}"

    def __attrs_post_init__(self) -> None:
        if "{user_id}" not in self.reset:
            raise InvalidInputError("XMfaPaths.reset must contain '{user_id}'")

    def reset_path(self, token_or_user_id: str) -> str:
        """The reset path for one token or user id (checked and percent-encoded as one segment)."""
        return self.reset.replace("{user_id}", path_segment(token_or_user_id, "reset token or user id"))

    def operation_of(self, method: str, path: str) -> Operation | None:
        """Which operation a request (method, URL path) is, or None. Paths match by suffix, so
        a base URL with a path prefix works."""
        method = method.upper()
        table: list[tuple[str, str, Operation]] = [
            ("POST", self.login, Operation.LOGIN),
            ("GET", self.current_user, Operation.CURRENT_USER),
            ("POST", self.auth, Operation.AUTH),
            ("GET", self.generate, Operation.GENERATE),
            ("PUT", self.enable, Operation.ENABLE),
            ("PUT", self.disable, Operation.DISABLE),
            ("PUT", self.recovery_disable, Operation.RECOVERY_DISABLE),
            ("POST", self.recover, Operation.RECOVER),
            ("POST", self.request_reset, Operation.REQUEST_RESET),
        ]
        for want_method, want_path, operation in table:
            if method == want_method and path.rstrip("/").endswith(want_path.rstrip("/")):
                return operation
        if method == "PUT":
            prefix, _, suffix = self.reset.partition("{user_id}")
            pattern = re.escape(prefix) + r"[^/]+" + re.escape(suffix) + "$"
            if re.search(pattern, path):
                return Operation.RESET
        return None


# --------------------------------------------------------------------------- headers


def _header(headers: Headers | Mapping[str, str], name: str) -> str:
    if isinstance(headers, Headers):
        value = headers.get(name)
    else:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return (value or "").strip()


def mfa_token_of(headers: Headers | Mapping[str, str]) -> str | None:
    """The ``X-MFA-Token`` value, or None when absent or empty (servers always send the header)."""
    return _header(headers, MFA_TOKEN_HEADER) or None


def lockout_until(headers: Headers | Mapping[str, str]) -> datetime | None:
    """End of the account lockout from ``X-Account-Lockout`` (UTC), or None for ``0``/absent."""
    return unix_to_datetime(_header(headers, LOCKOUT_HEADER) or None)


def expires_at(headers: Headers | Mapping[str, str]) -> datetime | None:
    """End of the recovery window from ``X-Expires-At`` (UTC), or None when absent/unreadable."""
    return unix_to_datetime(_header(headers, EXPIRES_AT_HEADER) or None)


# --------------------------------------------------------------------------- login answers


class LoginAnswer(str, Enum):
    """What a ``POST /api/login`` answer means."""

    OK = "ok"
    MFA_REQUIRED = "mfa_required"
    LOCKED = "locked"
    ERROR = "error"


def classify_login(status: int, headers: Headers | Mapping[str, str]) -> LoginAnswer:
    """Read a login answer by status and headers only.

    200 → OK (even with an empty ``X-MFA-Token`` header); 401 with a non-empty ``X-MFA-Token``
    → MFA_REQUIRED; 429 with a non-zero ``X-Account-Lockout`` → LOCKED; anything else → ERROR
    (a 401 without token is a wrong password, a 429 without lockout a plain rate limit).
    """
    if 200 <= status < 300:
        return LoginAnswer.OK
    if status == 401 and mfa_token_of(headers) is not None:
        return LoginAnswer.MFA_REQUIRED
    if status == 429 and lockout_until(headers) is not None:
        return LoginAnswer.LOCKED
    return LoginAnswer.ERROR


# --------------------------------------------------------------------------- error bodies


def parse_api_error(content: bytes) -> ApiError | None:
    """The ``{message, fields}`` body, or None when the body is empty or not that shape."""
    if not content:
        return None
    data = json_or_none(content)
    if not isinstance(data, dict):
        return None
    message = data.get("message")
    raw_fields = data.get("fields")
    fields: dict[str, str] = {}
    if isinstance(raw_fields, dict):
        fields = {str(k): str(v) for k, v in raw_fields.items()}
    return ApiError(message=message if isinstance(message, str) else "", fields=fields)


def _words(error: ApiError | None) -> str:
    if error is None:
        return ""
    return " ".join([error.message, *error.fields.keys(), *error.fields.values()]).lower()


def _mentions_jwt(text: str) -> bool:
    return "jwt" in text or "api token" in text or "bearer" in text or "authorization" in text


def is_code_error(error: ApiError | None) -> bool:
    """Whether an error body is about a one-time / recovery / e-mail code (not the credential)."""
    text = _words(error)
    return "code" in text and not _mentions_jwt(text)


def _is_token_error(error: ApiError | None) -> bool:
    text = _words(error)
    return "token" in text and not _mentions_jwt(text) and "code" not in text


def is_credential_rejection(response: Response) -> bool:
    """Whether a response says the bearer JWT was refused (so the auth backend logs in again
    and replays once): a 401 whose body is not about a code. A wrong TOTP code on
    ``enable``/``disable`` must not cost a re-login."""
    if response.status_code != 401:
        return False
    return not is_code_error(parse_api_error(response.content))


def _request_of(response: Response) -> Request | None:
    try:
        return response.request
    except RuntimeError:  # a response built by hand has no request
        return None


def _request_keys(response: Response) -> set[str]:
    """Names (never values) of the JSON fields the request carried."""
    request = _request_of(response)
    if request is None:
        return set()
    try:
        data = json.loads(request.content) if request.content else {}
    except (*JSON_ERRORS, RuntimeError):
        return set()
    return {str(k) for k, v in data.items() if v not in (None, "")} if isinstance(data, dict) else set()


class XMfaErrorMapper:
    """Turn an error response into the right class of the core hierarchy.

    * 429 with ``X-Account-Lockout`` → :class:`AccountLockedError` (``locked_until``,
      ``retry_after`` = seconds left);
    * login 401 with ``X-MFA-Token`` → :class:`MfaRequiredError`; login 423 (awaiting an
      administrator's approval) → :class:`AccountAwaitingApprovalError`;
    * ``authMFA`` 401/403/404 about the token → :class:`MfaTokenExpiredError`, else 401/403 →
      :class:`MfaCodeRejectedError`;
    * ``mfaRecover`` 401/403 → :class:`RecoveryCodeRejectedError`;
    * ``disableMFA`` 401/403 about a code: by what was sent (recovery code →
      RecoveryCodeRejectedError, e-mail codes → EmailCodeRejectedError, TOTP →
      MfaCodeRejectedError); without a code (inside-window disable) 401/403 →
      :class:`RecoveryWindowClosedError`, as for ``recoveryDisableMFA``;
    * ``enableMFA`` 401/403 about a code → MfaCodeRejectedError;
    * ``resetMFA`` 401/403 → :class:`EmailCodeRejectedError`;
    * anything else by status (the core's table).

    Messages carry the server's ``message`` (never request values) and ``details`` its ``fields``.
    """

    def __init__(self, paths: XMfaPaths | None = None, *, clock: Any = None) -> None:
        self.paths = paths or XMfaPaths()
        self._now = clock.now if clock is not None else time.time

    def __call__(self, response: Response) -> APIStatusError:
        return self.map(response)

    def map(self, response: Response, operation: Operation | None = None) -> APIStatusError:
        """The error for ``response``; ``operation`` is inferred from the request when None."""
        status = response.status_code
        error = parse_api_error(response.content)
        request = _request_of(response)
        if operation is None and request is not None:
            operation = self.paths.operation_of(request.method, request.url.path)
        awaiting_approval = operation is Operation.LOGIN and status == 423
        if error is None and response.content and not awaiting_approval:
            return default_error_mapper(response)
        kw: dict[str, Any] = {
            "server_message": error.message if error and error.message else None,
            "details": error.fields if error else None,
            "body": attrs.asdict(error) if error else None,
        }
        if status == 429:
            until = lockout_until(response.headers)
            if until is not None:
                left = max(0.0, until.timestamp() - self._now())
                return build_status_error(
                    response, cls=AccountLockedError, locked_until=until, retry_after=left, **kw
                )
            return build_status_error(response, **kw)
        cls = self._class_for(operation, status, error, response)
        if cls is MfaRequiredError:
            return build_status_error(response, cls=cls, challenge=MfaChallenge(kind="totp"), **kw)
        return build_status_error(response, cls=cls, **kw)

    def _class_for(
        self, operation: Operation | None, status: int, error: ApiError | None, response: Response
    ) -> type[APIStatusError] | None:
        denied = status in (401, 403)
        if operation is Operation.LOGIN and status == 401 and mfa_token_of(response.headers):
            return MfaRequiredError
        if operation is Operation.LOGIN and status == 423:
            return AccountAwaitingApprovalError
        if operation is Operation.AUTH:
            if status == 404 or (denied and _is_token_error(error)):
                return MfaTokenExpiredError
            if denied:
                return MfaCodeRejectedError
        if operation is Operation.RECOVER and denied:
            return RecoveryCodeRejectedError
        if operation is Operation.RESET and denied:
            return EmailCodeRejectedError
        if operation is Operation.RECOVERY_DISABLE and denied and not _mentions_jwt(_words(error)):
            return RecoveryWindowClosedError
        if operation is Operation.DISABLE and denied and not _mentions_jwt(_words(error)):
            sent = _request_keys(response)
            if "recovery_code" in sent:
                return RecoveryCodeRejectedError
            if "main_email_code" in sent or "recovery_email_code" in sent:
                return EmailCodeRejectedError
            if "code" in sent:
                return MfaCodeRejectedError
            return RecoveryWindowClosedError
        if operation is Operation.ENABLE and denied and is_code_error(error):
            return MfaCodeRejectedError
        return None


def utc_from_timestamp(ts: float) -> datetime:
    """``ts`` (Unix seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def parse_user_auth(response: Response) -> UserAuth:
    """The ``UserAuth`` body of a 200 answer (ResponseDecodeError when it is not one)."""
    return structure(converter, parse_json_body(response), UserAuth, response)


def parse_login_response(response: Response, mapper: XMfaErrorMapper, *, now: float) -> LoginResult:
    """A login answer as a :class:`LoginResult`, or the typed error (lockout, wrong password).

    ``now`` dates the MFA token, whose 30-minute lifetime starts at the server's answer.
    """
    answer = classify_login(response.status_code, response.headers)
    if answer is LoginAnswer.OK:
        return LoginResult(user=parse_user_auth(response))
    if answer is LoginAnswer.MFA_REQUIRED:
        token = mfa_token_of(response.headers)
        assert token is not None
        return LoginResult(
            mfa_token=Secret(token), mfa_token_expires_at=utc_from_timestamp(now + MFA_TOKEN_TTL)
        )
    raise mapper.map(response, Operation.LOGIN)
