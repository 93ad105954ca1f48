"""``QuatrixClient``: the async client of the Quatrix API 1.0."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar

from mfa_common._httpx import URL, AsyncBaseTransport, Auth, httpx
from mfa_common.auth import ApiKeyAuth
from mfa_common.client import BaseClient
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider
from mfa_common.errors import APIError, InvalidInputError
from mfa_common.options import ClientOptions, check_credentials
from mfa_common.requestor import Requestor
from mfa_common.secret import Secret
from mfa_common.totp import Totp

from . import _constants as C
from .api_mfa import MfaAPI
from .api_profile import ProfileAPI
from .api_session import SessionAPI
from .api_users import UsersAPI
from .auth import QuatrixSessionAuth
from .errors import map_error
from .protocol import PinEncoding

__all__ = ["QuatrixClient", "api_base_url"]

logger = logging.getLogger("quatrix_async")


def api_base_url(base_url: str | URL) -> URL | str:
    """The API root: ``https://acme.quatrix.it`` becomes ``https://acme.quatrix.it/api/1.0``;
    a URL that already has a path is kept as it is."""
    try:
        url = URL(str(base_url).strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        return base_url  # the client refuses it with a typed error that shows no credential
    if url.path in ("", "/"):
        url = url.copy_with(path=C.API_PREFIX)
    return url


class QuatrixClient(BaseClient):
    """Async client for one Quatrix account.

    Operations are grouped: ``client.session`` (``/session``: the login steps, keepalive, logout,
    CAPTCHA), ``client.profile`` (the logged-in user), ``client.mfa`` (administrators turning MFA
    on and off for users) and ``client.users``. Use ``async with`` (closing logs out).

    Give one credential: ``api_key``, ``email`` with ``password`` (plus ``totp_secret``, ``pin``
    or ``code_provider`` for MFA users), or ``auth``.

    Args:
        base_url: The account host (``https://acme.quatrix.it``) or the API root
            (``.../api/1.0``).
        api_key: ``Authorization: Bearer <key>`` on every call, no session, no login, no MFA
            step (CONFIRMED in the current Quatrix documentation). Best for batch jobs: the
            login endpoint is rate limited (about 15 logins per 15 minutes) and a key spends
            none of it.
        email: The login's e-mail address. With ``password``, a
            :class:`~quatrix_async.auth.QuatrixSessionAuth` logs in once and reuses the session.
        password: The password of ``email``.
        totp_secret: For a 2FA user: the base32 secret (or a :class:`~mfa_common.totp.Totp`)
            the codes are made from, replay-safe.
        pin: For a PIN user: the PIN.
        pin_encoding: How the PIN is sent: ``"base64"`` (the API's way) or ``"plain"`` for a
            server that takes the PIN unencoded.
        code_provider: Any :class:`~mfa_common.code_providers.CodeProvider` instead of
            ``totp_secret`` or ``pin`` (e.g. a callback asking a person).
        auth: Any ``httpx.Auth`` of your own instead of the keywords above.
        clock: The clock codes and session idling are reckoned by (share a ``FakeClock`` with a
            fake in tests).
        transport: Any ``httpx.AsyncBaseTransport`` to send through (default: aiohttp's pool
            on asyncio, httpcore2's on Trio; ``httpx.ASGITransport(app=fake)`` talks to a fake
            in-process).
        options: The connection tunables (:class:`~mfa_common.options.ClientOptions`).

    Raises:
        InvalidInputError: More than one credential, or a login keyword without ``email`` and
            ``password``.
    """

    api_name: ClassVar[str] = "quatrix"
    login_keywords: ClassVar[str] = "email= and password="

    session: SessionAPI
    """The login steps by hand, keepalive, logout and the CAPTCHA unblock (``/session``)."""
    profile: ProfileAPI
    """The logged-in user: profile, password and own MFA settings (``/profile``)."""
    mfa: MfaAPI
    """Administrators turning MFA on, resetting it and turning it off for users."""
    users: UsersAPI
    """The account's users (``GET /user``, ``/user/metadata/{id}``)."""

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
        options: ClientOptions | None = None,
    ) -> None:
        check_credentials(
            given={"api_key": api_key, "email": email, "auth": auth},
            login_only={
                "password": password,
                "totp_secret": totp_secret,
                "pin": pin,
                "code_provider": code_provider,
            },
            login_key="email",
        )
        root = api_base_url(base_url)
        if api_key is not None:
            auth = ApiKeyAuth(api_key, base_url=root)
        elif email is not None and password is not None:
            auth = QuatrixSessionAuth(
                email,
                password,
                code_provider=code_provider,
                totp_secret=totp_secret,
                pin=pin,
                pin_encoding=pin_encoding,
                clock=clock,
            )
        super().__init__(root, auth=auth, transport=transport, options=options, error_mapper=map_error)

    def _init_groups(self, requestor: Requestor) -> None:
        self.session = SessionAPI(requestor)
        self.profile = ProfileAPI(requestor)
        self.mfa = MfaAPI(requestor, self.profile)
        self.users = UsersAPI(requestor)

    def _session_auth(self, what: str) -> QuatrixSessionAuth:
        auth = self.auth
        if not isinstance(auth, QuatrixSessionAuth):
            raise InvalidInputError(f"{what} needs a client with email= and password= (a QuatrixSessionAuth)")
        return auth

    @asynccontextmanager
    async def keepalive_in_background(
        self, interval: float = C.KEEPALIVE_CHECK_INTERVAL
    ) -> AsyncIterator[None]:
        """Keep an idle session alive while an ``async with`` block runs (opt-in).

        Wakes every ``interval`` seconds and sends a keepalive only if the session has been idle
        long enough to need one (5 minutes by default). Busy clients send none: their calls keep the
        session alive. Errors of a keepalive are logged, never raised into the block.

        Args:
            interval: Seconds between two checks.

        Raises:
            InvalidInputError: The client has no login session (an API key or ``auth=``).
        """
        import anyio  # loaded on first use, not by an import of the package

        auth = self._session_auth("keepalive_in_background()")

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
