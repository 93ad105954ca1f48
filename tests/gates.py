"""Transports that hold or drop requests, so concurrency and timeout tests order themselves by
events, never by sleeps.

* :class:`GatedTransport` holds every request matching ``hold`` until :meth:`GatedTransport.open`
  (counting how many are held), then passes it to the wrapped transport;
* :class:`SilentTransport` accepts every request and never answers (a server that went quiet).
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx

from mfa_common.auth import CredentialAuth

# Safety net only: a test that waits longer than this for an event has already failed.
EVENT_GUARD = 60.0


class GatedTransport(httpx.AsyncBaseTransport):
    """Holds requests for which ``hold(request)`` is true until :meth:`open` is called."""

    def __init__(self, inner: httpx.AsyncBaseTransport, hold: Callable[[httpx.Request], bool]) -> None:
        self.inner = inner
        self.hold = hold
        self.gate = anyio.Event()
        self.held = 0
        self.passed: list[httpx.Request] = []

    def open(self) -> None:
        self.gate.set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hold(request) and not self.gate.is_set():
            self.held += 1
            await self.gate.wait()
        self.passed.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class SilentTransport(httpx.AsyncBaseTransport):
    """A server that accepts the request and never answers."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover


async def wait_until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds (bounded by the safety net)."""
    with anyio.fail_after(EVENT_GUARD):
        while not condition():
            await anyio.sleep(0)


async def hold_login_until_waiters(gate: GatedTransport, auth: CredentialAuth[object], waiters: int) -> None:
    """Keep the login answer back until ``waiters`` callers wait on the in-flight login, then let
    it through: a naive (not single-flight) backend never gathers them and logs in many times."""
    await wait_until(lambda: gate.held >= 1 and auth.waiting >= waiters)
    gate.open()
