"""The base of every auth backend that has to obtain a credential before use.

:class:`CredentialAuth` is an ``httpx.Auth`` whose async flow

1. applies the cached credential, acquiring one first when there is none or it expired;
2. acquires **single-flight**: however many requests arrive on a cold or expired credential,
   one of them (the leader) logs in and the others wait for its result; a leader's failure is
   handed to the waiters (no stampede of failed logins feeding a lockout counter), while a
   leader that was cancelled hands over to the next waiter;
3. on a rejection (401 by default) clears the credential only if it is still the one that was
   rejected (compare-and-invalidate), acquires again and replays the request once.

Credentials are stored only once a login has fully completed, so cancelling at any await point
of a login leaves nothing half-set and holds no lock.

Subclasses implement :meth:`acquire` (the login, using :meth:`send` for its requests) and
:meth:`apply` (put the credential on a request), and optionally :meth:`is_expired`,
:meth:`is_rejection` and :meth:`release` (logout).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import anyio

from .._httpx import URL, AsyncClient, Auth, Request, Response
from ..clock import SYSTEM_CLOCK, Clock
from ..errors import ResponseDecodeError

CredT = TypeVar("CredT")

Sender = Callable[[Request], Awaitable[Response]]


class _Flight(Generic[CredT]):
    __slots__ = ("error", "event", "result")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.result: CredT | None = None
        self.error: BaseException | None = None


class CredentialAuth(Auth, Generic[CredT]):
    """Single-flight credential cache with compare-and-invalidate; see the module docstring."""

    requires_request_body = True

    def __init__(self, *, base_url: str | URL | None = None, clock: Clock | None = None) -> None:
        self._credential: CredT | None = None
        self._flight: _Flight[CredT] | None = None
        self._base_url = URL(str(base_url).rstrip("/") + "/") if base_url is not None else None
        self._origin: tuple[bytes, bytes, int | None] | None = None
        if self._base_url is not None:
            self._origin = _origin_of(self._base_url)
        self._sender: Sender | None = None
        self._own_client: AsyncClient | None = None
        self.clock: Clock = clock or SYSTEM_CLOCK
        #: Completed acquisitions (logins) so far; useful in tests and benchmarks.
        self.acquisitions = 0

    # -- wiring ----------------------------------------------------------------------------------

    def bind(self, *, base_url: URL, send: Sender) -> None:
        """Attach to an SDK client: login requests go through ``send`` (no auth, same pool)."""
        self._base_url = base_url
        self._origin = _origin_of(base_url)
        self._sender = send

    def build_request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Request:
        """A request relative to the base URL, for the backend's own login steps."""
        if self._base_url is None:
            raise RuntimeError("this auth backend needs base_url= (or an SDK client to bind it)")
        url = self._base_url.join(path.lstrip("/"))
        try:
            return Request(method, url, json=json, headers=headers, params=params)
        except UnicodeError as exc:
            # A header built from what the server sent (a session id) that no header may carry.
            raise _unsendable(type(self).__name__) from exc

    async def send(self, request: Request) -> Response:
        """Send a login-step request without auth (through the bound client when there is one)."""
        if self._sender is not None:
            return await self._sender(request)
        if self._own_client is None:
            from .._httpx import Limits
            from .._transports import default_transport

            self._own_client = AsyncClient(transport=default_transport(limits=Limits()), trust_env=False)
        response = await self._own_client.send(request)
        return response

    async def aclose(self) -> None:
        """Log out (when the backend has a logout) and close a private client."""
        credential, self._credential = self._credential, None
        try:
            if credential is not None:
                await self.release(credential)
        finally:
            client, self._own_client = self._own_client, None
            if client is not None:
                await client.aclose()

    # -- subclass hooks ------------------------------------------------------------------------

    async def acquire(self, stale: CredT | None) -> CredT:
        """Log in and return a fresh credential. ``stale`` is the one being replaced, if any."""
        raise NotImplementedError

    def apply(self, request: Request, credential: CredT) -> None:
        """Put ``credential`` on ``request``."""
        raise NotImplementedError

    def is_expired(self, credential: CredT) -> bool:
        """Whether ``credential`` must be replaced before use (default: never)."""
        return False

    def is_rejection(self, response: Response) -> bool:
        """Whether ``response`` says the credential was refused (default: 401)."""
        return response.status_code == 401

    async def release(self, credential: CredT) -> None:
        """Give ``credential`` back to the server (logout). Default: nothing to do."""

    def used(self, credential: CredT) -> None:
        """Called after each request sent with ``credential`` (e.g. to track idle time)."""

    # -- the credential cache ------------------------------------------------------------------

    @property
    def credential(self) -> CredT | None:
        """The cached credential, if any (for inspection; holds secrets: do not log)."""
        return self._credential

    def invalidate(self, credential: CredT | None = None) -> None:
        """Forget the cached credential, but only if it is ``credential`` (None: forget any)."""
        if credential is None or self._credential is credential:
            self._credential = None

    async def get_credential(self) -> CredT:
        """The current credential, acquiring one single-flight when needed."""
        while True:
            credential = self._credential
            if credential is not None and not self.is_expired(credential):
                return credential
            flight = self._flight
            if flight is None:
                flight = self._flight = _Flight()
                try:
                    fresh = await self.acquire(credential)
                    self._check_applicable(fresh)
                except Exception as exc:
                    flight.error = exc
                    raise
                else:
                    flight.result = fresh
                    self._credential = fresh
                    self.acquisitions += 1
                    return fresh
                finally:
                    self._flight = None
                    flight.event.set()
            await flight.event.wait()
            if flight.error is not None:
                raise flight.error
            if flight.result is not None:
                return flight.result
            # The leader was cancelled: loop, and one of the waiters leads the next attempt.

    def _check_applicable(self, credential: CredT) -> None:
        """Refuse a credential that cannot go on a request (a session id or token with
        characters no HTTP header may carry): the login fails with a typed error instead of
        every later request failing inside httpx."""
        probe = Request("GET", self._base_url or "http://localhost/")
        try:
            self.apply(probe, credential)
            printable = all(0x20 <= b < 0x7F for _, value in probe.headers.raw for b in value)
        except (UnicodeError, TypeError, ValueError) as exc:
            raise _unsendable(type(self).__name__) from exc
        if not printable:
            raise _unsendable(type(self).__name__)

    # -- the httpx flow ------------------------------------------------------------------------

    async def async_auth_flow(self, request: Request) -> AsyncGenerator[Request, Response]:
        if self._origin is None:
            self._origin = _origin_of(request.url)
        elif _origin_of(request.url) != self._origin:
            # Credentials never travel to another origin (a redirect, an absolute URL).
            yield request
            return
        if self.requires_request_body:
            await request.aread()  # the body must be replayable after a rejection
        credential = self._credential
        if credential is None or self.is_expired(credential):
            credential = await self.get_credential()
        self.apply(request, credential)
        response = yield request
        if response.status_code >= 400:
            await response.aread()  # so is_rejection() may read an error body
        if self.is_rejection(response):
            self.invalidate(credential)
            credential = await self.get_credential()
            self.apply(request, credential)
            response = yield request
        self.used(credential)

    def sync_auth_flow(self, request: Request) -> Any:
        raise RuntimeError(f"{type(self).__name__} works with async clients only")


def _unsendable(backend: str) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"{backend}: the server issued a credential that cannot be sent in an HTTP header"
    )


def _origin_of(url: URL) -> tuple[bytes, bytes, int | None]:
    return (url.raw_scheme, url.raw_host, url.port)
