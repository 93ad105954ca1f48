"""Forced 2FA re-enrolment, the user's side: after an administrator set
``authenticatorMustChange`` (``client.users.force_2fa_reenrolment``), the user's next password
login returns a session good only for enrolling a new authenticator. This module enrols one
with that session: ``2fa-generate``, then ``2fa-enable`` with a code of the new secret.

The code comes from, in order of preference: ``code=None`` (the new secret itself, for a service
account that keeps its secret), a fixed code or code provider, or a callable that is given the
new :class:`~metalcloud_async.models.TwoFactorAuthenticationSecret` (show its QR code to a
person, return what they type).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mfa_common._httpx import Response
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider, IssuedCode, MfaChallenge, asettled_if_send_fails
from mfa_common.errors import InvalidInputError
from mfa_common.secret import Secret
from mfa_common.totp import Totp
from mfa_common.wire import parse_json_body, structure

from . import _constants as C
from .errors import (
    TwoFactorAlreadyEnabledError,
    TwoFactorCodeRejectedError,
    TwoFactorEnrolmentRequiredError,
    map_error,
)
from .login_machine import enable_2fa_settlement, session_headers
from .models import LoginResult, TwoFactorAuthenticationSecret, TwoFactorAuthenticationToken, converter

if TYPE_CHECKING:
    from mfa_common.options import RequestOptions
    from mfa_common.requestor import Requestor

__all__ = ["EnrolmentCode", "enrol_with_login_session", "send_enable_code"]

EnrolmentCode = (
    str
    | Secret[str]
    | CodeProvider
    | Totp
    | TwoFactorAuthenticationSecret
    | Callable[[TwoFactorAuthenticationSecret], Awaitable[Any]]
    | None
)


def pending_step(pending: LoginResult | TwoFactorEnrolmentRequiredError) -> LoginResult:
    """The enrolment-only login step of ``pending`` (a step, or the error that carried one)."""
    step = pending.step if isinstance(pending, TwoFactorEnrolmentRequiredError) else pending
    if not isinstance(step, LoginResult) or step.token is None or not step.enrolment_required:
        raise InvalidInputError("this login step holds no enrolment session")
    return step


async def enrol_with_login_session(
    requestor: Requestor, step: LoginResult, code: EnrolmentCode = None, *, clock: Clock | None = None
) -> TwoFactorAuthenticationSecret:
    """Enrol a new authenticator with the enrolment-only session of ``step``; returns the new
    secret (store it: it is the user's second factor from now on). The session ends with it:
    log in again with the new secret."""
    headers = session_headers(step)
    generate = await requestor.request(
        "POST", f"{C.API_PREFIX}/user/actions/2fa-generate", headers=headers, authenticated=False
    )
    secret = structure(converter, parse_json_body(generate), TwoFactorAuthenticationSecret, generate)
    source: Any = secret if code is None else code
    if callable(source) and not hasattr(source, "issue"):
        source = await source(secret)
    from .api_user import code_provider_of  # the code sources of every 2FA call

    provider = code_provider_of(source, clock=clock)
    issued = await provider.issue(MfaChallenge(kind="totp"))
    if step.user is not None:
        headers = {**headers, "If-Match": str(step.user.revision)}
    await send_enable_code(requestor, issued, headers, authenticated=False)
    return secret


async def send_enable_code(
    requestor: Requestor,
    issued: IssuedCode,
    headers: dict[str, str] | None,
    *,
    authenticated: bool = True,
    options: RequestOptions | None = None,
) -> Response:
    """``POST /api/v2/user/actions/2fa-enable`` with ``issued``, settled by
    :func:`~metalcloud_async.login_machine.enable_2fa_settlement` off the event loop (a store
    write runs in a worker thread). Raises :class:`TwoFactorAlreadyEnabledError` (409),
    :class:`TwoFactorCodeRejectedError` (400) or the mapped error of any other refusal."""
    payload = converter.unstructure(TwoFactorAuthenticationToken(issued.value))
    async with asettled_if_send_fails(issued):
        response = await requestor.request(
            "POST",
            f"{C.API_PREFIX}/user/actions/2fa-enable",
            json=payload,
            headers=headers,
            authenticated=authenticated,
            options=options,
            raise_for_status=False,
        )
    settlement = enable_2fa_settlement(response.status_code, response.headers, response.content)
    await issued.asettle(settlement.value)
    if response.status_code == 409:
        raise map_error(response, cls=TwoFactorAlreadyEnabledError)
    if response.status_code == 400:
        raise map_error(response, cls=TwoFactorCodeRejectedError)
    if response.status_code >= 400:
        raise requestor.map_error(response)
    return response
