"""The X-MFA-Token exchange without I/O: paths, operations, and how to read a login answer.

Everything here works on a ``Response`` object already received (or on headers), so it is
tested without a network. The wire facts (ShellHub, ``openapi/spec``):

* ``POST /api/login`` answers 200 with the user and JWT; **401 with a non-empty** ``X-MFA-Token``
  header (UUID, valid 30 minutes) when MFA is required; **429 with** ``X-Account-Lockout``
  (Unix seconds) while locked out. The server sends both headers on every login answer
  (``""`` and ``0`` when not applicable) and Go canonicalises their names (``X-Mfa-Token``),
  so they are read case-insensitively and an empty value means "absent".
* ``POST /api/user/mfa/recover`` answers with ``X-Expires-At`` (epoch seconds): the end of the
  10-minute recovery window.
* Error bodies are ``{"message": ..., "fields": {...}}`` (read by :mod:`mfa_common.xmfa.errors`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING

import attrs

from .. import _constants as C
from .._httpx import Headers, Response
from ..errors import InvalidCodeError, InvalidInputError, unix_to_datetime
from ..secret import Secret, reveal
from ..totp import validate_code_format
from ..wire import parse_json_body, path_segment, structure
from .models import LoginResult, UserAuth, converter

if TYPE_CHECKING:
    from .errors import OperationErrorMapper

__all__ = [
    "EXPIRES_AT_HEADER",
    "LOCKOUT_HEADER",
    "MFA_TOKEN_HEADER",
    "MFA_TOKEN_TTL",
    "RECOVERY_WINDOW",
    "LoginAnswer",
    "Operation",
    "XMfaPaths",
    "classify_login",
    "expires_at",
    "lockout_until",
    "mfa_token_of",
    "normalize_email_code",
    "parse_login_response",
    "parse_user_auth",
    "totp_code",
]

MFA_TOKEN_HEADER = "X-MFA-Token"
LOCKOUT_HEADER = C.LOCKOUT_HEADER
EXPIRES_AT_HEADER = "X-Expires-At"
#: Lifetime of an ``X-MFA-Token`` on ShellHub (seconds).
MFA_TOKEN_TTL = 30 * 60.0
#: How long a recovery code stays usable to disable MFA after ``mfaRecover`` (seconds).
RECOVERY_WINDOW = 10 * 60.0
_EMAIL_CODE_LENGTH = 5


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


def utc_from_timestamp(ts: float) -> datetime:
    """``ts`` (Unix seconds) as an aware UTC datetime."""
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def parse_user_auth(response: Response) -> UserAuth:
    """The ``UserAuth`` body of a 200 answer (ResponseDecodeError when it is not one)."""
    return structure(converter, parse_json_body(response), UserAuth, response)


def parse_login_response(response: Response, map_error: OperationErrorMapper, *, now: float) -> LoginResult:
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
    raise map_error(response, operation=Operation.LOGIN)


# --------------------------------------------------------------------------- codes sent


def totp_code(code: str | Secret[str]) -> Secret[str]:
    """A 6-digit TOTP code as sent, or :class:`~mfa_common.errors.InvalidCodeError` before
    anything is sent."""
    return Secret(validate_code_format(reveal(code), digits=6))


def normalize_email_code(code: str | Secret[str]) -> Secret[str]:
    """An MFA-reset e-mail code in canonical form: 5 upper-case letters or digits (spaces
    removed, case folded). Anything else raises :class:`InvalidCodeError` before sending."""
    text = "".join(reveal(code).split()).upper()
    if len(text) != _EMAIL_CODE_LENGTH or not text.isascii() or not text.isalnum():
        raise InvalidCodeError("an e-mail code must be 5 letters or digits")
    return Secret(text)
