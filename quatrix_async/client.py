"""``QuatrixClient``: the async client of the Quatrix API 1.0."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import ClassVar

from mfa_common._httpx import URL, AsyncBaseTransport, Auth, Limits, Timeout
from mfa_common.auth import ApiKeyAuth, CredentialAuth
from mfa_common.client import BaseClient
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider
from mfa_common.errors import APIError, InvalidInputError
from mfa_common.retry import RetryPolicy
from mfa_common.secret import Secret, wrap
from mfa_common.totp import Totp

from . import _constants as C
from .api_auth import AuthApi
from .api_mfa import MfaApi
from .api_profile import ProfileApi
from .api_users import UsersApi
from .errors import map_quatrix_error
from .protocol import PinEncoding
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


def _checked_api_key(api_key: str | Secret[str]) -> Secret[str]:
    """The key as a Secret; InvalidInputError (never showing it) when it cannot be a header."""
    key = wrap(api_key)
    text = key.reveal()
    if not text.strip() or text != text.strip() or any(ord(c) < 0x21 or ord(c) > 0x7E for c in text):
        raise InvalidInputError("api_key must be a non-empty string of printable ASCII characters")
    return key


class QuatrixClient(BaseClient):
    """Async client for one Quatrix account.

    ``base_url`` is the account host (``https://acme.quatrix.it``) or the API root. Credentials,
    one of:

    * ``api_key``: ``Authorization: Bearer <key>`` on every call, no session, no login, no MFA
      step (CONFIRMED in the current Quatrix documentation). Best for batch jobs: the login
      endpoint is rate limited (about 15 logins per 15 minutes) and a key spends none of it;
    * ``email`` and ``password`` (plus ``totp_secret``, ``pin`` or ``code_provider`` for MFA
      users): a :class:`~quatrix_async.session_auth.QuatrixSessionAuth` that logs in once and
      reuses the session (``pin_encoding="plain"`` for a server that takes the PIN unencoded);
    * ``auth=``: any httpx auth of your own.

    Giving more than one raises :class:`~mfa_common.errors.InvalidInputError`.
    Operations are grouped: ``client.auth_api`` (``/session``), ``client.profile``,
    ``client.mfa`` (admin MFA), ``client.users``. Use ``async with`` (closing logs out).
    Other keywords are those of :class:`mfa_common.client.BaseClient`.
    """

    api_name: ClassVar[str] = "quatrix"

    def __init__(
        self,
        base_url: str | URL,
        *,
        api_key: str | Secret[str] | None = None,
        email: str | None = None,
        password: str | Secret[str] | None = None,
        totp_secret: str | Secret[str] | Totp | None = None,
        pin: str | Secret[str] | None = None,
        pin_encoding: PinEncoding = "base64",
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
        if api_key is not None:
            session_options = (email, password, totp_secret, pin, code_provider, auth)
            if any(option is not None for option in session_options):
                raise InvalidInputError(
                    "api_key= replaces the login: do not also give email=, password=, "
                    "totp_secret=, pin=, code_provider= or auth="
                )
            auth = ApiKeyAuth(_checked_api_key(api_key), base_url=api_base_url(base_url))
        if auth is None and email is not None:
            if password is None:
                raise TypeError("password is required with email")
            auth = QuatrixSessionAuth(
                email,
                password,
                code_provider=code_provider,
                totp_secret=totp_secret,
                pin=pin,
                pin_encoding=pin_encoding,
                clock=clock,
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

    @property
    def api_key_auth(self) -> ApiKeyAuth | None:
        """The API-key backend, when the client uses one."""
        return self.auth if isinstance(self.auth, ApiKeyAuth) else None

    @property
    def session_auth(self) -> QuatrixSessionAuth | None:
        """The session backend, when the client uses one."""
        return self.auth if isinstance(self.auth, QuatrixSessionAuth) else None

    async def login(self) -> None:
        """Log in now (otherwise the first call does it): surfaces MFA/CAPTCHA errors early.
        Runs under the client's deadline, like any call."""
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
        import anyio  # loaded on first use, not by an import of the package

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
