"""MetalCloud auth backends: the API key and the JWT session obtained by a (2FA) login.

Both are ``Authorization: Bearer`` credentials (the spec's ``apiKey`` and ``JWT`` schemes).

* :class:`MetalCloudApiKeyAuth` — the key the official CLI uses. When the client regenerates
  it, :meth:`~mfa_common.auth.ApiKeyAuth.set_key` switches at once, and a request that was in
  flight with the old key and got 401 is replayed once with the new one.
* :class:`MetalCloudLoginAuth` — ``POST /api/v2/login`` with e-mail and password, then, for a
  user with 2FA, ``POST /api/v2/login-2fa`` with a code from a pluggable
  :class:`~mfa_common.code_providers.CodeProvider` (a replay-safe TOTP provider by default when
  a secret is given). Single-flight (1,000 concurrent requests on a cold client log in once),
  refreshed ahead of the JWT's ``exp``, compare-and-invalidate on 401 with one replay, logout on
  close.

How the real server hands out the JWT is UNCONFIRMED (the spec documents only the ``User``
body): the client looks for it in a cookie (``jwt`` first, the choice of the fake), a response
header (``Authorization``, ``X-Auth-Token``) or a body field (``token``, ``jwt``); see
:func:`metalcloud_async.protocol.extract_jwt`. How ``/login`` signals "2FA required" is also
UNCONFIRMED: a 200 ``User`` with ``authenticatorEnabled: true`` (the fake's way) or a 401/403
whose message mentions 2FA are both understood, and ``/login-2fa`` is tied to the pending session
by sending back the cookies and the token ``/login`` returned.

Any other :class:`~mfa_common.auth.CredentialAuth` (such as a backend obtaining the JWT by the
X-MFA-Token exchange) can be given to the client instead; it is bound the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import anyio
import attrs

from mfa_common import _constants as CORE
from mfa_common._constants import PARTIAL_LOGIN_MAX_AGE
from mfa_common._httpx import Request, Response
from mfa_common.auth import ApiKeyAuth, CredentialAuth, jwt_expiry
from mfa_common.client import build_status_error, json_or_none, structure
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider, IssuedCode, MfaChallenge, TotpCodeProvider, send_code
from mfa_common.errors import APIConnectionError, APIStatusError, ResponseDecodeError
from mfa_common.secret import Secret, wrap
from mfa_common.totp import Totp

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
    LogoutResponse,
    TwoFactorAuthenticationToken,
    User,
    converter,
)
from .protocol import JwtFound, cookie_header, extract_jwt, mentions_two_factor

__all__ = [
    "JwtSession",
    "LoginStep",
    "MetalCloudApiKeyAuth",
    "MetalCloudLoginAuth",
    "logout_request",
    "password_step",
    "second_factor_step",
    "session_headers",
]

Send = Callable[[Request], Awaitable[Response]]
Build = Callable[..., Request]


class MetalCloudApiKeyAuth(ApiKeyAuth):
    """``Authorization: Bearer <api key>``; replays a 401 once when the key changed meanwhile."""

    requires_request_body = True

    def __init__(self, api_key: str | Secret[str], *, base_url: str | None = None) -> None:
        super().__init__(api_key, header="Authorization", scheme="Bearer", base_url=base_url)
        self._rotation: anyio.Event | None = None

    def begin_rotation(self) -> None:
        """A regeneration is under way: a 401 meanwhile waits for :meth:`end_rotation`."""
        if self._rotation is None:
            self._rotation = anyio.Event()

    def end_rotation(self) -> None:
        """The regeneration finished (the new key is set, or it failed)."""
        rotation, self._rotation = self._rotation, None
        if rotation is not None:
            rotation.set()

    async def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        if not self._allowed(request):
            yield request
            return
        key = self._key
        self._apply(request)
        response = yield request
        if response.status_code == 401:
            rotation = self._rotation
            if rotation is not None and self._key is key:
                # The server may have rotated the key before the client learnt the new one.
                await rotation.wait()
            if self._key is not key:
                # The key was regenerated while this request was in flight: the old key is dead.
                self._apply(request)
                yield request

    def __repr__(self) -> str:
        return "MetalCloudApiKeyAuth(api_key=Secret('***'))"


@attrs.frozen
class LoginStep:
    """The outcome of one login exchange: the user, the session token and cookies the server
    returned, and whether the second factor is still due (then ``token`` is only good for
    ``login-2fa``)."""

    user: User | None
    token: Secret[str] | None
    cookies: Mapping[str, Secret[str]]
    two_factor_required: bool
    source: str | None = None

    @property
    def enrolment_required(self) -> bool:
        """An administrator forced a new authenticator (``authenticatorMustChange``): ``token``
        only serves enrolling one (see ``AuthAPI.complete_reenrolment``)."""
        return self.user is not None and self.user.authenticator_must_change

    @property
    def password_change_required(self) -> bool:
        """The server says the password must be changed (expired or reset)."""
        return self.user is not None and self.user.password_change_required


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


def _json_or_none(response: Response) -> Any:
    return json_or_none(response.content)


def session_headers(step: LoginStep) -> dict[str, str]:
    """The headers that carry a login step's session (bearer token and cookies)."""
    headers: dict[str, str] = {}
    if step.token is not None:
        headers["Authorization"] = f"Bearer {step.token.reveal()}"
    cookies = dict(step.cookies)
    if step.token is not None and step.source and step.source.startswith("cookie:"):
        cookies.setdefault(step.source.split(":", 1)[1], step.token)
    if cookies:
        headers["Cookie"] = cookie_header(cookies)
    return headers


def _step(response: Response, body: Any, *, two_factor: bool) -> LoginStep:
    found: JwtFound | None = extract_jwt(response, body)
    user = structure(converter, body, User, response) if isinstance(body, dict) and "id" in body else None
    if user is not None:
        user = attrs.evolve(user, etag=response.headers.get("etag"))
    return LoginStep(
        user=user,
        token=found.token if found else None,
        cookies=dict(found.cookies) if found else {},
        two_factor_required=two_factor,
        source=found.source if found else None,
    )


async def password_step(
    send: Send,
    build: Build,
    email: str,
    password: str | Secret[str],
    *,
    provider: str = C.DEFAULT_PROVIDER,
) -> LoginStep:
    """``POST /api/v2/login``. Raises the mapped error unless the answer is a success or a
    "2FA required" refusal; ``two_factor_required`` tells whether ``login-2fa`` must follow."""
    payload = converter.unstructure(
        AuthenticationRequest(provider, AuthenticationProperties(email=email, password=wrap(password)))
    )
    response = await send(build("POST", f"{C.API_PREFIX}/login", json=payload))
    body = _json_or_none(response)
    if response.status_code in (401, 403):
        message, _, _ = parse_error_body(response)
        if mentions_two_factor(message):
            return _step(response, None, two_factor=True)
    if response.status_code >= 400:
        raise map_error(response)
    step = _step(response, body, two_factor=False)
    if step.user is None:
        raise ResponseDecodeError(
            "POST /api/v2/login: the answer is not a User", status_code=response.status_code
        )
    # A forced re-enrolment skips the old authenticator: the session is for enrolling a new one.
    two_factor = step.user.authenticator_enabled and not step.user.authenticator_must_change
    return attrs.evolve(step, two_factor_required=two_factor)


async def second_factor_step(
    send: Send,
    build: Build,
    pending: LoginStep,
    code_provider: CodeProvider,
    *,
    email: str | None = None,
    issued: IssuedCode | None = None,
) -> LoginStep:
    """``POST /api/v2/login-2fa`` with a code from ``code_provider`` (or the already ``issued``
    one), tied to the pending session of ``pending`` (its cookies and token go back to the
    server). A refused code raises :class:`~metalcloud_async.errors.TwoFactorCodeRejectedError`."""
    if issued is None:
        issued = await code_provider.issue(MfaChallenge(kind="totp", user=email))
    payload = converter.unstructure(TwoFactorAuthenticationToken(issued.value))
    request = build("POST", f"{C.API_PREFIX}/login-2fa", json=payload, headers=session_headers(pending))
    response = await send_code(issued, send, request)
    if response.status_code >= 400:
        if response.status_code in (400, 401, 403):
            issued.rejected()
        else:
            issued.unknown()
        raise map_code_rejection(response)
    issued.accepted()
    return _step(response, _json_or_none(response), two_factor=False)


def logout_request(build: Build, token: Secret[str]) -> Request:
    """``POST /api/v2/logout`` with the session JWT."""
    return build("POST", f"{C.API_PREFIX}/logout", headers={"Authorization": f"Bearer {token.reveal()}"})


def _code_provider(
    code_provider: CodeProvider | None, totp_secret: str | Secret[str] | Totp | None, clock: Clock | None
) -> CodeProvider | None:
    if code_provider is not None:
        return code_provider
    if totp_secret is not None:
        return TotpCodeProvider(totp_secret, clock=clock)
    return None


class MetalCloudLoginAuth(CredentialAuth[JwtSession]):
    """JWT session from an e-mail/password login, with 2FA through a code provider.

    ``code_provider`` answers the second factor (or give ``totp_secret``: a base32 secret,
    ``otpauth://`` URI or :class:`~mfa_common.totp.Totp`, used through a replay-safe
    :class:`~mfa_common.code_providers.TotpCodeProvider`). Without either, a 2FA user's login
    raises :class:`~metalcloud_async.errors.MetalCloudMfaRequiredError`.

    The JWT is refreshed by logging in again ``refresh_margin`` seconds before its ``exp`` (at
    most half its lifetime early). ``aclose()`` (called by the client's ``aclose``) logs out.
    """

    def __init__(
        self,
        email: str,
        password: str | Secret[str],
        *,
        code_provider: CodeProvider | None = None,
        totp_secret: str | Secret[str] | Totp | None = None,
        provider: str = C.DEFAULT_PROVIDER,
        clock: Clock | None = None,
        refresh_margin: float = CORE.JWT_REFRESH_MARGIN,
        base_url: str | None = None,
        on_password_change_required: Callable[[User], object] | None = None,
    ) -> None:
        super().__init__(base_url=base_url, clock=clock)
        #: Called with the user after a login whose answer says the password must be changed.
        self.on_password_change_required = on_password_change_required
        self.email = email
        self._password = wrap(password)
        self.code_provider = _code_provider(code_provider, totp_secret, clock)
        self.provider = provider
        self.refresh_margin = refresh_margin
        #: The user returned by the last completed login.
        self.user: User | None = None
        #: Completed second-factor steps (for tests and monitoring).
        self.two_factor_logins = 0

    def set_password(self, password: str | Secret[str]) -> None:
        """Use ``password`` for the next logins (after the password was changed)."""
        self._password = wrap(password)

    def _build(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Request:
        return self.build_request(method, path, json=json, headers=headers)

    async def acquire(self, stale: JwtSession | None) -> JwtSession:
        """Log in (password, then the second factor when the server asks for it)."""
        started = self.clock.now()
        step = await password_step(self.send, self._build, self.email, self._password, provider=self.provider)
        if step.enrolment_required:
            raise TwoFactorEnrolmentRequiredError(
                "POST /api/v2/login: an administrator requires a new authenticator for this "
                "account; enrol one (AuthAPI.complete_reenrolment), then log in again",
                status_code=200,
                challenge=MfaChallenge(kind="totp", user=self.email),
                step=step,
            )
        if step.two_factor_required:
            if self.code_provider is None:
                raise MetalCloudMfaRequiredError(
                    "POST /api/v2/login: this account has 2FA; give the auth backend a code provider",
                    status_code=200,
                    challenge=MfaChallenge(kind="totp", user=self.email),
                )
            issued = await self.code_provider.issue(MfaChallenge(kind="totp", user=self.email))
            if self.clock.now() - started > PARTIAL_LOGIN_MAX_AGE:
                # The pending session may have died while the code was awaited: log in again.
                try:
                    step = await password_step(
                        self.send, self._build, self.email, self._password, provider=self.provider
                    )
                except BaseException:
                    issued.not_sent()
                    raise
            step = await second_factor_step(
                self.send, self._build, step, self.code_provider, email=self.email, issued=issued
            )
            self.two_factor_logins += 1
        if step.token is None:
            raise ResponseDecodeError(
                "login succeeded but the answer carried no JWT (looked for a jwt/token cookie, an "
                "Authorization or X-Auth-Token header and a token/jwt body field)"
            )
        self.user = step.user
        if step.user is not None and step.user.password_change_required and self.on_password_change_required:
            self.on_password_change_required(step.user)
        return JwtSession(
            token=step.token,
            refresh_at=self._refresh_at(step.token),
            user=step.user,
            source=step.source,
        )

    def _refresh_at(self, token: Secret[str]) -> float | None:
        exp = jwt_expiry(token)
        if exp is None:
            return None
        lifetime = max(exp - self.clock.now(), 0.0)
        return exp - min(self.refresh_margin, lifetime / 2)

    def apply(self, request: Request, credential: JwtSession) -> None:
        request.headers["Authorization"] = f"Bearer {credential.token.reveal()}"

    def is_expired(self, credential: JwtSession) -> bool:
        return credential.refresh_at is not None and self.clock.now() >= credential.refresh_at

    async def release(self, credential: JwtSession) -> None:
        """``POST /api/v2/logout`` (best effort: a dead session or a network error is ignored)."""
        with contextlib.suppress(APIConnectionError):
            await self.send(logout_request(self._build, credential.token))

    async def logout(self) -> LogoutResponse:
        """Log the current session out now (the next request logs in again)."""
        credential = self.credential
        if credential is None:
            return LogoutResponse()
        self.invalidate(credential)
        response = await self.send(logout_request(self._build, credential.token))
        if response.status_code >= 400:
            raise map_error(response)
        body = _json_or_none(response)
        return structure(converter, body or {}, LogoutResponse, response)

    async def login(self) -> JwtSession:
        """Log in now (replacing any current session) and return the new session."""
        current = self.credential
        if current is not None:
            self.invalidate(current)
        return await self.get_credential()

    def __repr__(self) -> str:
        return f"MetalCloudLoginAuth(email={self.email!r}, password=Secret('***'))"


def status_error(response: Response, cls: type[APIStatusError] | None = None) -> APIStatusError:
    """A typed error for ``response`` with this API's body parsing."""
    if cls is None:
        return map_error(response)
    message, body, details = parse_error_body(response)
    return build_status_error(response, server_message=message, details=details, body=body, cls=cls)
