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

from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, ClassVar

import attrs

from mfa_common import _constants as CORE
from mfa_common._httpx import Request, Response
from mfa_common.auth import ApiKeyAuth, CredentialAuth
from mfa_common.auth.machine import LoginFlow
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider, MfaChallenge, TotpCodeProvider
from mfa_common.secret import Secret, wrap
from mfa_common.totp import Totp
from mfa_common.wire import json_or_none, structure

from . import _constants as C
from . import login_machine
from .login_machine import JwtSession, logout_request
from .models import LogoutResponse, User, converter

if TYPE_CHECKING:
    import anyio

__all__ = ["JwtSession", "MetalCloudApiKeyAuth", "MetalCloudLoginAuth"]


class MetalCloudApiKeyAuth(ApiKeyAuth):
    """``Authorization: Bearer <api key>``; replays a 401 once when the key changed meanwhile.

    Args:
        api_key: The key.
        base_url: The only origin the key is sent to (default: the client's).
    """

    requires_request_body = True

    def __init__(self, api_key: str | Secret[str], *, base_url: str | None = None) -> None:
        super().__init__(api_key, header="Authorization", scheme="Bearer", base_url=base_url)
        self._rotation: anyio.Event | None = None

    def begin_rotation(self) -> None:
        """A regeneration is under way: a 401 meanwhile waits for :meth:`end_rotation`."""
        if self._rotation is None:
            import anyio  # loaded on first use, not by an import of the package

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

    Without a code provider or a TOTP secret, a 2FA user's login raises
    :class:`~metalcloud_async.errors.MetalCloudMfaRequiredError`. ``aclose()`` (called by the
    client's ``aclose``) logs out.

    Args:
        email: The login's e-mail address.
        password: Its password.
        code_provider: Answers the second factor.
        totp_secret: Instead of ``code_provider``: a base32 secret, ``otpauth://`` URI or
            :class:`~mfa_common.totp.Totp`, used through a replay-safe
            :class:`~mfa_common.code_providers.TotpCodeProvider`.
        provider: The authentication provider the login names (``mysql`` by default).
        clock: The clock of codes and JWT expiry.
        refresh_margin: The JWT is refreshed by logging in again this many seconds before its
            ``exp`` (at most half its lifetime early).
        base_url: The only origin the JWT is sent to (default: the client's).
        on_password_change_required: Called with the user after a login whose answer says the
            password must be changed.
    """

    api_name: ClassVar[str] = "metalcloud"

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
        """Use ``password`` for the next logins (after the password was changed).

        Args:
            password: The new password.
        """
        self._password = wrap(password)

    def provider_for(self, challenge: MfaChallenge) -> CodeProvider | None:
        return self.code_provider

    def login_flow(self, stale: JwtSession | None) -> LoginFlow[JwtSession]:
        """The login machine: the password, then the second factor when the server asks."""
        step = yield from login_machine.login_flow(
            self.requestor.build,
            self.email,
            self._password,
            provider=self.provider,
            can_answer=self.code_provider is not None,
        )
        assert step.token is not None
        return JwtSession(token=step.token, refresh_at=None, user=step.user, source=step.source)

    async def acquire(self, stale: JwtSession | None) -> JwtSession:
        """Log in through the driver; the JWT's refresh time is set from the clock at the end."""
        codes_before = self.code_steps
        session = await self.run_login(lambda: self.login_flow(stale))
        if self.code_steps > codes_before:
            self.two_factor_logins += 1
        self.user = session.user
        user = session.user
        if user is not None and user.password_change_required and self.on_password_change_required:
            self.on_password_change_required(user)
        refresh = login_machine.refresh_at(session.token, self.clock.now(), self.refresh_margin)
        return attrs.evolve(session, refresh_at=refresh)

    def apply(self, request: Request, credential: JwtSession) -> None:
        request.headers["Authorization"] = f"Bearer {credential.token.reveal()}"

    def is_expired(self, credential: JwtSession) -> bool:
        return credential.refresh_at is not None and self.clock.now() >= credential.refresh_at

    async def release(self, credential: JwtSession) -> None:
        """``POST /api/v2/logout``; on close the driver's rule makes it shielded, bounded and
        best effort (a dead session or a network error is ignored)."""
        requestor = self.requestor
        await requestor.send(logout_request(requestor.build, credential.token))

    async def logout(self) -> LogoutResponse:
        """Log the current session out now (the next request logs in again)."""
        credential = self.credential
        if credential is None:
            return LogoutResponse()
        self.invalidate(credential)
        requestor = self.requestor
        response = await requestor.send(
            logout_request(requestor.build, credential.token), raise_for_status=True
        )
        return structure(converter, json_or_none(response.content) or {}, LogoutResponse, response)

    async def login(self) -> JwtSession:
        """Log in now (replacing any current session) and return the new session."""
        current = self.credential
        if current is not None:
            self.invalidate(current)
        return await self.get_credential()

    def __repr__(self) -> str:
        return f"MetalCloudLoginAuth(email={self.email!r}, password=Secret('***'))"
