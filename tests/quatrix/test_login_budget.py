"""The login budget: about 15 logins per 15 minutes per user (Quatrix v1.0 docs).

The fake enforces it (429 + ``Retry-After``, the chosen status); the SDK never spends a login
where its live session would serve, and a throttled login is a typed error, not a retry storm.
"""

from __future__ import annotations

import base64

import anyio
import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.errors import RateLimitError
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

from .conftest import PASSWORD, ClientFactory

pytestmark = pytest.mark.anyio


def basic(email: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}


async def logins(
    fake: QuatrixFake, email: str, count: int, *, password: str = PASSWORD
) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake), base_url="http://q.test") as http:
        return [
            await http.get("/api/1.0/session/login", headers=basic(email, password)) for _ in range(count)
        ]


# -- the fake ------------------------------------------------------------------------------------


async def test_the_sixteenth_login_in_fifteen_minutes_is_throttled(
    fake: QuatrixFake, clock: FakeClock
) -> None:
    fake.add_user(email="ann@example.com", password=PASSWORD)
    first = await logins(fake, "ann@example.com", 10)
    clock.advance(300)
    second = await logins(fake, "ann@example.com", 6)
    assert [r.status_code for r in first + second] == [200] * 15 + [429]
    throttled = second[-1]
    assert throttled.headers["content-type"] == "application/json"
    assert throttled.headers["Retry-After"] == "600"  # the first ten leave the window at t+900
    assert throttled.json()["code"] == -1
    clock.advance(600)
    assert [r.status_code for r in await logins(fake, "ann@example.com", 11)] == [200] * 10 + [429]


async def test_failed_logins_count_and_other_users_keep_their_budget(fake: QuatrixFake) -> None:
    fake.add_user(email="ann@example.com", password=PASSWORD)
    fake.add_user(email="bob@example.com", password=PASSWORD)
    fake.captcha_after = 1000
    wrong = await logins(fake, "ann@example.com", 15, password="wrong-password")
    assert {r.status_code for r in wrong} == {401}
    assert [r.status_code for r in await logins(fake, "ANN@example.com", 1)] == [429]
    assert [r.status_code for r in await logins(fake, "bob@example.com", 1)] == [200]
    assert fake.counts["login_throttled"] == 1


async def test_the_budget_is_configurable_and_can_be_turned_off(clock: FakeClock) -> None:
    small = QuatrixFake(clock=clock, login_budget=2, login_window=60)
    small.add_user(email="ann@example.com", password=PASSWORD)
    assert [r.status_code for r in await logins(small, "ann@example.com", 3)] == [200, 200, 429]
    off = QuatrixFake(clock=clock, login_budget=None)
    off.add_user(email="ann@example.com", password=PASSWORD)
    assert {r.status_code for r in await logins(off, "ann@example.com", 40)} == {200}


# -- the SDK against the fake --------------------------------------------------------------------


async def test_one_client_logs_in_once_for_a_long_busy_job(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user(email="ann@example.com", password=PASSWORD, mfa=True)
    async with make_client(
        email="ann@example.com", password=PASSWORD, totp_secret=user.totp_secret
    ) as client:
        for _ in range(40):  # 40 calls over 2h40 of fake time, never idle long enough to expire
            await client.profile.get()
            clock.advance(240)
        assert await client.auth.keepalive_if_idle() is False  # type: ignore[union-attr]
    assert fake.counts["basic_login"] == 1 and fake.counts["mfa_step"] == 1


async def test_concurrent_calls_on_a_cold_client_share_one_login(
    fake: QuatrixFake, make_client: ClientFactory
) -> None:
    user = fake.add_user(email="ann@example.com", password=PASSWORD, mfa=True)
    started = 0
    async with make_client(
        email="ann@example.com", password=PASSWORD, totp_secret=user.totp_secret
    ) as client:

        async def call() -> None:
            nonlocal started
            started += 1
            await client.profile.get()

        async with anyio.create_task_group() as group:
            for _ in range(60):
                group.start_soon(call)
    assert started == 60
    assert fake.counts["basic_login"] == 1 and fake.logins_of("ann@example.com") == 1


async def test_a_throttled_login_is_one_typed_error_not_a_retry_storm(
    fake: QuatrixFake, make_client: ClientFactory
) -> None:
    fake.add_user(email="ann@example.com", password=PASSWORD)
    fake.login_budget = 0
    # validate=False: the document lists no 429 for the login (the throttling status is chosen).
    async with make_client(email="ann@example.com", password=PASSWORD, validate=False) as client:
        with pytest.raises(RateLimitError) as info:
            await client.profile.get()
    assert info.value.status_code == 429
    assert info.value.retry_after == pytest.approx(900, abs=1)
    assert PASSWORD not in str(info.value)
    assert fake.counts["login_throttled"] == 1  # a 15-minute Retry-After is not waited for


# -- the SDK against each known form of a throttled login -----------------------------------------


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (
            b'{"code": -1, "msg": "Too many requests"}',
            {"Content-Type": "application/json", "Retry-After": "120"},
        ),
        (b"Too Many Requests", {"Content-Type": "text/plain", "Retry-After": "120"}),
        (b"", {"Retry-After": "120"}),
        (b"", {}),
    ],
    ids=["error-model", "text", "empty", "no-retry-after"],
)
async def test_a_429_login_is_a_rate_limit_error(body: bytes, headers: dict[str, str]) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(429, content=body, headers=headers)

    async with QuatrixClient(
        "https://acme.quatrix.example",
        email="ann@example.com",
        password=PASSWORD,
        transport=httpx.MockTransport(handler),
        options=ClientOptions(retry=RetryPolicy(max_retries=0)),
    ) as client:
        with pytest.raises(RateLimitError) as info:
            await client.profile.get()
    assert seen[0] == "/api/1.0/session/login" and "/api/1.0/profile" not in seen
    assert info.value.retry_after == (120 if "Retry-After" in headers else None)
