"""``XMfaClient``: every operation of the X-MFA-Token API (ShellHub ``MfaApi`` plus login).

Two ways to authenticate:

* give ``username=``/``password=`` with ``totp_secret=``, ``code_provider=`` or
  ``recovery_codes=`` (or an ``auth=XMfaTokenAuth(...)`` of your own) and every call logs in by
  itself (password, then the second factor, JWT cached and refreshed; see
  :mod:`mfa_common.xmfa.auth`);
* or drive the steps yourself through ``client.session``: ``login`` → ``auth_mfa`` (or
  ``recover``, or ``reset_mfa``). Without credentials, the JWT of the last such step is used for
  the calls that need one.
"""

from __future__ import annotations

import functools
from typing import ClassVar

from .._httpx import URL, AsyncBaseTransport, Auth
from ..client import BaseClient
from ..clock import SYSTEM_CLOCK, Clock
from ..code_providers import CodeProvider
from ..options import ClientOptions, check_credentials
from ..recovery_codes import RecoveryCodeFormat, RecoveryCodeStore
from ..requestor import Requestor, base_url_of
from ..secret import Secret
from ..totp import Totp
from .api_mfa import MfaAPI
from .api_session import SessionAPI
from .api_user import UserAPI
from .auth import SessionTokenAuth, XMfaTokenAuth
from .errors import map_error
from .protocol import XMfaPaths

__all__ = ["XMfaClient"]


class XMfaClient(BaseClient):
    """Async client of the X-MFA-Token API. Use ``async with XMfaClient(...) as client:``.

    Groups: ``client.session`` (the login steps by hand, recovery, the e-mailed reset),
    ``client.mfa`` (generate, enable, disable), ``client.user`` (the logged-in user).

    Two ways to authenticate: give ``username`` and ``password`` with ``totp_secret``,
    ``code_provider`` or ``recovery_codes`` (or an ``auth=XMfaTokenAuth(...)`` of your own) and
    every call logs in by itself (password, then the second factor, JWT cached and refreshed);
    or drive the steps yourself through ``client.session`` (``login`` → ``auth_mfa``, or
    ``recover``, or ``reset_mfa``): without credentials, the JWT of the last such step is used
    for the calls that need one.

    Args:
        base_url: The server's URL.
        username: The login (a user name or an e-mail address), with ``password``.
        password: Its password.
        totp_secret: The second factor: a base32 secret, ``otpauth://`` URI or
            :class:`~mfa_common.totp.Totp` (replay-safe codes).
        recovery_codes: A :class:`~mfa_common.recovery_codes.RecoveryCodeStore`: the last
            resort, spent only when there is no other second factor.
        code_provider: Any :class:`~mfa_common.code_providers.CodeProvider` instead of
            ``totp_secret``.
        auth: Any ``httpx.Auth`` instead of the keywords above.
        paths: Where each operation lives, for servers that differ.
        clock: Dates the MFA token, the JWT and the lockout.
        recovery_code_format: The shape recovery codes are normalised to (ShellHub: 16
            upper-case base32).
        transport: Any ``httpx.AsyncBaseTransport`` (see :class:`~mfa_common.client.BaseClient`).
        options: The connection tunables (:class:`~mfa_common.options.ClientOptions`).

    Raises:
        InvalidInputError: Conflicting credentials, or a login keyword without ``username`` and
            ``password``.
    """

    api_name: ClassVar[str] = "xmfa"
    login_keywords: ClassVar[str] = "username= and password= (the steps by hand: client.session.login)"

    session: SessionAPI
    """The login steps by hand, a recovery-code login and the e-mailed MFA reset."""
    mfa: MfaAPI
    """The caller's own MFA: generate a secret, enable, disable."""
    user: UserAPI
    """The logged-in user (``GET /api/auth/user``)."""

    def __init__(
        self,
        base_url: str | URL,
        *,
        username: str | None = None,
        password: str | Secret[str] | None = None,
        totp_secret: Totp | str | Secret[str] | None = None,
        recovery_codes: RecoveryCodeStore | None = None,
        code_provider: CodeProvider | None = None,
        auth: Auth | None = None,
        paths: XMfaPaths | None = None,
        clock: Clock | None = None,
        recovery_code_format: RecoveryCodeFormat = RecoveryCodeFormat.SHELLHUB,
        transport: AsyncBaseTransport | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        check_credentials(
            given={"username": username, "auth": auth},
            login_only={
                "password": password,
                "totp_secret": totp_secret,
                "recovery_codes": recovery_codes,
                "code_provider": code_provider,
            },
            login_key="username",
        )
        self.paths = paths or XMfaPaths()
        self.clock = clock or SYSTEM_CLOCK
        self.recovery_code_format = recovery_code_format
        if username is not None and password is not None:
            auth = XMfaTokenAuth(
                username,
                password,
                totp_secret=totp_secret,
                recovery_codes=recovery_codes,
                code_provider=code_provider,
                paths=self.paths,
                clock=clock,
            )
        elif auth is None:
            # The steps by hand: the JWT of the last step is sent on the calls that need one.
            auth = SessionTokenAuth(base_url_of(base_url))
        mapper = functools.partial(map_error, paths=self.paths, now=self.clock.now)
        super().__init__(base_url, auth=auth, transport=transport, options=options, error_mapper=mapper)

    def _init_groups(self, requestor: Requestor) -> None:
        self.session = SessionAPI(
            requestor, self.paths, clock=self.clock, recovery_code_format=self.recovery_code_format
        )
        self.mfa = MfaAPI(requestor, self.paths, recovery_code_format=self.recovery_code_format)
        self.user = UserAPI(requestor, self.paths)
