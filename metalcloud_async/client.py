"""``MetalCloudClient``: the async client of the MetalCloud v2 API.

Optimistic concurrency: every write takes ``revision``: a number (sent as ``If-Match: <n>``,
the bare decimal revision as the official CLI sends it), :data:`~metalcloud_async.protocol.LATEST`
(the default: read the current revision first, as the official CLI does) or ``None`` (send no
``If-Match``; the real server then answers 428). A stale revision raises
:class:`~mfa_common.errors.PreconditionFailedError` (412), a missing one
:class:`~mfa_common.errors.PreconditionRequiredError` (428). With ``retry_on_stale=True`` a
write that met 412 re-reads the revision and is sent once more; it is never retried silently.
"""

from __future__ import annotations

from typing import ClassVar

from mfa_common._httpx import URL, AsyncBaseTransport, Auth
from mfa_common.client import BaseClient
from mfa_common.clock import Clock
from mfa_common.code_providers import CodeProvider
from mfa_common.options import ClientOptions, check_credentials
from mfa_common.requestor import Requestor
from mfa_common.secret import Secret
from mfa_common.totp import Totp

from .api_session import SessionAPI
from .api_user import UserAPI
from .api_users import UsersAPI
from .auth import MetalCloudApiKeyAuth, MetalCloudLoginAuth
from .errors import map_error

__all__ = ["MetalCloudClient"]


class MetalCloudClient(BaseClient):
    """Async client of the MetalCloud v2 API.

    Groups: ``client.user`` (the caller's account), ``client.users`` (administration, with
    ``limits``, ``delegates``, ``permissions`` and ``ssh_keys``), ``client.session`` (the login
    steps, logout, re-enrolment). Use as ``async with MetalCloudClient(...) as client:``;
    closing logs a JWT session out.

    Give one credential: ``api_key``, ``email`` with ``password``, or ``auth``.

    Args:
        base_url: The server's URL (``https://metal.example.com``).
        api_key: ``Authorization: Bearer <key>``, what the official CLI uses.
        email: A JWT session by login, with ``password``.
        password: The password of ``email``.
        code_provider: For a 2FA account: what answers the second factor.
        totp_secret: For a 2FA account: the base32 secret (or ``otpauth://`` URI or
            :class:`~mfa_common.totp.Totp`) of replay-safe codes, instead of ``code_provider``.
        auth: Any ``httpx.Auth``, e.g. a :class:`~mfa_common.auth.CredentialAuth` obtaining
            the JWT by the X-MFA-Token exchange, which is bound to this client's connection
            pool.
        clock: Drives TOTP codes and JWT refresh (share a ``FakeClock`` with the fake in tests).
        transport: Any ``httpx.AsyncBaseTransport`` (see
            :class:`~mfa_common.client.BaseClient`).
        options: The connection tunables (:class:`~mfa_common.options.ClientOptions`).

    Raises:
        InvalidInputError: More than one credential, or a login keyword without ``email`` and
            ``password``.
    """

    api_name: ClassVar[str] = "metalcloud"
    login_keywords: ClassVar[str] = "email= and password="

    user: UserAPI
    """The caller's own account: profile, 2FA, API key, JWT salt, password, e-mail."""
    users: UsersAPI
    """User administration, with the sub-groups ``limits``, ``delegates``, ``permissions``, ``ssh_keys``."""
    session: SessionAPI
    """The login steps by hand, logout, the provider lookup and forced 2FA re-enrolment."""

    def __init__(
        self,
        base_url: str | URL,
        *,
        api_key: str | Secret[str] | None = None,
        email: str | None = None,
        password: str | Secret[str] | None = None,
        code_provider: CodeProvider | None = None,
        totp_secret: str | Secret[str] | Totp | None = None,
        auth: Auth | None = None,
        clock: Clock | None = None,
        transport: AsyncBaseTransport | None = None,
        options: ClientOptions | None = None,
    ) -> None:
        check_credentials(
            given={"api_key": api_key, "email": email, "auth": auth},
            login_only={"password": password, "totp_secret": totp_secret, "code_provider": code_provider},
            login_key="email",
        )
        if api_key is not None:
            auth = MetalCloudApiKeyAuth(api_key)
        elif email is not None and password is not None:
            auth = MetalCloudLoginAuth(
                email, password, code_provider=code_provider, totp_secret=totp_secret, clock=clock
            )
        self.clock = clock
        super().__init__(base_url, auth=auth, transport=transport, options=options, error_mapper=map_error)

    def _init_groups(self, requestor: Requestor) -> None:
        self.user = UserAPI(requestor, clock=self.clock)
        self.users = UsersAPI(requestor)
        self.session = SessionAPI(requestor, clock=self.clock)
