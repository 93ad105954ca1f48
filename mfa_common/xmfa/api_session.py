"""``client.session``: the login steps by hand: the password (``/api/login``), the second
factor (``/mfa/auth``), a recovery code (``/mfa/recover``) and the e-mailed MFA reset."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from ..auth.deadline import drive_by_hand
from ..clock import Clock
from ..options import RequestOptions
from ..recovery_codes import RecoveryCodeFormat, normalize_recovery_code
from ..requestor import Requestor
from ..secret import Secret, reveal, wrap
from ..wire import parse_json_body
from . import login_machine
from ._base import XMfaAPIGroup
from .errors import map_error
from .models import LoginResult, MfaReset, RecoverResult, RequestResetMFA, UserAuth, converter
from .protocol import XMfaPaths, normalize_email_code, parse_user_auth, totp_code

__all__ = ["SessionAPI"]


class SessionAPI(XMfaAPIGroup):
    """``client.session``: the login steps by hand (password, the second factor, recovery, the
    e-mailed MFA reset). Without an ``auth=`` backend, the client keeps the JWT of the last step
    and sends it on the calls that need one."""

    def __init__(
        self,
        requestor: Requestor,
        paths: XMfaPaths,
        *,
        clock: Clock,
        recovery_code_format: RecoveryCodeFormat,
    ) -> None:
        super().__init__(requestor, paths)
        self._clock = clock
        self._recovery_code_format = recovery_code_format
        self._map_error = functools.partial(map_error, paths=paths, now=clock.now)

    async def login(
        self, username: str, password: str | Secret[str], *, options: RequestOptions | None = None
    ) -> LoginResult:
        """``POST /api/login``: password login.

        Args:
            username: The user name or e-mail address.
            password: The password.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The user (no MFA) or, when MFA is required, ``mfa_token`` for :meth:`auth_mfa` (valid
            30 minutes, used once).

        Raises:
            AccountLockedError: Locked out (with ``locked_until``).
            AuthenticationError: A wrong password.
        """
        result = await drive_by_hand(
            self._requestor,
            lambda: login_machine.password_flow(
                self._requestor.build, self._paths, self._map_error, username, wrap(password)
            ),
            options=options,
            clock=self._clock,
            what=f"POST {self._paths.login}",
        )
        if result.user is not None:
            self._adopt(result.user)
        return result

    async def auth_mfa(
        self, token: str | Secret[str], code: str | Secret[str], *, options: RequestOptions | None = None
    ) -> UserAuth:
        """``POST /api/user/mfa/auth``: exchange the ``X-MFA-Token`` and a TOTP code for the JWT.

        Use a replay-safe code (:func:`mfa_common.next_totp`): servers accept one code per step.

        Args:
            token: The ``mfa_token`` of :meth:`login`.
            code: A 6-digit TOTP code.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The logged-in user, with the JWT.

        Raises:
            MfaCodeRejectedError: A wrong or reused code (a 500, what the official console was
                written against, or a 401 or 403).
            MfaTokenExpiredError: An unknown or expired token, when the answer says so (a 404, or a
                401/403 about the token; a bare 500 does not, and reads as a rejected code).
        """
        outcome = await self._code_step("totp", totp_code(code), token=wrap(token), options=options)
        return self._adopt(outcome.user)

    async def recover(
        self, identifier: str, recovery_code: str | Secret[str], *, options: RequestOptions | None = None
    ) -> RecoverResult:
        """``POST /api/user/mfa/recover``: log in with a recovery code (spent for good).

        Args:
            identifier: The user name or e-mail address.
            recovery_code: One of the user's recovery codes.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The user and ``expires_at`` (from ``X-Expires-At``): the end of the 10-minute window in
            which :meth:`MfaAPI.disable` needs no code.

        Raises:
            RecoveryCodeRejectedError: A used or wrong code.
        """
        code = normalize_recovery_code(recovery_code, self._recovery_code_format)
        outcome = await self._code_step("recovery", code, identifier=identifier, options=options)
        user = self._adopt(outcome.user)
        return RecoverResult(user=user, expires_at=outcome.recovery_window_expires_at)

    async def request_reset_mfa(
        self, identifier: str, *, options: RequestOptions | None = None
    ) -> Secret[str] | None:
        """``POST /api/user/mfa/reset``: mail one code to the main and one to the recovery address.

        Then call :meth:`reset_mfa` with the token, or the user id.

        Args:
            identifier: The user name or e-mail address.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The reset token (current servers) or None (servers before 2026-07 answer without a
            body).
        """
        body = converter.unstructure(RequestResetMFA(identifier))
        response = await self._requestor.request(
            "POST", self._paths.request_reset, json=body, authenticated=False, options=options
        )
        if not response.content.strip():
            return None
        data = parse_json_body(response)
        token = data.get("token") if isinstance(data, Mapping) else None
        return Secret(token) if isinstance(token, str) and token else None

    async def reset_mfa(
        self,
        token_or_user_id: str | Secret[str],
        main_email_code: str | Secret[str],
        recovery_email_code: str | Secret[str],
        *,
        options: RequestOptions | None = None,
    ) -> UserAuth:
        """``PUT /api/user/mfa/reset/{token or user id}``: remove MFA with the e-mail codes, log in.

        The path segment (a bearer-like token) never appears in logs or errors.

        Args:
            token_or_user_id: The token of :meth:`request_reset_mfa`, or the user id.
            main_email_code: The code mailed to the main address.
            recovery_email_code: The code mailed to the recovery address.
            options: Per-call overrides (timeout, deadline, retries, headers): a
                :class:`~mfa_common.options.RequestOptions`.

        Returns:
            The logged-in user, with the JWT.

        Raises:
            EmailCodeRejectedError: Wrong codes.
        """
        path = self._paths.reset_path(reveal(token_or_user_id))
        body = converter.unstructure(
            MfaReset(normalize_email_code(main_email_code), normalize_email_code(recovery_email_code))
        )
        prefix = self._requestor.base_url.path.rstrip("/")
        response = await self._requestor.request(
            "PUT",
            path,
            json=body,
            authenticated=False,
            idempotent=False,
            options=options,
            path_template=prefix + self._paths.reset,
        )
        return self._adopt(parse_user_auth(response))

    async def _code_step(
        self,
        factor: login_machine.SecondFactor,
        code: Secret[str],
        *,
        identifier: str | None = None,
        token: Secret[str] | None = None,
        options: RequestOptions | None,
    ) -> login_machine.LoginOutcome:
        """The second-factor half of the login machine, by hand, with the caller's code."""
        path = self._paths.recover if factor == "recovery" else self._paths.auth
        return await drive_by_hand(
            self._requestor,
            lambda: login_machine.code_flow(
                self._requestor.build,
                self._paths,
                self._map_error,
                factor=factor,
                identifier=identifier,
                mfa_token=token,
            ),
            code=code,
            options=options,
            clock=self._clock,
            what=f"POST {path}",
        )
