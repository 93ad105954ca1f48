"""``BaseClient``: the lifecycle every API client shares.

A client owns the lifecycle (``async with`` / :meth:`BaseClient.aclose`, an explicit
:meth:`BaseClient.login`) and holds one :class:`~mfa_common.requestor.Requestor`, which builds
and sends every request. Its auth backend and its operation groups are handed that requestor;
:meth:`BaseClient.with_options` returns a client of the same type sharing the connection pool
and the login, with other per-call defaults.

The pure helpers (JSON reading, error building, path segments) live in :mod:`mfa_common.wire`
and are re-exported here.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from ._httpx import URL, AsyncBaseTransport, Auth
from .auth._single_flight import CredentialAuth
from .errors import InvalidInputError
from .options import ClientOptions, RequestOptions
from .requestor import ErrorMapper, Requestor, check_transport_security, is_loopback_host
from .retry import RetryPolicy
from .wire import (
    JSON_ERRORS,
    JSON_EXTENSION,
    PATH_TEMPLATE_EXTENSION,
    build_status_error,
    decode_error,
    default_error_mapper,
    describe,
    json_or_none,
    parse_json_body,
    path_segment,
    request_id_of,
    structure,
)

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from typing import Self
    else:  # pragma: no cover
        from typing_extensions import Self

__all__ = [
    "JSON_ERRORS",
    "JSON_EXTENSION",
    "PATH_TEMPLATE_EXTENSION",
    "BaseClient",
    "ClientOptions",
    "ErrorMapper",
    "RequestOptions",
    "build_status_error",
    "check_transport_security",
    "decode_error",
    "default_error_mapper",
    "describe",
    "is_loopback_host",
    "json_or_none",
    "parse_json_body",
    "path_segment",
    "request_id_of",
    "structure",
]


class BaseClient:
    """The lifecycle of a client and its requestor; see the module docstring.

    Args:
        base_url: The server's URL; relative paths of every call are joined to it.
        auth: The auth backend (any ``httpx.Auth``); a
            :class:`~mfa_common.auth.CredentialAuth` is bound to this client's requestor.
        transport: Any ``httpx.AsyncBaseTransport`` to send through (default: aiohttp's pool
            on asyncio, httpcore2's on Trio; ``httpx.ASGITransport(app=fake)`` talks to a fake
            in-process).
        options: The connection tunables (:class:`~mfa_common.options.ClientOptions`).
        error_mapper: Turns an error answer into the API's typed error (each client passes its
            own).
    """

    #: Which API this client speaks, in login-step log lines and spans (``mfa.api``).
    api_name: ClassVar[str] = "http"
    #: The constructor keywords that make the client log in, for :meth:`login`'s error.
    login_keywords: ClassVar[str] = "auth= (a CredentialAuth)"

    def __init__(
        self,
        base_url: str | URL,
        *,
        auth: Auth | None = None,
        transport: AsyncBaseTransport | None = None,
        options: ClientOptions | None = None,
        error_mapper: ErrorMapper | None = None,
    ) -> None:
        self._requestor = Requestor(
            base_url,
            options=options,
            transport=transport,
            auth=auth,
            error_mapper=error_mapper,
            api_name=self.api_name,
        )
        if isinstance(auth, CredentialAuth):
            auth.bind(self._requestor)
        self._owns_connection = True
        self._init_groups(self._requestor)

    def _init_groups(self, requestor: Requestor) -> None:
        """Make the operation groups, each holding ``requestor`` (a subclass hook)."""

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._requestor.check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def login(self) -> None:
        """Log in now with the client's own credentials (otherwise the first call does it).

        Surfaces MFA, CAPTCHA, lockout and enrolment errors early. Runs under the client's deadline,
        like any call.

        Raises:
            InvalidInputError: The client has no login (an API key, a static token, or no
                credentials).
        """
        auth = self._requestor.auth
        if not isinstance(auth, CredentialAuth):
            raise InvalidInputError(f"login() needs a client built with {self.login_keywords}")
        await self._requestor.within_deadline(auth.get_credential, what=f"{self.api_name} login")

    async def aclose(self) -> None:
        """Close the client: refuse new calls at once, end the login's session, close the pool.

        The logout (where the API has one) is shielded from cancellation, bounded and best effort.
        A second call does nothing; on a client made by :meth:`with_options` it does nothing
        either (the client it came from owns the pool and the login).
        """
        if not self._owns_connection:
            return
        auth = self._requestor.auth
        await self._requestor.close(auth.aclose if isinstance(auth, CredentialAuth) else None)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Self:
        """A client of the same type whose calls take these per-call defaults.

        It shares this client's connection pool, its login and its lifecycle: it is closed with
        this client. Each argument left None keeps this client's default (see
        :class:`~mfa_common.options.RequestOptions`)::

            patient = client.with_options(timeout=60, max_retries=0)
            await patient.users.list()

        Args:
            timeout: Seconds per phase (connect, write, read, pool) of each request.
            deadline: Seconds for a whole call, retries and login steps included.
            max_retries: How many times a call may be retried.
            headers: Extra headers sent with every call (merged over the client's own).

        Returns:
            The new client.
        """
        twin = copy.copy(self)
        twin._requestor = self._requestor.with_defaults(
            RequestOptions(timeout=timeout, deadline=deadline, max_retries=max_retries, headers=headers)
        )
        twin._owns_connection = False
        twin._init_groups(twin._requestor)
        return twin

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` has begun."""
        return self._requestor.closed

    @property
    def base_url(self) -> URL:
        """The URL every call's path is joined to."""
        return self._requestor.base_url

    @property
    def options(self) -> ClientOptions:
        """The connection tunables the client was made with (:class:`~mfa_common.options.ClientOptions`)."""
        return self._requestor.options

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy of every call (``options.retry``)."""
        return self._requestor.options.retry

    @property
    def auth(self) -> Auth | None:
        """The auth backend that signs this client's calls (None without credentials)."""
        return self._requestor.auth

    def __repr__(self) -> str:
        # The kind of credential, never its value: the backend's class name only.
        auth = self._requestor.auth
        kind = type(auth).__name__ if auth is not None else None
        return f"{type(self).__name__}(base_url={str(self.base_url)!r}, auth={kind}, closed={self.closed})"

    @property
    def requestor(self) -> Requestor:
        """The :class:`~mfa_common.requestor.Requestor` that builds and sends every call of this
        client: ``await client.requestor.request("GET", "path")`` sends a call of your own (a path
        relative to the base URL) with the same auth, retries, deadline and typed errors as
        every operation."""
        return self._requestor
