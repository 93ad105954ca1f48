"""The Quatrix login machine: sans-I/O, run by :func:`mfa_common.auth.driver.drive`.

1. ``GET /session/login`` with HTTP Basic (:func:`password_flow`). ``200`` → logged in; ``207``
   with ``Mfa-Code`` 71 / 73 → a partial session waiting for a TOTP code / the PIN. Any other
   ``Mfa-Code`` (on a 200 or a 207) is a typed challenge carrying the code and the partial
   session, never a success; 61 is a CAPTCHA block.
2. ``POST /session/login`` with the partial session as ``X-Auth-Token`` and the code
   (:func:`code_flow`), settled by :func:`code_settlement`.

The session id is read from the body's ``session_id``, falling back to an ``X-Auth-Token``
response header (an early 1.0 build sent it there), then to the partial session (step 2).
:func:`login_flow` is both steps; the manual-step methods of ``client.session`` run the two
halves through the same driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from mfa_common._httpx import Headers, Request, Response
from mfa_common.auth.machine import Answer, LoginFlow, SendCode, SendStep, Settlement
from mfa_common.client import build_status_error
from mfa_common.code_providers import IssuedCode, MfaChallenge
from mfa_common.errors import CaptchaRequiredError, MfaRequiredError, ResponseDecodeError
from mfa_common.secret import Secret

from . import _constants as C
from . import protocol
from .errors import MFA_CODE_ERRORS, UnknownSecondFactorError, error_code_in, map_error
from .protocol import PinEncoding

if TYPE_CHECKING:
    from .models import AuthType, LoginResult

__all__ = [
    "QuatrixSession",
    "code_flow",
    "code_settlement",
    "login_flow",
    "password_flow",
    "session_id_of",
]

Build = Callable[..., Request]


@attrs.define(eq=False)
class QuatrixSession:
    """A logged-in session: its id (a Secret), when it was made and when it was last used."""

    session_id: Secret[str]
    created_at: float
    last_used: float

    def idle_for(self, now: float) -> float:
        """Seconds since the session was last used."""
        return max(0.0, now - self.last_used)


def code_settlement(status: int, headers: Headers, content: bytes) -> Settlement:
    """What became of the code sent with ``POST /session/login``.

    * 200 → accepted;
    * 401 with Quatrix code 83 (wrong code) or 84 (wrong PIN) → rejected;
    * 400 (a parameter error: the code was not checked) and 429 (the login rate limit, about 15
      per 15 minutes in the docs) → not sent: the code is still good;
    * anything else (another 401: the partial session died; a 5xx; a lost answer) → unknown.
    """
    if status == 200:
        return Settlement.ACCEPTED
    if status in (400, 429):
        return Settlement.NOT_SENT
    if status == 401 and error_code_in(content) in MFA_CODE_ERRORS:
        return Settlement.REJECTED
    return Settlement.UNKNOWN


def session_id_of(response: Response) -> Secret[str] | None:
    """The session id of a login answer: the body's ``session_id``, else ``X-Auth-Token``."""
    found = protocol.session_id_in_body(response.content)
    if found is not None:
        return found
    header = response.headers.get(C.AUTH_TOKEN_HEADER, "").strip()
    return Secret(header) if header else None


def basic_request(build: Build, email: str, password: Secret[str]) -> Request:
    """``GET /session/login`` with ``Authorization: Basic``."""
    header = protocol.basic_authorization(email, password)
    return build("GET", "session/login", headers={"Authorization": header.reveal()})


def _challenge_error(response: Response, step: LoginResult, user: str) -> Exception:
    """The typed error of a first-step answer that is not a plain challenge."""
    if step.kind == "error":
        return map_error(response)
    if step.kind == "captcha":
        return build_status_error(
            response,
            server_message="login is blocked until a CAPTCHA is solved (Mfa-Code 61)",
            error_code=step.mfa_code,
            cls=CaptchaRequiredError,
            session_id=step.session_id,
        )
    return build_status_error(
        response,
        server_message=f"the server asks for an unknown second factor (Mfa-Code {step.mfa_code})",
        error_code=step.mfa_code,
        cls=UnknownSecondFactorError,
        challenge=MfaChallenge(kind="other", user=user, detail=f"Mfa-Code {step.mfa_code}"),
        session_id=step.session_id,
        mfa_code=step.mfa_code,
    )


def password_flow(
    build: Build, email: str, password: Secret[str], *, known_only: bool = True
) -> LoginFlow[tuple[LoginResult, Answer]]:
    """Step 1: the :class:`~quatrix_async.models.LoginResult` of the answer, with the answer.

    An error status raises its typed error. With ``known_only`` (a login, as opposed to a tool
    driving the steps) a CAPTCHA block or an unknown second factor raises too."""
    answer = yield SendStep(basic_request(build, email, password), name="password")
    response = answer.response
    step = protocol.read_login_response(response.status_code, response.headers, response.content, user=email)
    if step.kind == "error" or (known_only and step.kind not in ("logged_in", "mfa")):
        raise _challenge_error(response, step, email)
    session_id = step.session_id or session_id_of(response)
    if session_id is None and step.kind in ("logged_in", "mfa"):
        raise _no_session(response)
    return attrs.evolve(step, session_id=session_id), answer


def mfa_request(
    build: Build, partial: Secret[str], auth_type: AuthType, issued: IssuedCode, *, pin_encoding: PinEncoding
) -> Request:
    """``POST /session/login`` carrying ``issued`` for the partial session (code checked first)."""
    code = protocol.validate_mfa_code(auth_type, issued.value)
    return build(
        "POST",
        "session/login",
        json=protocol.mfa_step_body(auth_type, code, pin_encoding=pin_encoding),
        headers={C.AUTH_TOKEN_HEADER: partial.reveal()},
    )


def code_flow(
    build: Build,
    partial: Secret[str],
    challenge: MfaChallenge,
    *,
    pin_encoding: PinEncoding = "base64",
    unanswerable: BaseException | None = None,
) -> LoginFlow[QuatrixSession]:
    """Step 2: the code for ``challenge`` on the ``partial`` session; returns the session."""
    auth_type = protocol.auth_type_for_challenge(challenge)

    def request_for(issued: IssuedCode) -> Request:
        return mfa_request(build, partial, auth_type, issued, pin_encoding=pin_encoding)

    answer = yield SendCode(challenge, request_for, code_settlement, unanswerable)
    response = answer.response
    if response.status_code != 200:
        raise map_error(response)
    return _session(session_id_of(response) or partial, answer)


def _session(session_id: Secret[str], answer: Answer) -> QuatrixSession:
    return QuatrixSession(session_id=session_id, created_at=answer.now, last_used=answer.now)


def login_flow(
    build: Build,
    email: str,
    password: Secret[str],
    *,
    can_answer: Callable[[MfaChallenge], bool],
    pin_encoding: PinEncoding = "base64",
) -> LoginFlow[QuatrixSession]:
    """The whole login: Basic, then the MFA step when the server answers with a challenge."""
    step, answer = yield from password_flow(build, email, password)
    assert step.session_id is not None
    if step.kind == "logged_in":
        return _session(step.session_id, answer)
    assert step.challenge is not None
    unanswerable = None
    if not can_answer(step.challenge):
        unanswerable = build_status_error(
            answer.response,
            server_message=f"a {step.challenge.kind} code is required but no code provider is configured",
            error_code=step.mfa_code,
            cls=MfaRequiredError,
            challenge=step.challenge,
        )
    session: QuatrixSession = yield from code_flow(
        build, step.session_id, step.challenge, pin_encoding=pin_encoding, unanswerable=unanswerable
    )
    return session


def _no_session(response: Response) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"{response.request.method} {response.request.url.path}: no session_id in the answer",
        status_code=response.status_code,
    )
