"""The MetalCloud login machine: sans-I/O, run by :func:`mfa_common.auth.driver.drive`.

1. ``POST /api/v2/login`` with e-mail and password (:func:`password_flow`). The answer is a
   ``User``; "2FA required" is ``authenticatorEnabled: true`` on it (the fake's way) or a 401/403
   whose message mentions 2FA (both UNCONFIRMED, both understood).
2. ``POST /api/v2/login-2fa`` with ``{"token": <code>}`` (:func:`code_flow`), tied to the
   pending session by sending back what step 1 set: its cookies (the JWT session is most
   plausibly a cookie) and its token. The cookies live only in the pending
   :class:`LoginResult` and go only to the bound base URL, never to another origin. Settled by
   :func:`code_settlement`.

Where the JWT is found is :func:`metalcloud_async.protocol.extract_jwt`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from mfa_common._httpx import Headers, Request, Response
from mfa_common.auth import jwt_expiry
from mfa_common.auth.machine import LoginFlow, SendCode, SendStep, Settlement
from mfa_common.code_providers import IssuedCode, MfaChallenge
from mfa_common.errors import ResponseDecodeError
from mfa_common.secret import Secret
from mfa_common.wire import json_or_none, structure

from . import _constants as C
from .errors import (
    MetalCloudMfaRequiredError,
    TwoFactorEnrolmentRequiredError,
    map_code_rejection,
    map_error,
    parse_error_body,
)
from .models import (
    AuthenticationProperties,
    AuthenticationRequest,
    LoginResult,
    TwoFactorAuthenticationToken,
    User,
    converter,
)
from .protocol import JwtFound, cookie_header, extract_jwt, mentions_two_factor

__all__ = [
    "JwtSession",
    "code_flow",
    "code_settlement",
    "login_flow",
    "logout_request",
    "password_flow",
    "session_headers",
]

Build = Callable[..., Request]


@attrs.frozen
class JwtSession:
    """A JWT session: the token, when to refresh it (Unix seconds, None: no ``exp``), the user."""

    token: Secret[str]
    refresh_at: float | None
    user: User | None = None
    source: str | None = None

    @property
    def password_change_required(self) -> bool:
        """The user of this session must change the password (``User.passwordChangeRequired``)."""
        return self.user is not None and self.user.password_change_required


def code_settlement(status: int, headers: Headers, content: bytes) -> Settlement:
    """What became of the code sent with ``POST /api/v2/login-2fa``.

    * 200 → accepted;
    * 400, 401, 403 → rejected: the body holds nothing but the token, and the sibling
      ``2fa-enable`` documents its 400 as "Invalid user ID or token";
    * 404 "User not found" (no pending login to check the code against) and 429 → not sent;
    * anything else → unknown.
    """
    if 200 <= status < 300:
        return Settlement.ACCEPTED
    if status in (400, 401, 403):
        return Settlement.REJECTED
    if status in (404, 429):
        return Settlement.NOT_SENT
    return Settlement.UNKNOWN


def enable_2fa_settlement(status: int, headers: Headers, content: bytes) -> Settlement:
    """What became of the code sent with ``POST /api/v2/user/actions/2fa-enable``: 2xx →
    accepted; 400 ("Invalid user ID or token") → rejected; 429 → not sent; anything else
    (409 already enabled, 412/428, 5xx) → unknown, so the time step is never offered again."""
    if 200 <= status < 300:
        return Settlement.ACCEPTED
    if status == 400:
        return Settlement.REJECTED
    if status == 429:
        return Settlement.NOT_SENT
    return Settlement.UNKNOWN


def _result(response: Response, body: Any, *, mfa_required: bool) -> LoginResult:
    found: JwtFound | None = extract_jwt(response, body)
    user = structure(converter, body, User, response) if isinstance(body, dict) and "id" in body else None
    if user is not None:
        user = attrs.evolve(user, etag=response.headers.get("etag"))
    return LoginResult(
        user=user,
        token=found.token if found else None,
        cookies=dict(found.cookies) if found else {},
        mfa_required=mfa_required,
        source=found.source if found else None,
    )


def session_headers(step: LoginResult) -> dict[str, str]:
    """What carries a login step's session (its bearer token and cookies): ties ``login-2fa``
    to the pending login, and an enrolment-only session to its enrolment calls."""
    headers: dict[str, str] = {}
    if step.token is not None:
        headers["Authorization"] = f"Bearer {step.token.reveal()}"
    cookies = dict(step.cookies)
    if step.token is not None and step.source and step.source.startswith("cookie:"):
        cookies.setdefault(step.source.split(":", 1)[1], step.token)
    if cookies:
        headers["Cookie"] = cookie_header(cookies)
    return headers


def password_flow(
    build: Build, email: str, password: Secret[str], *, provider: str = C.DEFAULT_PROVIDER
) -> LoginFlow[LoginResult]:
    """Step 1. Raises the mapped error unless the answer is a success or a "2FA required"
    refusal; ``mfa_required`` tells whether ``login-2fa`` must follow."""
    payload = converter.unstructure(
        AuthenticationRequest(provider, AuthenticationProperties(email=email, password=password))
    )
    answer = yield SendStep(build("POST", f"{C.API_PREFIX}/login", json=payload), name="password")
    response = answer.response
    if response.status_code in (401, 403) and mentions_two_factor(parse_error_body(response).message):
        return _result(response, None, mfa_required=True)
    if response.status_code >= 400:
        raise map_error(response)
    step = _result(response, json_or_none(response.content), mfa_required=False)
    if step.user is None:
        raise ResponseDecodeError(
            "POST /api/v2/login: the answer is not a User", status_code=response.status_code
        )
    # A forced re-enrolment skips the old authenticator: the session is for enrolling a new one.
    two_factor = step.user.authenticator_enabled and not step.user.authenticator_must_change
    return attrs.evolve(step, mfa_required=two_factor)


def code_flow(
    build: Build,
    pending: LoginResult,
    *,
    email: str | None = None,
    unanswerable: BaseException | None = None,
) -> LoginFlow[LoginResult]:
    """Step 2: a code for the pending login. A refused code raises
    :class:`~metalcloud_async.errors.TwoFactorCodeRejectedError`."""
    headers = session_headers(pending)

    def request_for(issued: IssuedCode) -> Request:
        payload = converter.unstructure(TwoFactorAuthenticationToken(issued.value))
        return build("POST", f"{C.API_PREFIX}/login-2fa", json=payload, headers=headers)

    challenge = MfaChallenge(kind="totp", user=email)
    answer = yield SendCode(challenge, request_for, code_settlement, unanswerable)
    response = answer.response
    if response.status_code >= 400:
        raise map_code_rejection(response)
    return _result(response, json_or_none(response.content), mfa_required=False)


def refresh_at(token: Secret[str], now: float, margin: float) -> float | None:
    """When to renew a JWT: ``margin`` seconds before its ``exp``, at most half its lifetime
    early; None without an ``exp``."""
    exp = jwt_expiry(token)
    if exp is None:
        return None
    lifetime = max(exp - now, 0.0)
    return exp - min(margin, lifetime / 2)


def login_flow(
    build: Build,
    email: str,
    password: Secret[str],
    *,
    provider: str = C.DEFAULT_PROVIDER,
    can_answer: bool,
) -> LoginFlow[LoginResult]:
    """The whole login: the password, then the second factor when the server asks for it.
    Returns the final step, whose ``token`` is the session JWT."""
    step: LoginResult = yield from password_flow(build, email, password, provider=provider)
    if step.enrolment_required:
        raise TwoFactorEnrolmentRequiredError(
            "POST /api/v2/login: an administrator requires a new authenticator for this "
            "account; enrol one (SessionAPI.complete_reenrolment), then log in again",
            status_code=200,
            challenge=MfaChallenge(kind="totp", user=email),
            step=step,
        )
    if step.mfa_required:
        unanswerable = None
        if not can_answer:
            unanswerable = MetalCloudMfaRequiredError(
                "POST /api/v2/login: this account has 2FA; give the auth backend a code provider",
                status_code=200,
                challenge=MfaChallenge(kind="totp", user=email),
            )
        step = yield from code_flow(build, step, email=email, unanswerable=unanswerable)
    if step.token is None:
        raise ResponseDecodeError(
            "login succeeded but the answer carried no JWT (looked for a jwt/token cookie, an "
            "Authorization or X-Auth-Token header and a token/jwt body field)"
        )
    return step


def logout_request(build: Build, token: Secret[str]) -> Request:
    """``POST /api/v2/logout`` with the session JWT."""
    return build("POST", f"{C.API_PREFIX}/logout", headers={"Authorization": f"Bearer {token.reveal()}"})
