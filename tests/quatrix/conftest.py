"""Fixtures for the Quatrix tests: a fake on a shared FakeClock, in-process or on a real socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.testing import SwappableApp, serve
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake
from tests.contract import ValidatingTransport

PASSWORD = "correct-horse"


@pytest.fixture(scope="module")
def socket_server() -> Iterator[tuple[SwappableApp, str]]:
    swap = SwappableApp()
    with serve(swap) as handle:
        yield swap, handle.base_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def fake(clock: FakeClock) -> QuatrixFake:
    return QuatrixFake(clock=clock, captcha_after=3, seed=None)


ClientFactory = Callable[..., QuatrixClient]


@pytest.fixture(params=["in-process", "socket"])
def make_client(
    request: pytest.FixtureRequest, fake: QuatrixFake, clock: FakeClock
) -> Iterator[ClientFactory]:
    """Build clients against ``fake``: through ASGITransport, or over a real loopback socket."""
    mode = request.param
    base_url = "http://127.0.0.1"
    if mode == "socket":
        swap, base_url = request.getfixturevalue("socket_server")
        swap.app = fake
    # In-process, every exchange is also checked against the OpenAPI document.
    validating = ValidatingTransport(httpx.ASGITransport(fake), "quatrix-1.0.yaml", prefix="/api/1.0")

    def factory(*, validate: bool = True, **kwargs: Any) -> QuatrixClient:
        kwargs.setdefault("clock", clock)
        if mode == "in-process":
            kwargs.setdefault("transport", validating if validate else httpx.ASGITransport(fake))
        return QuatrixClient(base_url, **kwargs)

    yield factory
    # Deliberate departures: the GET form of unblock-captcha is newer than the document, and the
    # fake answers a non-admin's admin call with 403 (code 70), a status the document omits.
    violations = [
        v
        for v in validating.violations
        if not v.startswith("GET /api/1.0/session/unblock-captcha") and "response 403" not in v
    ]
    assert violations == []
