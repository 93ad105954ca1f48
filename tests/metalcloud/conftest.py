"""Fixtures: a fake MetalCloud with a shared FakeClock, reachable in-process or over a socket."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.replay_guard import StepRegistry
from mfa_common.testing import generate_base32_secret, serve
from mfa_common.totp import WeakSecretWarning

ADMIN_EMAIL = "root@example.test"
ADMIN_PASSWORD = "root-password"
TOTP_EMAIL = "totp@example.test"
TOTP_PASSWORD = "totp-password"


@pytest.fixture(autouse=True)
def _quiet_weak_secret() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakSecretWarning)
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_750_000_000.0)


@pytest.fixture
def fake(clock: FakeClock) -> MetalCloudFake:
    fake = MetalCloudFake(clock=clock, jwt_ttl=3600)
    fake.add_user(ADMIN_EMAIL, ADMIN_PASSWORD, access_level="root", display_name="Root")
    fake.add_user(TOTP_EMAIL, TOTP_PASSWORD, access_level="admin", totp_secret=generate_base32_secret(20))
    return fake


@pytest.fixture(params=["inprocess", "socket"])
def endpoint(request: pytest.FixtureRequest, fake: MetalCloudFake) -> Iterator[dict[str, Any]]:
    """Client keyword arguments reaching the fake in-process or over a real loopback socket."""
    if request.param == "inprocess":
        yield {"base_url": "http://metalcloud.localhost", "transport": httpx.ASGITransport(fake)}
    else:
        with serve(fake) as server:
            yield {"base_url": server.base_url}


@pytest.fixture
def registry() -> StepRegistry:
    """A private replay registry so tests do not wait on each other's TOTP steps."""
    return StepRegistry()


def api_key_client(
    fake: MetalCloudFake, endpoint: dict[str, Any], email: str = ADMIN_EMAIL, **kw: Any
) -> MetalCloudClient:
    return MetalCloudClient(api_key=fake.user(email).api_key, **endpoint, **kw)


@pytest.fixture
def local(fake: MetalCloudFake) -> dict[str, Any]:
    """Client keyword arguments reaching the fake in-process only (for the cheaper checks)."""
    return {"base_url": "http://metalcloud.localhost", "transport": httpx.ASGITransport(fake)}
