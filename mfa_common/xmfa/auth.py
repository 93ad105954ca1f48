"""``XMfaTokenAuth``: the X-MFA-Token exchange as an ``httpx.Auth`` backend.

Login: ``POST /api/login`` with the password; on 401 + ``X-MFA-Token`` a second factor from the
configured :class:`~mfa_common.code_providers.CodeProvider`:

* a TOTP code (``totp=`` or a :class:`~mfa_common.code_providers.TotpCodeProvider`: replay-safe,
  it waits for a step no one in this process used) sent with the token to
  ``POST /api/user/mfa/auth``;
* or a recovery code (``recovery_codes=`` a :class:`~mfa_common.recovery_codes.RecoveryCodeStore`)
  sent with the identifier to ``POST /api/user/mfa/recover``; the code's reservation is settled
  (accepted / rejected / not sent / unknown) so a code is never offered twice, and the end of
  the recovery window is kept in :attr:`XMfaTokenAuth.recovery_window_expires_at`.

The JWT is cached with its expiry from the ``exp`` claim (read without verifying the
signature: the client only needs the time) and renewed ``refresh_margin`` seconds ahead:
first through ``GET /api/auth/user``, which on ShellHub answers with a freshly minted token
(UNCONFIRMED for other servers: any failure there falls back to a full login), so no TOTP step
is spent. Acquisition is single-flight and a 401 that is not about a code invalidates the JWT
it was sent with (compare-and-invalidate) and replays the request once (see
:class:`~mfa_common.auth.CredentialAuth`).
"""

from __future__ import annotations

from datetime import datetime

import attrs

from .. import _constants as C
from .._httpx import URL, Request, Response
from ..auth import CredentialAuth, jwt_expiry
from ..clock import Clock
from ..code_providers import (
    CodeProvider,
    IssuedCode,
    MfaChallenge,
    RecoveryCodeProvider,
    TotpCodeProvider,
    send_code,
)
from ..errors import APIError, MfaRequiredError, ResponseDecodeError
from ..recovery_codes import RecoveryCodeStore
from ..secret import Secret, wrap
from ..totp import Totp
from .models import LoginRequest, MfaAuth, MfaRecover, UserAuth, converter
from .protocol import (
    LoginAnswer,
    Operation,
    XMfaErrorMapper,
    XMfaPaths,
    classify_login,
    expires_at,
    is_credential_rejection,
    mfa_token_of,
    parse_user_auth,
)

__all__ = ["JwtCredential", "XMfaTokenAuth"]


@attrs.frozen
class JwtCredential:
    """A cached JWT: ``token``, ``expires_at`` (``exp``, Unix seconds, None if absent),
    ``refresh_at`` (when to renew) and the ``user`` it belongs to."""

    token: Secret[str]
    expires_at: float | None
    refresh_at: float | None
    user: UserAuth


class XMfaTokenAuth(CredentialAuth[JwtCredential]):
    """Password + second factor → JWT, cached and renewed; see the module docstring.

    Give the second factor as ``totp`` (a :class:`~mfa_common.totp.Totp`, base32 secret or
    ``otpauth://`` URI), ``recovery_codes`` (a store), or any ``code_provider`` (e.g. a
    :class:`~mfa_common.code_providers.CallbackCodeProvider` that asks a person). Without one,
    an MFA account raises :class:`~mfa_common.errors.MfaRequiredError`.
    """

    requires_response_body = True

    def __init__(
        self,
        username: str,
        password: str | Secret[str],
        *,
        totp: Totp | str | Secret[str] | None = None,
        recovery_codes: RecoveryCodeStore | None = None,
        code_provider: CodeProvider | None = None,
        paths: XMfaPaths | None = None,
        clock: Clock | None = None,
        refresh_margin: float = C.JWT_REFRESH_MARGIN,
        refresh_via_current_user: bool = True,
        base_url: str | URL | None = None,
    ) -> None:
        super().__init__(base_url=base_url, clock=clock)
        if sum(x is not None for x in (totp, recovery_codes, code_provider)) > 1:
            raise ValueError("give one of totp, recovery_codes or code_provider")
        self.username = username
        self._password = wrap(password)
        if totp is not None:
            code_provider = TotpCodeProvider(totp, clock=self.clock)
        elif recovery_codes is not None:
            code_provider = RecoveryCodeProvider(recovery_codes)
        self.code_provider = code_provider
        self.paths = paths or XMfaPaths()
        self.mapper = XMfaErrorMapper(self.paths, clock=self.clock)
        self.refresh_margin = refresh_margin
        self.refresh_via_current_user = refresh_via_current_user
        #: End of the recovery window opened by the last recovery-code login, if any.
        self.recovery_window_expires_at: datetime | None = None
        #: Successful renewals through ``GET /api/auth/user`` (no password, no code).
        self.refreshes = 0

    # ------------------------------------------------------------------ CredentialAuth hooks

    def apply(self, request: Request, credential: JwtCredential) -> None:
        request.headers["Authorization"] = f"Bearer {credential.token.reveal()}"

    def is_expired(self, credential: JwtCredential) -> bool:
        return credential.refresh_at is not None and self.clock.now() >= credential.refresh_at

    def is_rejection(self, response: Response) -> bool:
        return is_credential_rejection(response)

    async def acquire(self, stale: JwtCredential | None) -> JwtCredential:
        """Renew ``stale`` while it is still valid, else log in from the password."""
        if stale is not None and self.refresh_via_current_user and self._still_valid(stale):
            renewed = await self._renew(stale)
            if renewed is not None:
                return renewed
        return self._credential_for(await self._login())

    # ------------------------------------------------------------------ steps

    def _still_valid(self, credential: JwtCredential) -> bool:
        return credential.expires_at is None or self.clock.now() < credential.expires_at - 1.0

    def _credential_for(self, user: UserAuth) -> JwtCredential:
        exp = jwt_expiry(user.token)
        refresh_at = None
        if exp is not None:
            lifetime = max(0.0, exp - self.clock.now())
            refresh_at = exp - min(self.refresh_margin, lifetime / 2)
        return JwtCredential(token=user.token, expires_at=exp, refresh_at=refresh_at, user=user)

    async def _renew(self, stale: JwtCredential) -> JwtCredential | None:
        request = self.build_request("GET", self.paths.current_user)
        self.apply(request, stale)
        try:
            response = await self.send(request)
            if response.status_code != 200:
                return None
            fresh = self._credential_for(parse_user_auth(response))
        except (APIError, ResponseDecodeError):
            return None
        if (
            fresh.expires_at is not None
            and stale.expires_at is not None
            and fresh.expires_at <= stale.expires_at
        ):
            return None  # the server did not mint a new token: log in instead
        self.refreshes += 1
        return fresh

    async def _login(self) -> UserAuth:
        body = converter.unstructure(LoginRequest(self.username, self._password))
        response = await self.send(self.build_request("POST", self.paths.login, json=body))
        answer = classify_login(response.status_code, response.headers)
        if answer is LoginAnswer.OK:
            return parse_user_auth(response)
        if answer is not LoginAnswer.MFA_REQUIRED:
            raise self.mapper.map(response, Operation.LOGIN)
        provider = self.code_provider
        if provider is None:
            error = self.mapper.map(response, Operation.LOGIN)
            assert isinstance(error, MfaRequiredError)
            raise error
        recovery = isinstance(provider, RecoveryCodeProvider)
        challenge = MfaChallenge(kind="recovery" if recovery else "totp", user=self.username)
        issued = await provider.issue(challenge)
        token = mfa_token_of(response.headers)
        assert token is not None
        if issued.kind == "recovery":
            return await self._recover(issued)
        return await self._exchange(Secret(token), issued)

    async def _send_code(self, request: Request, issued: IssuedCode, operation: Operation) -> Response:
        """Send a request carrying a code and settle the code by what became of it."""
        response = await send_code(issued, self.send, request)
        status = response.status_code
        if 200 <= status < 300:
            issued.accepted()
            return response
        if status in (401, 403):
            issued.rejected()
        elif status in (400, 429):
            issued.not_sent()  # refused before the code was looked at: it is still good
        else:
            issued.unknown()
        raise self.mapper.map(response, operation)

    async def _exchange(self, token: Secret[str], issued: IssuedCode) -> UserAuth:
        body = converter.unstructure(MfaAuth(token, issued.value))
        request = self.build_request("POST", self.paths.auth, json=body)
        response = await self._send_code(request, issued, Operation.AUTH)
        return parse_user_auth(response)

    async def _recover(self, issued: IssuedCode) -> UserAuth:
        body = converter.unstructure(MfaRecover(self.username, issued.value))
        request = self.build_request("POST", self.paths.recover, json=body)
        response = await self._send_code(request, issued, Operation.RECOVER)
        self.recovery_window_expires_at = expires_at(response.headers)
        return parse_user_auth(response)

    def __repr__(self) -> str:
        return (
            f"XMfaTokenAuth(username={self.username!r}, password=Secret('***'), "
            f"provider={self.code_provider!r})"
        )
