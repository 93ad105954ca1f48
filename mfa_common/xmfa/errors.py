"""X-MFA error bodies mapped onto the :mod:`mfa_common.errors` hierarchy, and the errors
specific to this API (each a subclass of the closest core error).

Error bodies are ``{"message": ..., "fields": {...}}``. The exact statuses and messages for a
wrong code, an expired MFA token or a used recovery code are UNCONFIRMED (the MFA routes live
in ShellHub's closed cloud overlay), so :func:`map_error` decides by operation first, then by
what the message or ``fields`` talk about, and accepts 401 and 403 (and 404 for an unknown MFA
token) for each case.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._httpx import Response
from ..code_providers import MfaChallenge
from ..errors import (
    AccountAwaitingApprovalError,
    AccountLockedError,
    APIStatusError,
    MfaCodeRejectedError,
    MfaError,
    MfaRequiredError,
    MfaTokenExpiredError,
    RecoveryCodeRejectedError,
)
from ..secret import Secret
from ..wire import JSON_ERRORS, ErrorBody, default_error_mapper, json_or_none, request_of
from .protocol import Operation, XMfaPaths, lockout_until, mfa_token_of

__all__ = [
    "EmailCodeRejectedError",
    "MfaEnableOutcomeUnknownError",
    "MfaEnrolmentError",
    "MfaNotEnabledError",
    "OperationErrorMapper",
    "RecoveryCodesNotStoredError",
    "RecoveryWindowClosedError",
    "is_code_error",
    "is_credential_rejection",
    "map_error",
    "parse_error_body",
]


class EmailCodeRejectedError(MfaCodeRejectedError):
    """The two e-mail codes of an MFA reset (or of a disable by e-mail codes) were refused."""


class RecoveryWindowClosedError(RecoveryCodeRejectedError):
    """A disable without a code was refused: no open recovery window (10 minutes after
    ``mfaRecover``), or its single use was already spent."""


class MfaEnrolmentError(MfaError):
    """Enrolment did not complete. ``mfa_enabled`` says where the account stands:
    ``False`` (nothing changed), ``True`` (MFA is on) or ``None`` (unknown)."""

    mfa_enabled: bool | None = None


class MfaNotEnabledError(MfaEnrolmentError):
    """Enrolment failed and MFA is **not** enabled; the cause is chained (``__cause__``)."""

    mfa_enabled = False


class RecoveryCodesNotStoredError(MfaEnrolmentError):
    """MFA **is** enabled, but the recovery codes could not be stored.

    ``codes`` holds them (as Secrets) so the caller can still save them; ``path`` is where the
    store was to be written, if anywhere.
    """

    mfa_enabled = True

    def __init__(self, message: str, *, codes: Sequence[Secret[str]], path: str | None) -> None:
        super().__init__(message)
        self.codes: tuple[Secret[str], ...] = tuple(codes)
        self.path = path


class MfaEnableOutcomeUnknownError(MfaEnrolmentError):
    """The enable request was sent but its outcome could not be learned (connection lost and
    the follow-up check failed too). ``codes`` and ``secret`` are kept so that, if MFA turns out
    to be on, the caller still has them."""

    mfa_enabled = None

    def __init__(self, message: str, *, codes: Sequence[Secret[str]], secret: Secret[str], **kw: Any) -> None:
        super().__init__(message)
        self.codes: tuple[Secret[str], ...] = tuple(codes)
        self.secret = secret


# --------------------------------------------------------------------------- error bodies


def parse_error_body(response: Response) -> ErrorBody:
    """The :class:`~mfa_common.wire.ErrorBody` of an error answer: ``message``, and ``fields``
    as ``details``; empty when the body is empty or not that shape. Never raises."""
    data = json_or_none(response.content)
    if not isinstance(data, dict):
        return ErrorBody(body=data)
    message = data.get("message")
    raw_fields = data.get("fields")
    fields = {str(k): str(v) for k, v in raw_fields.items()} if isinstance(raw_fields, dict) else {}
    return ErrorBody(
        message=message if isinstance(message, str) and message else None, details=fields, body=data
    )


def _words(error: ErrorBody) -> str:
    return " ".join([error.message or "", *error.details.keys(), *map(str, error.details.values())]).lower()


def _mentions_jwt(text: str) -> bool:
    return "jwt" in text or "api token" in text or "bearer" in text or "authorization" in text


def is_code_error(error: ErrorBody) -> bool:
    """Whether an error body is about a one-time / recovery / e-mail code (not the credential)."""
    text = _words(error)
    return "code" in text and not _mentions_jwt(text)


def _is_token_error(error: ErrorBody) -> bool:
    text = _words(error)
    return "token" in text and not _mentions_jwt(text) and "code" not in text


def is_credential_rejection(response: Response) -> bool:
    """Whether a response says the bearer JWT was refused (so the auth backend logs in again
    and replays once): a 401 whose body is not about a code. A wrong TOTP code on
    ``enable``/``disable`` must not cost a re-login."""
    if response.status_code != 401:
        return False
    return not is_code_error(parse_error_body(response))


def _request_keys(response: Response) -> set[str]:
    """Names (never values) of the JSON fields the request carried."""
    request = request_of(response)
    if request is None:
        return set()
    try:
        data = json.loads(request.content) if request.content else {}
    except (*JSON_ERRORS, RuntimeError):
        return set()
    return {str(k) for k, v in data.items() if v not in (None, "")} if isinstance(data, dict) else set()


# --------------------------------------------------------------------------- the mapper


class OperationErrorMapper(Protocol):
    """:func:`map_error` bound to a client's paths and clock: ``mapper(response)``, or with the
    operation it answers when the request alone does not tell."""

    def __call__(self, response: Response, *, operation: Operation | None = None) -> APIStatusError: ...


def map_error(
    response: Response,
    *,
    operation: Operation | None = None,
    paths: XMfaPaths | None = None,
    now: Callable[[], float] = time.time,
) -> APIStatusError:
    """The typed error of an X-MFA error answer; ``operation`` is inferred from the request
    (by ``paths``) when None, ``now`` dates a lockout's end.

    * 429 with ``X-Account-Lockout`` → :class:`~mfa_common.errors.AccountLockedError`
      (``locked_until``, ``retry_after`` = seconds left);
    * login 401 with ``X-MFA-Token`` → :class:`~mfa_common.errors.MfaRequiredError`; login 423
      (awaiting an administrator's approval) → :class:`~mfa_common.errors.AccountAwaitingApprovalError`;
    * ``authMFA`` 401/403/404 about the token → :class:`~mfa_common.errors.MfaTokenExpiredError`,
      else 401/403 → :class:`~mfa_common.errors.MfaCodeRejectedError`;
    * ``mfaRecover`` 401/403 → :class:`~mfa_common.errors.RecoveryCodeRejectedError`;
    * ``disableMFA`` 401/403 about a code: by what was sent (recovery code →
      RecoveryCodeRejectedError, e-mail codes → EmailCodeRejectedError, TOTP →
      MfaCodeRejectedError); without a code (inside-window disable) 401/403 →
      :class:`RecoveryWindowClosedError`, as for ``recoveryDisableMFA``;
    * ``enableMFA`` 401/403 about a code → MfaCodeRejectedError;
    * ``resetMFA`` 401/403 → :class:`EmailCodeRejectedError`;
    * anything else by status (the core's table).

    Messages carry the server's ``message`` (never request values) and ``details`` its ``fields``.
    """
    status = response.status_code
    error = parse_error_body(response)
    request = request_of(response)
    if operation is None and request is not None:
        operation = (paths or XMfaPaths()).operation_of(request.method, request.url.path)
    awaiting_approval = operation is Operation.LOGIN and status == 423
    if not isinstance(error.body, dict) and response.content and not awaiting_approval:
        return default_error_mapper(response)
    if status == 429:
        until = lockout_until(response.headers)
        if until is not None:
            left = max(0.0, until.timestamp() - now())
            return error.error(response, AccountLockedError, locked_until=until, retry_after=left)
        return error.error(response)
    cls = _class_for(operation, status, error, response)
    if cls is MfaRequiredError:
        return error.error(response, cls, challenge=MfaChallenge(kind="totp"))
    return error.error(response, cls)


def _class_for(
    operation: Operation | None, status: int, error: ErrorBody, response: Response
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
