"""The X-MFA-Token login machine: sans-I/O, run by :func:`mfa_common.auth.driver.drive`.

* renewal (:func:`renew_flow`): ``GET /api/auth/user`` with the still-valid JWT mints a fresh one
  on ShellHub; any failure (or a token no newer) falls back to a full login;
* the password (:func:`password_flow`): ``POST /api/login`` → the user, or 401 + ``X-MFA-Token``
  (valid 30 minutes from the answer, whose time the driver hands in);
* the second factor (:func:`code_flow`): a TOTP code with the MFA token to ``/mfa/auth``
  (settled by :func:`code_settlement`), or a recovery code with the identifier to
  ``/mfa/recover`` (:func:`recover_settlement`).

A refused ``/mfa/auth`` (401, 403, or the 500 the official console was written against) is a
rejected code, or a dead MFA token when the answer came 30 minutes or more after the token
(told by time, not by the server's wording); 404 is an unknown token. Never a server fault to
retry: the driver sends code-bearing requests without transport retries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Literal

import attrs

from .._constants import PARTIAL_LOGIN_MAX_AGE
from .._httpx import Headers, Request, Response
from ..auth import jwt_expiry
from ..auth.machine import LoginFlow, SendCode, SendStep, Settlement
from ..code_providers import IssuedCode, MfaChallenge
from ..errors import APIError, APIStatusError, MfaCodeRejectedError, MfaTokenExpiredError
from ..secret import Secret
from .errors import OperationErrorMapper, parse_error_body
from .models import LoginRequest, LoginResult, MfaAuth, MfaRecover, UserAuth, converter
from .protocol import (
    MFA_TOKEN_TTL,
    Operation,
    XMfaPaths,
    expires_at,
    parse_login_response,
    parse_user_auth,
)

__all__ = [
    "LoginOutcome",
    "code_flow",
    "code_settlement",
    "login_flow",
    "password_flow",
    "recover_settlement",
    "renew_flow",
]

Build = Callable[..., Request]
SecondFactor = Literal["totp", "recovery"]


@attrs.frozen
class LoginOutcome:
    """A finished login: the user (with the JWT) and, after a recovery code, the end of the
    recovery window (``X-Expires-At``)."""

    user: UserAuth
    recovery_window_expires_at: datetime | None = None


def code_settlement(status: int, headers: Headers, content: bytes) -> Settlement:
    """What became of a TOTP code sent to ``POST /api/user/mfa/auth``.

    * 2xx → accepted;
    * 500 (what the official console was written against: ShellHub answers 500 for service
      errors with no mapping), 401 and 403 (the authors' rule for a wrong factor) → rejected;
    * 400 (validation failed before the code was looked at), 404 (unknown MFA token) and 429
      → not sent;
    * anything else → unknown.
    """
    if 200 <= status < 300:
        return Settlement.ACCEPTED
    if status in (401, 403, 500):
        return Settlement.REJECTED
    if status in (400, 404, 429):
        return Settlement.NOT_SENT
    return Settlement.UNKNOWN


def recover_settlement(status: int, headers: Headers, content: bytes) -> Settlement:
    """What became of a recovery code sent to ``POST /api/user/mfa/recover``.

    * 2xx → accepted; 401 and 403 (the console's "wrong code") → rejected, never offered again;
    * 400, 404 (unknown identifier) and 429 → not sent: the code goes back to the pool;
    * anything else, a 500 included → unknown: the code is set aside, never reused blindly.
    """
    if 200 <= status < 300:
        return Settlement.ACCEPTED
    if status in (401, 403):
        return Settlement.REJECTED
    if status in (400, 404, 429):
        return Settlement.NOT_SENT
    return Settlement.UNKNOWN


def password_flow(
    build: Build, paths: XMfaPaths, map_error: OperationErrorMapper, username: str, password: Secret[str]
) -> LoginFlow[LoginResult]:
    """``POST /api/login``: the user, or the MFA token and when it expires."""
    answer = yield SendStep(login_request(build, paths, username, password), name="password")
    return parse_login_response(answer.response, map_error, now=answer.now)


def login_request(build: Build, paths: XMfaPaths, username: str, password: Secret[str]) -> Request:
    """``POST /api/login`` with the password."""
    return build("POST", paths.login, json=converter.unstructure(LoginRequest(username, password)))


def auth_error(
    response: Response, map_error: OperationErrorMapper, *, token_age: float | None
) -> APIStatusError:
    """The error of a refused ``/mfa/auth``: see the module docstring. ``token_age`` is how old
    the MFA token was at the answer (None when unknown: then the server's wording decides)."""
    status = response.status_code
    if status not in (401, 403, 404, 500):
        return map_error(response, operation=Operation.AUTH)
    if status == 404 or (token_age is not None and token_age >= MFA_TOKEN_TTL):
        return parse_error_body(response).error(response, MfaTokenExpiredError)
    if token_age is None and status != 500:
        return map_error(response, operation=Operation.AUTH)
    return parse_error_body(response).error(response, MfaCodeRejectedError)


def code_flow(
    build: Build,
    paths: XMfaPaths,
    map_error: OperationErrorMapper,
    *,
    factor: SecondFactor,
    identifier: str | None,
    mfa_token: Secret[str] | None,
    token_at: float | None = None,
    unanswerable: BaseException | None = None,
) -> LoginFlow[LoginOutcome]:
    """The second factor: a TOTP code for ``mfa_token`` (obtained at ``token_at``), or a
    recovery code for ``identifier``."""
    challenge = MfaChallenge(kind=factor, user=identifier)

    def request_for(issued: IssuedCode) -> Request:
        if factor == "recovery":
            assert identifier is not None
            return build(
                "POST", paths.recover, json=converter.unstructure(MfaRecover(identifier, issued.value))
            )
        assert mfa_token is not None
        return build("POST", paths.auth, json=converter.unstructure(MfaAuth(mfa_token, issued.value)))

    table = recover_settlement if factor == "recovery" else code_settlement
    # The MFA token lives 30 minutes: a code that took longer than that (less a margin) to come
    # goes to a fresh login. A recovery-code login has no partial state.
    max_age = MFA_TOKEN_TTL - PARTIAL_LOGIN_MAX_AGE if factor == "totp" else float("inf")
    answer = yield SendCode(challenge, request_for, table, unanswerable, max_age)
    response = answer.response
    if not 200 <= response.status_code < 300:
        if factor == "recovery":
            raise map_error(response, operation=Operation.RECOVER)
        raise auth_error(response, map_error, token_age=None if token_at is None else answer.now - token_at)
    window = expires_at(response.headers) if factor == "recovery" else None
    return LoginOutcome(parse_user_auth(response), window)


def renew_flow(build: Build, paths: XMfaPaths, stale_token: Secret[str]) -> LoginFlow[UserAuth | None]:
    """``GET /api/auth/user`` with the still-valid JWT: a newer token, or None (log in instead)."""
    request = build("GET", paths.current_user, headers={"Authorization": f"Bearer {stale_token.reveal()}"})
    try:
        answer = yield SendStep(request, name="renew")
    except APIError:
        return None
    if answer.response.status_code != 200:
        return None
    try:
        user = parse_user_auth(answer.response)
    except APIError:
        return None
    fresh, old = jwt_expiry(user.token), jwt_expiry(stale_token)
    if fresh is not None and old is not None and fresh <= old:
        return None  # the server did not mint a new token
    return user


def login_flow(
    build: Build,
    paths: XMfaPaths,
    map_error: OperationErrorMapper,
    username: str,
    password: Secret[str],
    *,
    factor: SecondFactor | None,
) -> LoginFlow[LoginOutcome]:
    """The password, then the second factor (``factor``; None: no code source, so an MFA
    account raises :class:`~mfa_common.errors.MfaRequiredError`)."""
    answer = yield SendStep(login_request(build, paths, username, password), name="password")
    result = parse_login_response(answer.response, map_error, now=answer.now)
    if result.user is not None:
        return LoginOutcome(result.user)
    if factor is None:
        raise map_error(answer.response, operation=Operation.LOGIN)
    token_at = None
    if result.mfa_token_expires_at is not None:
        token_at = result.mfa_token_expires_at.timestamp() - MFA_TOKEN_TTL
    outcome: LoginOutcome = yield from code_flow(
        build,
        paths,
        map_error,
        factor=factor,
        identifier=username,
        mfa_token=result.mfa_token,
        token_at=token_at,
    )
    return outcome
