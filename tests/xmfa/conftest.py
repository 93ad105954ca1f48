"""Fixtures: a fake sharing one FakeClock with the client, reachable in-process or by socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.testing._server import serve
from mfa_common.xmfa import XMfaClient
from mfa_common.xmfa.testing import XMfaFake
from tests.contract import ValidatingTransport

SPEC = "shellhub-mfa.yaml"


def unexpected_violations(transport: ValidatingTransport) -> list[str]:
    """Spec violations minus the one known departure of the real server: a refused credential
    gets a 401 with no body at all (ShellHub's authn middleware, CONFIRMED), where the document
    shows an example message."""
    return [v for v in transport.violations if "response 401: MissingData()" not in v]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def fake(clock: FakeClock) -> XMfaFake:
    return XMfaFake(clock=clock, jwt_ttl=3600.0)


@pytest.fixture(params=["asgi", "socket"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


ClientFactory = Callable[..., Any]


@pytest.fixture
def connect(fake: XMfaFake, clock: FakeClock, mode: str) -> Iterator[ClientFactory]:
    """``async with connect(auth=...) as client`` against the fake: in-process through the
    contract-validating transport, or over a real loopback socket with the SDK's transport."""
    transports: list[ValidatingTransport] = []

    def validating() -> ValidatingTransport:
        transport = ValidatingTransport(httpx.ASGITransport(fake), SPEC)
        transports.append(transport)
        return transport

    if mode == "socket":
        with serve(fake) as handle:

            @asynccontextmanager
            async def socket_client(**kw: Any) -> AsyncIterator[XMfaClient]:
                async with XMfaClient(handle.base_url, clock=clock, **kw) as client:
                    yield client

            yield socket_client
    else:

        @asynccontextmanager
        async def asgi_client(**kw: Any) -> AsyncIterator[XMfaClient]:
            async with XMfaClient("http://127.0.0.1", clock=clock, transport=validating(), **kw) as client:
                yield client

        yield asgi_client
    for transport in transports:
        assert unexpected_violations(transport) == []
