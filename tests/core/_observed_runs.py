"""A full login and a few calls per API against its in-process fake, with the secrets the run
knows of (shared by the observability tests and their child process without OpenTelemetry)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs
import httpx

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.testing import generate_base32_secret
from mfa_common.totp import Totp
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

BASE = "http://127.0.0.1"
PASSWORD = "observed-password-4711"
EMAIL = "observed@example.com"


@attrs.define
class Run:
    """What one API's login and calls produced, and every secret the test knows of."""

    secrets: list[str]
    login_method: str
    login_route: str
    code_route: str


Scenario = Callable[[], Awaitable[Run]]


def _codes_around(secret: str, clock: FakeClock) -> list[str]:
    totp = Totp(secret)
    step = totp.step_at(clock.now())
    return [totp.code_at_step(s) for s in range(step - 2, step + 4)]


async def quatrix_run(*, logins: int = 1) -> Run:
    """``logins`` clients in turn, each logging the same user in (a second one waits for a
    fresh code window)."""
    clock = FakeClock(1_700_000_000.0)
    fake = QuatrixFake(clock=clock, seed=None)
    user = fake.add_user(EMAIL, PASSWORD, totp_secret=generate_base32_secret(20))
    assert user.totp_secret is not None
    secrets = [PASSWORD, user.totp_secret, *_codes_around(user.totp_secret, clock)]
    for _ in range(logins):
        async with QuatrixClient(
            BASE,
            email=EMAIL,
            password=PASSWORD,
            totp_secret=user.totp_secret,
            clock=clock,
            transport=httpx.ASGITransport(fake),
        ) as client:
            await client.profile.get()
            await client.profile.info()
            secrets += [s.id for s in fake.sessions_of(EMAIL)]
    assert fake.logins_of(EMAIL) == logins
    return Run(secrets, "GET", "/api/1.0/session/login", "/api/1.0/session/login")


async def metalcloud_run() -> Run:
    clock = FakeClock(1_700_000_000.0)
    fake = MetalCloudFake(clock=clock)
    secret = generate_base32_secret(20)
    user = fake.add_user(EMAIL, PASSWORD, totp_secret=secret)
    secrets = [PASSWORD, secret, user.api_key, *_codes_around(secret, clock)]
    async with MetalCloudClient(
        BASE,
        email=EMAIL,
        password=PASSWORD,
        totp_secret=secret,
        clock=clock,
        transport=httpx.ASGITransport(fake),
    ) as client:
        await client.user.get()
        await client.user.get()
    return Run(secrets, "POST", "/api/v2/login", "/api/v2/login-2fa")


async def xmfa_run() -> Run:
    clock = FakeClock(1_700_000_000.0)
    fake = XMfaFake(clock=clock)
    user = fake.add_user("observed", PASSWORD, mfa=True)
    assert user.totp_secret is not None
    secrets = [PASSWORD, user.totp_secret, *user.recovery_codes, *_codes_around(user.totp_secret, clock)]
    auth = XMfaTokenAuth("observed", PASSWORD, totp_secret=user.totp_secret, clock=clock)
    async with XMfaClient(BASE, transport=httpx.ASGITransport(fake), auth=auth, clock=clock) as client:
        assert (await client.user.get()).user == "observed"
        await client.user.get()
    return Run(secrets, "POST", "/api/login", "/api/user/mfa/auth")


SCENARIOS: dict[str, Scenario] = {"quatrix": quatrix_run, "metalcloud": metalcloud_run, "xmfa": xmfa_run}
