"""``XMfaTokenAuth``: the X-MFA-Token exchange as an ``httpx.Auth`` backend.

Login: ``POST /api/login`` with the password; on 401 + ``X-MFA-Token`` a second factor from the
configured :class:`~mfa_common.code_providers.CodeProvider`:

* a TOTP code (``totp_secret=`` or a :class:`~mfa_common.code_providers.TotpCodeProvider`: replay-safe,
  it waits for a step no one in this process used) sent with the token to
  ``POST /api/user/mfa/auth``;
* or a recovery code (``recovery_codes=`` a :class:`~mfa_common.recovery_codes.RecoveryCodeStore`)
  sent with the identifier to ``POST /api/user/mfa/recover``; the code's reservation is settled
  (accepted / rejected / not sent / unknown) so a code is never offered twice, and the end of
  the recovery window is kept in :attr:`XMfaTokenAuth.recovery_window_expires_at`. Recovery
  codes are the last resort: given together with ``totp_secret`` (or a ``code_provider``) they are
  never spent by a login, and a login about to spend one logs a warning.

The steps are the machine of :mod:`mfa_common.xmfa.login_machine`, run by the driver.

The JWT is cached with its expiry from the ``exp`` claim (read without verifying the
signature: the client only needs the time) and renewed ``refresh_margin`` seconds ahead:
first through ``GET /api/auth/user``, which on ShellHub answers with a freshly minted token
(UNCONFIRMED for other servers: any failure there falls back to a full login), so no TOTP step
is spent. Acquisition is single-flight and a 401 that is not about a code invalidates the JWT
it was sent with (compare-and-invalidate) and replays the request once (see
:class:`~mfa_common.auth.CredentialAuth`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import ClassVar

import attrs

from .. import _constants as C
from .._httpx import URL, Auth, Request, Response
from ..auth import CredentialAuth, jwt_expiry
from ..auth.machine import LoginFlow
from ..clock import Clock
from ..code_providers import CodeProvider, MfaChallenge, RecoveryCodeProvider, TotpCodeProvider
from ..errors import InvalidInputError
from ..recovery_codes import RecoveryCodeStore
from ..secret import Secret, wrap
from ..totp import Totp
from . import login_machine
from .errors import is_credential_rejection, map_error
from .login_machine import SecondFactor
from .models import UserAuth
from .protocol import XMfaPaths

logger = logging.getLogger(C.LOGGER_NAME)

__all__ = ["JwtCredential", "SessionTokenAuth", "XMfaTokenAuth"]


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

    Without any second factor, an MFA account raises
    :class:`~mfa_common.errors.MfaRequiredError`.

    Args:
        username: The login (a user name or an e-mail address).
        password: Its password.
        totp_secret: The second factor: a :class:`~mfa_common.totp.Totp`, base32 secret or
            ``otpauth://`` URI.
        recovery_codes: A store of recovery codes, used only when neither ``totp_secret`` nor
            ``code_provider`` is given.
        code_provider: Any provider instead of ``totp_secret`` (e.g. a
            :class:`~mfa_common.code_providers.CallbackCodeProvider` that asks a person).
        paths: Where each operation lives, for servers that differ.
        clock: The clock of codes, the JWT's expiry and the lockout.
        refresh_margin: Renew the JWT this many seconds before its ``exp`` (at most half its
            lifetime early).
        refresh_via_current_user: Renew through ``GET /api/auth/user`` (no password, no code)
            while the JWT is still valid; any failure there falls back to a full login.
        base_url: The only origin the JWT is sent to (default: the client's).

    Raises:
        InvalidInputError: Both ``totp_secret`` and ``code_provider``.
    """

    api_name: ClassVar[str] = "xmfa"

    requires_response_body = True

    def __init__(
        self,
        username: str,
        password: str | Secret[str],
        *,
        totp_secret: Totp | str | Secret[str] | None = None,
        recovery_codes: RecoveryCodeStore | None = None,
        code_provider: CodeProvider | None = None,
        paths: XMfaPaths | None = None,
        clock: Clock | None = None,
        refresh_margin: float = C.JWT_REFRESH_MARGIN,
        refresh_via_current_user: bool = True,
        base_url: str | URL | None = None,
    ) -> None:
        super().__init__(base_url=base_url, clock=clock)
        if totp_secret is not None and code_provider is not None:
            raise InvalidInputError("give totp_secret= or code_provider=, not both")
        self.username = username
        self._password = wrap(password)
        if totp_secret is not None:
            code_provider = TotpCodeProvider(totp_secret, clock=self.clock)
        elif code_provider is None and recovery_codes is not None:
            code_provider = RecoveryCodeProvider(recovery_codes)
            recovery_codes = None
        #: The everyday second factor (a TOTP source or any provider).
        self.code_provider = code_provider
        #: Recovery codes kept as the last resort: spent only when there is no other source.
        self.recovery_codes = recovery_codes
        self.paths = paths or XMfaPaths()
        self.map_error = functools.partial(map_error, paths=self.paths, now=self.clock.now)
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

    def _factor(self) -> SecondFactor | None:
        """Which second factor a login would use: recovery codes only without another source."""
        provider = self.code_provider
        if provider is None:
            return "recovery" if self.recovery_codes is not None else None
        return "recovery" if isinstance(provider, RecoveryCodeProvider) else "totp"

    def provider_for(self, challenge: MfaChallenge) -> CodeProvider | None:
        if challenge.kind == "recovery":
            logger.warning(
                "the login of %s is about to spend a recovery code (no TOTP source is configured)",
                self.username,
            )
        return self.code_provider

    def login_flow(self, stale: JwtCredential | None) -> LoginFlow[JwtCredential]:
        """Renew ``stale`` while it is still valid, else log in from the password."""
        if stale is not None and self.refresh_via_current_user and self._still_valid(stale):
            renewed = yield from login_machine.renew_flow(self.requestor.build, self.paths, stale.token)
            if renewed is not None:
                self.refreshes += 1
                return self._credential_for(renewed)
        outcome = yield from login_machine.login_flow(
            self.requestor.build,
            self.paths,
            self.map_error,
            self.username,
            self._password,
            factor=self._factor(),
        )
        if outcome.recovery_window_expires_at is not None:
            self.recovery_window_expires_at = outcome.recovery_window_expires_at
        return self._credential_for(outcome.user)

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

    def __repr__(self) -> str:
        return (
            f"XMfaTokenAuth(username={self.username!r}, password=Secret('***'), "
            f"provider={self.code_provider!r})"
        )


class SessionTokenAuth(Auth):
    """The JWT of the last login step, sent as ``Authorization: Bearer`` to one origin only.

    Used by :class:`XMfaClient` when no ``auth=`` is given; empty until a step succeeds."""

    def __init__(self, base_url: URL) -> None:
        self._origin = (base_url.raw_scheme, base_url.raw_host, base_url.port)
        self.token: Secret[str] | None = None

    async def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        origin = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        if self.token is not None and origin == self._origin:
            request.headers["Authorization"] = f"Bearer {self.token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"SessionTokenAuth(token={'set' if self.token else 'unset'})"
