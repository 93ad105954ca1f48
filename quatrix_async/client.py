"""``QuatrixClient``: the async client of the Quatrix API 1.0."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio

from mfa_common._httpx import URL, AsyncBaseTransport, Auth, Limits, Timeout
from mfa_common.auth import CredentialAuth
from mfa_common.client import BaseClient
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider
from mfa_common.errors import APIError
from mfa_common.retry import RetryPolicy
from mfa_common.secret import Secret
from mfa_common.totp import Totp

from . import _constants as C
from .api_auth import AuthApi
from .api_mfa import MfaApi
from .api_profile import ProfileApi
from .api_users import UsersApi
from .errors import map_quatrix_error
from .session_auth import QuatrixSessionAuth

__all__ = ["QuatrixClient", "api_base_url"]

logger = logging.getLogger("quatrix_async")


def api_base_url(base_url: str | URL) -> URL:
    """The API root: ``https://acme.quatrix.it`` becomes ``https://acme.quatrix.it/api/1.0``;
    a URL that already has a path is kept as it is."""
    url = URL(str(base_url))
    if url.path in ("", "/"):
        url = url.copy_with(path=C.API_PREFIX)
    return url


class QuatrixClient(BaseClient):
    """Async client for one Quatrix account.

    ``base_url`` is the account host (``https://acme.quatrix.it``) or the API root. Give
    ``email`` and ``password`` (plus ``totp_secret``, ``pin`` or ``code_provider`` for MFA users)
    to get a :class:`~quatrix_async.session_auth.QuatrixSessionAuth`, or pass ``auth=`` yourself.
    Operations are grouped: ``client.auth_api`` (``/session``), ``client.profile``,
    ``client.mfa`` (admin MFA), ``client.users``. Use ``async with`` (closing logs out).
    Other keywords are those of :class:`mfa_common.client.BaseClient`.
    """

    def __init__(
        self,
        base_url: str | URL,
        *,
        email: str | None = None,
        password: str | Secret[str] | None = None,
        totp_secret: str | Secret[str] | Totp | None = None,
        pin: str | Secret[str] | None = None,
        code_provider: CodeProvider | None = None,
        auth: Auth | None = None,
        clock: Clock | None = None,
        transport: AsyncBaseTransport | None = None,
        timeout: float | Timeout | None = None,
        deadline: float | None = 120.0,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        limits: Limits | None = None,
        headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        verify: bool | str = True,
    ) -> None:
        if auth is None and email is not None:
            if password is None:
                raise TypeError("password is required with email")
            auth = QuatrixSessionAuth(
                email, password, code_provider=code_provider, totp_secret=totp_secret, pin=pin, clock=clock
            )
        super().__init__(
            api_base_url(base_url),
            auth=auth,
            transport=transport,
            timeout=timeout,
            deadline=deadline,
            retry=retry,
            max_retries=max_retries,
            limits=limits,
            headers=headers,
            allow_insecure_http=allow_insecure_http,
            verify=verify,
            error_mapper=map_quatrix_error,
        )
        if isinstance(auth, CredentialAuth):
            auth.bind(base_url=self.base_url, send=self.send_unauthenticated)
        self.auth_api = AuthApi(self)
        self.profile = ProfileApi(self)
        self.mfa = MfaApi(self)
        self.users = UsersApi(self)

    def __repr__(self) -> str:
        return f"QuatrixClient(base_url={str(self.base_url)!r}, auth={self.auth!r})"

    @property
    def session_auth(self) -> QuatrixSessionAuth | None:
        """The session backend, when the client uses one."""
        return self.auth if isinstance(self.auth, QuatrixSessionAuth) else None

    async def login(self) -> None:
        """Log in now (otherwise the first call does it): surfaces MFA/CAPTCHA errors early."""
        auth = self.session_auth
        if auth is None:
            raise TypeError("login() needs a client with email/password (a QuatrixSessionAuth)")
        await self.within_deadline(auth.get_credential, what="Quatrix login")

    async def aclose(self) -> None:
        """Log the session out (best effort), then close the connections."""
        if not self.closed and isinstance(self.auth, CredentialAuth):
            try:
                await self.auth.aclose()
            finally:
                await super().aclose()
        else:
            await super().aclose()

    @asynccontextmanager
    async def keepalive_in_background(
        self, interval: float = C.KEEPALIVE_CHECK_INTERVAL
    ) -> AsyncIterator[None]:
        """Opt-in: while the ``async with`` block runs, wake every ``interval`` seconds and send a
        keepalive only if the session has been idle long enough to need one (5 minutes by
        default). Busy clients send none: their calls keep the session alive. Errors of a
        keepalive are logged, never raised into the block."""
        auth = self.session_auth
        if auth is None:
            raise TypeError("keepalive_in_background() needs a client with a QuatrixSessionAuth")

        async def loop() -> None:
            while True:
                await anyio.sleep(interval)
                try:
                    await auth.keepalive_if_idle()
                except APIError as exc:
                    logger.warning("keepalive failed: %s", type(exc).__name__)

        async with anyio.create_task_group() as group:
            group.start_soon(loop)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def __aenter__(self) -> QuatrixClient:
        self._ensure_open()
        return self
