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
of a login leaves nothing half-set and holds no lock. A failed login gives every waiter its own
copy of the error (no traceback shared and grown by hundreds of waiters). A login that finishes
after :meth:`CredentialAuth.aclose` is not stored: it is logged out at once.

Logging out on close is one rule for every API: shielded from cancellation (leaving an
``async with`` from a cancelled scope still logs out), bounded by ``LOGOUT_TIMEOUT``, best
effort (a failure is logged, never raised).

Subclasses implement :meth:`login_flow` (a sans-I/O login machine, run by
:func:`mfa_common.auth.driver.drive` with the codes from :meth:`provider_for`) or, for a login
without one-time codes, :meth:`acquire`; and :meth:`apply` (put the credential on a request),
and optionally :meth:`is_expired`, :meth:`is_rejection` and :meth:`release` (logout). Every
login step and logout is built and sent by :attr:`CredentialAuth.requestor`: the bound client's
(:meth:`CredentialAuth.bind`), so they carry its headers and fall under its timeouts, deadline
and retry policy; or, for a backend given to an httpx client of your own, one made from
``base_url`` with the defaults of any SDK client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any, ClassVar, Generic, TypeVar

from .. import _constants as C
from .._httpx import URL, Auth, Request, Response
from ..clock import SYSTEM_CLOCK, Clock
from ..code_providers import CodeProvider, MfaChallenge
from ..errors import APIError, ClientClosedError, InvalidInputError, ResponseDecodeError
from ..requestor import Requestor
from .driver import Sender, drive

__all__ = ["CredentialAuth", "Sender"]
from .machine import LoginFlow

CredT = TypeVar("CredT")

logger = logging.getLogger(C.LOGGER_NAME)


class _Flight(Generic[CredT]):
    __slots__ = ("epoch", "error", "event", "result", "waiters")

    def __init__(self, epoch: int) -> None:
        import anyio  # loaded with the first login, not by an import of the SDK

        self.event = anyio.Event()
        self.epoch = epoch
        self.waiters = 0
        self.result: CredT | None = None
        self.error: BaseException | None = None


class CredentialAuth(Auth, Generic[CredT]):
    """Single-flight credential cache with compare-and-invalidate; see the module docstring."""

    requires_request_body = True
    #: Which API this backend logs in to, in login-step log lines and the ``mfa.login`` span.
    api_name: ClassVar[str] = "http"

    def __init__(self, *, base_url: str | URL | None = None, clock: Clock | None = None) -> None:
        self._credential: CredT | None = None
        self._flight: _Flight[CredT] | None = None
        self._base_url = base_url
        self._origin: tuple[bytes, bytes, int | None] | None = None
        if base_url is not None:
            self._origin = _origin_of(URL(str(base_url)))
        self._requestor: Requestor | None = None
        self._owns_requestor = False
        # Bumped by aclose(): a login started before it must not store its credential.
        self._epoch = 0
        self._closed = False
        self.clock: Clock = clock or SYSTEM_CLOCK
        #: Completed acquisitions (logins) so far; useful in tests and benchmarks.
        self.acquisitions = 0
        #: Requests carrying a one-time code sent by logins so far (each costs one code).
        self.code_steps = 0

    # -- wiring ----------------------------------------------------------------------------------

    def bind(self, requestor: Requestor) -> None:
        """Attach to an SDK client: login steps and logouts are built and sent by the client's
        requestor (its headers, timeouts, deadline, retry policy and connection pool)."""
        self._requestor = requestor
        self._owns_requestor = False
        self._origin = _origin_of(requestor.base_url)

    @property
    def requestor(self) -> Requestor:
        """The requestor of the login steps: the bound client's, or (used with an httpx client
        of your own) one this backend makes from ``base_url`` with the default options."""
        requestor = self._requestor
        if requestor is None:
            if self._base_url is None:
                raise InvalidInputError(
                    f"{type(self).__name__} needs base_url= (or an SDK client to bind it)"
                )
            requestor = self._requestor = Requestor(self._base_url, api_name=self.api_name)
            self._owns_requestor = True
        return requestor

    async def aclose(self) -> None:
        """Log out (when the backend has a logout); a backend used without an SDK client then
        closes its own connections.

        No login starts after this; a login still in flight gets a bounded time to finish,
        so that its session is logged out here rather than left alive on the server."""
        import anyio

        self._closed = True
        self._epoch += 1
        flight = self._flight
        if flight is not None:
            with anyio.move_on_after(C.LOGOUT_TIMEOUT, shield=True):
                await flight.event.wait()
        credential, self._credential = self._credential, None
        try:
            if credential is not None:
                await self._release_bounded(credential)
        finally:
            requestor = self._requestor
            if self._owns_requestor and requestor is not None:
                with anyio.CancelScope(shield=True):
                    await requestor.close()

    async def _release_bounded(self, credential: CredT) -> None:
        """The close-time logout rule: shielded, bounded, best effort; sent even while the
        client closes (see :meth:`~mfa_common.requestor.Requestor.releasing`)."""
        import anyio

        with anyio.move_on_after(C.LOGOUT_TIMEOUT, shield=True):
            try:
                with self.requestor.releasing():
                    await self.release(credential)
            except (APIError, ClientClosedError) as exc:
                logger.debug("logout failed: %s", type(exc).__name__)

    # -- subclass hooks ------------------------------------------------------------------------

    async def acquire(self, stale: CredT | None) -> CredT:
        """Log in and return a fresh credential. ``stale`` is the one being replaced, if any.

        The default runs :meth:`login_flow` through the driver."""
        return await self.run_login(lambda: self.login_flow(stale))

    def login_flow(self, stale: CredT | None) -> LoginFlow[CredT]:
        """The sans-I/O login machine of this backend (see :mod:`mfa_common.auth.machine`)."""
        raise NotImplementedError

    def provider_for(self, challenge: MfaChallenge) -> CodeProvider | None:
        """The code provider answering ``challenge`` (default: none)."""
        return None

    async def run_login(self, start: Callable[[], LoginFlow[CredT]]) -> CredT:
        """Drive the machine made by ``start`` with this backend's sender, providers and clock."""
        requestor = self.requestor
        return await drive(
            start,
            send=requestor.send,
            policy=requestor.retry_policy,
            provider_for=self.provider_for,
            clock=self.clock,
            on_code_sent=self._count_code_step,
            api=self.api_name,
        )

    def _count_code_step(self) -> None:
        self.code_steps += 1

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

    @property
    def waiting(self) -> int:
        """How many callers wait on the login in flight (0 when none is)."""
        flight = self._flight
        return flight.waiters if flight is not None else 0

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
                if self._closed:
                    raise ClientClosedError("the client is closed: no new login starts")
                flight = self._flight = _Flight(self._epoch)
                try:
                    fresh = await self.acquire(credential)
                    self._check_applicable(fresh)
                    if flight.epoch != self._epoch:
                        # The backend was closed while this login ran: log the session out.
                        await self._release_bounded(fresh)
                        raise ClientClosedError("the client was closed while logging in")
                except Exception as exc:
                    # Waiters get copies of a traceback-free error; the leader raises its own.
                    flight.error = _fresh_copy(exc)
                    raise
                else:
                    flight.result = fresh
                    self._credential = fresh
                    self.acquisitions += 1
                    return fresh
                finally:
                    self._flight = None
                    flight.event.set()
            flight.waiters += 1
            try:
                await flight.event.wait()
            finally:
                flight.waiters -= 1
            if flight.error is not None:
                raise _fresh_copy(flight.error)
            if flight.result is not None:
                return flight.result
            # The leader was cancelled: loop, and one of the waiters leads the next attempt.

    def _check_applicable(self, credential: CredT) -> None:
        """Refuse a credential that cannot go on a request (a session id or token with
        characters no HTTP header may carry): the login fails with a typed error instead of
        every later request failing inside httpx."""
        probe = self.requestor.build("GET", "")
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


def _fresh_copy(exc: BaseException) -> BaseException:
    """A copy of ``exc`` without its traceback (same class, message and attributes), so that each
    waiter of a failed login raises its own error and none keeps another task's frames alive."""
    cls = type(exc)
    try:
        clone = cls.__new__(cls, *exc.args)
    except TypeError:  # pragma: no cover - an exception class with an unusual __new__
        return exc.with_traceback(None)
    clone.args = exc.args
    if hasattr(exc, "__dict__"):
        clone.__dict__.update(exc.__dict__)
    clone.__cause__ = exc.__cause__
    clone.__suppress_context__ = exc.__suppress_context__
    return clone


def _unsendable(backend: str) -> ResponseDecodeError:
    return ResponseDecodeError(
        f"{backend}: the server issued a credential that cannot be sent in an HTTP header"
    )


def _origin_of(url: URL) -> tuple[bytes, bytes, int | None]:
    return (url.raw_scheme, url.raw_host, url.port)
