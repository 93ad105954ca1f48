"""``client.session``: the login steps (``/api/v2/login``, ``/login-2fa``), logout, the
authentication-provider lookup and completing a forced 2FA re-enrolment."""

from __future__ import annotations

from mfa_common.auth.deadline import drive_by_hand
from mfa_common.clock import Clock
from mfa_common.code_providers import TotpCodeProvider
from mfa_common.errors import InvalidInputError
from mfa_common.options import RequestOptions
from mfa_common.requestor import Requestor
from mfa_common.secret import Secret, wrap

from . import _constants as C
from . import login_machine
from ._base import MetalCloudAPIGroup
from .api_user import CodeSource, code_provider_of
from .auth import MetalCloudLoginAuth
from .enrolment import EnrolmentCode, enrol_with_login_session, pending_step
from .errors import TwoFactorEnrolmentRequiredError
from .models import AuthenticationUserProvider, LoginResult, LogoutResponse, TwoFactorAuthenticationSecret

__all__ = ["SessionAPI"]

P = C.API_PREFIX


class SessionAPI(MetalCloudAPIGroup):
    """``client.session``: ``POST /api/v2/login``, ``/login-2fa`` and ``/logout``.

    Without arguments, :meth:`login` and :meth:`logout` act on the client's own JWT session (a
    client built with ``email=``/``password=``). With ``email``/``password``, :meth:`login`
    performs the raw password step and returns a :class:`~metalcloud_async.models.LoginResult`
    to finish with :meth:`login_2fa` when ``mfa_required``; its ``token`` is a Secret usable
    with :class:`~mfa_common.auth.BearerTokenAuth`.
    """

    def __init__(self, requestor: Requestor, *, clock: Clock | None = None) -> None:
        super().__init__(requestor)
        self._clock = clock

    def _backend(self) -> MetalCloudLoginAuth:
        backend = self._requestor.auth
        if not isinstance(backend, MetalCloudLoginAuth):
            raise InvalidInputError("this client has no login session: pass email= and password=")
        return backend

    async def login(
        self,
        email: str | None = None,
        password: str | Secret[str] | None = None,
        *,
        provider: str = C.DEFAULT_PROVIDER,
        options: RequestOptions | None = None,
    ) -> LoginResult:
        """Log in: the client's own session, or a raw password step.

        With no arguments: replaces the client's JWT, completing 2FA through the client's code
        provider. With ``email`` and ``password``: ``POST /api/v2/login``, whose result says
        whether :meth:`login_2fa` must follow.

        Args:
            email: For a raw password step: the e-mail address.
            password: For a raw password step: the password.
            provider: The authentication provider named in the login (``mysql`` by default).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The login step (``mfa_required``, ``enrolment_required``, ``token``, ``user``).

        Raises:
            InvalidInputError: ``email`` without ``password``, or no login session to renew.
        """
        if email is None:
            backend = self._backend()
            session = await self._requestor.within_deadline(
                backend.login, options=options, what="MetalCloud login"
            )
            return LoginResult(session.user, session.token, {}, False, session.source)
        if password is None:
            raise InvalidInputError("login(email, password) needs the password")
        return await drive_by_hand(
            self._requestor,
            lambda: login_machine.password_flow(
                self._requestor.build, email, wrap(password), provider=provider
            ),
            options=options,
            what=f"POST {P}/login",
        )

    async def login_2fa(
        self, pending: LoginResult, code: CodeSource, *, options: RequestOptions | None = None
    ) -> LoginResult:
        """``POST /api/v2/login-2fa``: finish a raw login with the second factor, sent once.

        Args:
            pending: The step of :meth:`login` that said ``mfa_required``.
            code: A 6-digit code, a code provider, or the TOTP secret (a fresh code is made).
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The completed login, with its JWT.

        Raises:
            TwoFactorCodeRejectedError: A refused code.
        """
        if not pending.mfa_required:
            raise InvalidInputError("this login step does not need a second factor")
        email = pending.user.email if pending.user is not None else None
        return await drive_by_hand(
            self._requestor,
            lambda: login_machine.code_flow(self._requestor.build, pending, email=email),
            code=code_provider_of(code, clock=self._clock),
            options=options,
            what=f"POST {P}/login-2fa",
        )

    @property
    def password_change_required(self) -> bool | None:
        """Whether the last login of the client's session said the password must be changed
        (``User.passwordChangeRequired``); None before any login or without a login session.
        ``MetalCloudLoginAuth(on_password_change_required=...)`` is called when it is."""
        backend = self._requestor.auth
        if not isinstance(backend, MetalCloudLoginAuth) or backend.user is None:
            return None
        return backend.user.password_change_required

    async def provider(
        self, email: str, *, options: RequestOptions | None = None
    ) -> AuthenticationUserProvider:
        """``GET /api/v2/authentication-provider?email=``: how that address logs in.

        Args:
            email: The address.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            ``mysql``, ``ldap``, or ``saml`` with its SSO entry point.

        Raises:
            NotFoundError: The address is unknown (404).
        """
        if not isinstance(email, str) or "@" not in email:
            raise InvalidInputError("email must be an e-mail address")
        return await self._get(
            f"{P}/authentication-provider",
            AuthenticationUserProvider,
            params={"email": email},
            options=options,
        )

    async def complete_reenrolment(
        self, pending: LoginResult | TwoFactorEnrolmentRequiredError, code: EnrolmentCode = None
    ) -> TwoFactorAuthenticationSecret:
        """Enrol the new authenticator an administrator forced (``force_2fa_reenrolment``).

        When the client logs itself in, it adopts the new secret, so its next request logs in with
        it; otherwise log in again yourself.

        Args:
            pending: The login step (``login(email, password)`` with ``enrolment_required``) or the
                :class:`~metalcloud_async.errors.TwoFactorEnrolmentRequiredError` a session login
                raised.
            code: None uses the new secret itself; else a code, a provider, or an async callable
                given the new secret.

        Returns:
            The new secret (its ``totp()`` makes the codes from now on).
        """
        secret = await enrol_with_login_session(
            self._requestor, pending_step(pending), code, clock=self._clock
        )
        backend = self._requestor.auth
        if isinstance(backend, MetalCloudLoginAuth):
            backend.code_provider = TotpCodeProvider(secret.totp(), clock=self._clock)
        return secret

    async def logout(
        self, token: str | Secret[str] | None = None, *, options: RequestOptions | None = None
    ) -> LogoutResponse:
        """``POST /api/v2/logout``: the client's session, or the session of ``token``.

        Args:
            token: A session's JWT; None (default) logs the client's own session out.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.
        """
        if token is None:
            return await self._backend().logout()
        request = login_machine.logout_request(self._requestor.build, wrap(token))
        response = await self._requestor.within_deadline(
            lambda: self._requestor.send(request, raise_for_status=True),
            options=options,
            what=f"POST {P}/logout",
        )
        return self._decode(response, LogoutResponse)
