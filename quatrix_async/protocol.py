"""The Quatrix login protocol without I/O: what to send, and how to read what came back.

The login is two HTTP exchanges (see the API 1.0 references):

1. ``GET /session/login`` with ``Authorization: Basic base64(email:password)``.
   ``200`` → ``{"session_id": ...}``: logged in. ``207`` → the same body (a *partial* session)
   plus a ``Mfa-Code`` header: ``71`` a TOTP code is needed, ``73`` the user's PIN.
   ``61`` is listed by the oldest document without a meaning (UNCONFIRMED); this SDK reads it as
   "solve a CAPTCHA first", which is what its fake server sends.
2. ``POST /session/login`` with ``X-Auth-Token: <partial session id>`` and
   ``{"auth_type": "2FA" | "PIN", "code": "..."}`` → ``200`` ``{"session_id": ...}`` (the same id
   in practice; a returned id is adopted anyway). The TOTP code goes plain; the PIN as base64
   of its UTF-8 bytes (Maytech's C# client; the 2018 document marks ``code`` as base64): the
   default, with ``pin_encoding="plain"`` for servers that take it plain. A PIN is 5 characters
   (the C# client's rule) and is refused before sending otherwise.

Everything here is pure and tested without a network; :mod:`quatrix_async.login_machine` runs
these pieces as the login machine.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from mfa_common.code_providers import MfaChallenge
from mfa_common.errors import InvalidCodeError, InvalidInputError
from mfa_common.secret import Secret, reveal
from mfa_common.totp import validate_code_format
from mfa_common.wire import json_or_none

from . import _constants as C

if TYPE_CHECKING:
    # The models load on first use (their attrs classes are most of the package's import time).
    from .models import AuthType, LoginResult

__all__ = [
    "PinEncoding",
    "auth_type_for_challenge",
    "auth_type_of",
    "basic_authorization",
    "challenge_for_mfa_code",
    "encode_password",
    "mfa_step_body",
    "parse_mfa_code",
    "read_login_response",
    "session_id_in_body",
    "set_password_body",
    "user_ids",
    "validate_mfa_code",
    "validate_new_password",
]

#: How the PIN travels in the MFA step: base64 of its UTF-8 bytes (default) or plain.
PinEncoding = Literal["base64", "plain"]


def basic_authorization(email: str, password: str | Secret[str]) -> Secret[str]:
    """The ``Authorization`` header value for ``GET /session/login``."""
    raw = f"{email}:{reveal(password)}".encode()
    return Secret("Basic " + base64.b64encode(raw).decode("ascii"))


def parse_mfa_code(headers: Mapping[str, str]) -> int | None:
    """The ``Mfa-Code`` header as an int, whatever the header's case (``mfa-code``, ``MFA-CODE``).

    The document types it as a number, so ``"71"``, ``"71.0"`` and ``" 71 "`` all read as 71.
    """
    value: str | None = None
    for name, raw in headers.items():
        if name.lower() == "mfa-code":
            value = raw
            break
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number)


def challenge_for_mfa_code(mfa_code: int | None, user: str | None = None) -> MfaChallenge | None:
    """The challenge for a 207's ``Mfa-Code`` (71 → totp, 73 → pin), None for anything else."""
    if mfa_code == C.MFA_CODE_2FA:
        return MfaChallenge(kind="totp", user=user, detail="Mfa-Code 71")
    if mfa_code == C.MFA_CODE_PIN:
        return MfaChallenge(kind="pin", user=user, detail="Mfa-Code 73")
    return None


def session_id_in_body(content: bytes) -> Secret[str] | None:
    """The ``session_id`` of a login answer's JSON body, or None."""
    data: Any = json_or_none(content)
    if isinstance(data, dict):
        value = data.get("session_id")
        if isinstance(value, str) and value:
            return Secret(value)
    return None


def read_login_response(
    status_code: int, headers: Mapping[str, str], content: bytes, *, user: str | None = None
) -> LoginResult:
    """Classify the answer of ``GET /session/login`` (see :class:`~quatrix_async.models.LoginResult`).
    An ``Mfa-Code`` header on a 200 is read as on a 207: the session is only partial."""
    from .models import LoginResult

    mfa_code = parse_mfa_code(headers)
    if status_code == 200 and mfa_code is None:
        return LoginResult("logged_in", status_code, session_id_in_body(content))
    if status_code not in (200, 207):
        return LoginResult("error", status_code)
    # A 207, or a 200 that still names a second factor: a challenge, never a success.
    session_id = session_id_in_body(content)
    if mfa_code == C.MFA_CODE_CAPTCHA:
        return LoginResult("captcha", status_code, session_id, mfa_code)
    challenge = challenge_for_mfa_code(mfa_code, user)
    if challenge is None:
        return LoginResult("unknown_mfa", status_code, session_id, mfa_code)
    return LoginResult("mfa", status_code, session_id, mfa_code, challenge)


def auth_type_for_challenge(challenge: MfaChallenge) -> AuthType:
    """``"PIN"`` for a pin challenge, ``"2FA"`` for anything else."""
    from .models import AuthType

    return AuthType.PIN if challenge.kind == "pin" else AuthType.TWO_FA


def validate_mfa_code(auth_type: AuthType, code: str | Secret[str]) -> Secret[str]:
    """Refuse an obviously malformed code before it costs a failed attempt.

    A 2FA code must be 6 digits (spaces are dropped); a PIN must be 5 characters without spaces
    (Maytech's C# client: ``USER_PIN_LENGTH = 5``).
    """
    from .models import AuthType

    value = reveal(code)
    if auth_type == AuthType.TWO_FA:
        return Secret(validate_code_format(value, digits=C.TOTP_DIGITS))
    value = value.strip()
    if len(value) != C.PIN_LENGTH or any(ch.isspace() for ch in value):
        raise InvalidCodeError(f"a PIN must be {C.PIN_LENGTH} characters without spaces")
    return Secret(value)


def mfa_step_body(
    auth_type: AuthType, code: str | Secret[str], *, pin_encoding: PinEncoding = "base64"
) -> dict[str, Any]:
    """JSON body of ``POST /session/login`` in the documented shape ``{auth_type, code}``.

    A PIN is sent as base64 of its UTF-8 bytes unless ``pin_encoding="plain"``. (A 2018 client
    sent ``{"auth_type", "value": {"code" | "pin"}}``; every published document says the flat
    shape, which is what is sent.)
    """
    from .models import AuthType, SessionLoginPostResp, converter

    value = reveal(code)
    if auth_type == AuthType.PIN and pin_encoding == "base64":
        value = base64.b64encode(value.encode("utf-8")).decode("ascii")
    body = SessionLoginPostResp(auth_type=auth_type, code=Secret(value))
    result: dict[str, Any] = converter.unstructure(body)
    return result


def encode_password(password: str | Secret[str]) -> Secret[str]:
    """Base64 of the UTF-8 password, as ``/profile/set-password`` expects."""
    return Secret(base64.b64encode(reveal(password).encode("utf-8")).decode("ascii"))


def validate_new_password(password: str | Secret[str]) -> None:
    """A new password must be 6 to 64 characters (the reference client's rule)."""
    length = len(reveal(password))
    if not C.PASSWORD_MIN_LENGTH <= length <= C.PASSWORD_MAX_LENGTH:
        raise InvalidInputError(
            f"a password must be {C.PASSWORD_MIN_LENGTH} to {C.PASSWORD_MAX_LENGTH} characters long"
        )


def set_password_body(current: str | Secret[str], new: str | Secret[str]) -> dict[str, Any]:
    """JSON body of ``POST /profile/set-password`` with both passwords base64-encoded."""
    validate_new_password(new)
    return {"password": encode_password(current).reveal(), "new_password": encode_password(new).reveal()}


def auth_type_of(value: AuthType | str) -> AuthType:
    """``AuthType`` from an enum member or ``"2FA"`` / ``"PIN"`` (case-insensitive)."""
    from .models import AuthType

    if isinstance(value, AuthType):
        return value
    try:
        return AuthType(str(value).strip().upper())
    except ValueError:
        raise InvalidInputError(f"auth_type must be '2FA' or 'PIN', not {value!r}") from None


def user_ids(ids: Iterable[str]) -> list[str]:
    """A non-empty list of user ids (strings), order kept, duplicates removed."""
    if isinstance(ids, str):
        ids = [ids]
    result = list(dict.fromkeys(ids))
    if not result:
        raise InvalidInputError("at least one user id is required")
    if not all(isinstance(i, str) and i.strip() for i in result):
        raise InvalidInputError("user ids must be non-empty strings")
    return result
