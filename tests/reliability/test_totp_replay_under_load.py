"""TOTP replay safety under load: 50 concurrent logins of one MFA user, against each fake whose
server rejects a reused time step (Quatrix session 2FA, the X-MFA-Token exchange, MetalCloud
``login-2fa``).

Fifty separate clients are used (one client single-flights its own login, so it would log in
only once). They share one process-wide step registry, as every client in a real process does,
and one :class:`~mfa_common.clock.FakeClock` with the fake, so each wait for the next 30-second
step is instant. The fake runs in-process (``httpx.ASGITransport``), so the server checks each
code at the simulated time the client sent it.

The 50th login waits ~25 simulated minutes for its step: longer than a Quatrix partial session
(15-minute idle timeout) or a MetalCloud pending JWT (5 minutes) lives, so those backends must
log in again when the wait outlived the pending session; smaller loads (25 and 8 logins) that
fit in those lifetimes are run as well.

Proved: all logins succeed; the server's verifier saw 50 ``ok`` verdicts and no ``replayed``
or ``wrong`` one; the accepted steps are 50 distinct, successive steps. The real wall time and
the simulated span are printed. Runs under asyncio and Trio.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from metalcloud_async.testing import MetalCloudFake
from mfa_common.clock import FakeClock
from mfa_common.code_providers import TotpCodeProvider
from mfa_common.replay_guard import StepRegistry
from mfa_common.testing import ReplayRejectingVerifier, generate_base32_secret
from mfa_common.totp import WeakSecretWarning
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

LOGINS = 50
PASSWORD = "replay-load-pass"
START = 1_700_000_000.0

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _quiet_weak_secret() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakSecretWarning)
        yield


class CountingVerifier(ReplayRejectingVerifier):
    """The fakes' replay-rejecting verifier, counting verdicts and recording accepted steps."""

    def __init__(self) -> None:
        super().__init__()
        self.verdicts: Counter[str] = Counter()
        self.accepted_steps: list[int] = []

    def verify(self, user_key: str, code: str, **kwargs: Any) -> Any:
        verdict = super().verify(user_key, code, **kwargs)
        self.verdicts[verdict] += 1
        if verdict == "ok":
            step = self.last_step(user_key)
            assert step is not None
            self.accepted_steps.append(step)
        return verdict


class RecordingRegistry(StepRegistry):
    """A private step registry (shared by the 50 clients) that remembers each step handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.reserved: list[int] = []

    def reserve(self, fingerprint: str, step: int) -> bool:
        ok = super().reserve(fingerprint, step)
        if ok:
            self.reserved.append(step)
        return ok


Login = Callable[[TotpCodeProvider], Awaitable[None]]


async def storm(
    name: str, clock: FakeClock, verifier: CountingVerifier, secret: str, login: Login, logins: int = LOGINS
) -> None:
    registry = RecordingRegistry()
    failures: list[str] = []
    started_sim, started_wall = clock.now(), time.perf_counter()

    async def one() -> None:
        provider = TotpCodeProvider(secret, clock=clock, registry=registry)
        try:
            await login(provider)
        except Exception as exc:  # collected, so one failure does not hide the others
            failures.append(f"{type(exc).__name__}: {exc}")

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for _ in range(logins):
                group.start_soon(one)
    wall = time.perf_counter() - started_wall
    span = clock.now() - started_sim
    print(
        f"\n{name}: {logins} concurrent logins in {wall:.2f} s wall, {span:.0f} s simulated "
        f"({span / 30:.1f} TOTP steps); server verdicts {dict(verifier.verdicts)}"
    )
    assert failures == []
    assert verifier.verdicts == Counter({"ok": logins})  # none replayed, none wrong
    steps = sorted(verifier.accepted_steps)
    assert steps == list(range(steps[0], steps[0] + logins)), steps  # distinct and successive
    assert sorted(registry.reserved) == steps  # each step handed out once, and used
    assert span >= (logins - 2) * 30  # the waits really spanned the steps


@pytest.mark.parametrize("logins", [25, LOGINS])
async def test_quatrix_session_2fa_logins_under_load(logins: int) -> None:
    clock = FakeClock(START)
    fake = QuatrixFake(clock=clock, login_budget=None)  # many logins of one user on purpose
    verifier = CountingVerifier()
    fake.verifier = verifier
    secret = generate_base32_secret(20)
    user = fake.add_user(email="load@example.com", password=PASSWORD, totp_secret=secret)

    async def login(provider: TotpCodeProvider) -> None:
        async with QuatrixClient(
            "http://127.0.0.1",
            email=user.email,
            password=PASSWORD,
            code_provider=provider,
            clock=clock,
            transport=httpx.ASGITransport(fake),
        ) as client:
            await client.login()
            assert (await client.profile.get()).email == user.email

    await storm("quatrix", clock, verifier, secret, login, logins)
    assert fake.logins_of(user.email) == logins
    assert fake.counts["mfa_step"] == logins


async def test_xmfa_token_exchanges_under_load() -> None:
    clock = FakeClock(START)
    fake = XMfaFake(clock=clock, jwt_ttl=3600.0)
    verifier = CountingVerifier()
    fake.verifier = verifier
    secret = generate_base32_secret(20)
    fake.add_user("load", PASSWORD, email="load@example.com", totp_secret=secret)

    async def login(provider: TotpCodeProvider) -> None:
        auth = XMfaTokenAuth("load", PASSWORD, code_provider=provider, clock=clock)
        async with XMfaClient(
            "http://127.0.0.1", auth=auth, clock=clock, transport=httpx.ASGITransport(fake)
        ) as client:
            assert (await client.user.get()).user == "load"
        assert auth.acquisitions == 1

    await storm("x-mfa", clock, verifier, secret, login)
    assert fake.counts["exchange"] == LOGINS
    assert fake.counts["login_attempt"] == LOGINS


@pytest.mark.parametrize("logins", [8, LOGINS])
async def test_metalcloud_login_2fa_under_load(logins: int) -> None:
    clock = FakeClock(START)
    fake = MetalCloudFake(clock=clock, jwt_ttl=3600)
    verifier = CountingVerifier()
    fake.verifier = verifier
    secret = generate_base32_secret(20)
    fake.add_user("load@example.test", PASSWORD, access_level="admin", totp_secret=secret)

    async def login(provider: TotpCodeProvider) -> None:
        async with MetalCloudClient(
            "http://metalcloud.localhost",
            email="load@example.test",
            password=PASSWORD,
            code_provider=provider,
            clock=clock,
            transport=httpx.ASGITransport(fake),
        ) as client:
            assert (await client.user.get()).email == "load@example.test"
            backend = client.auth
            assert getattr(backend, "two_factor_logins", None) == 1

    await storm("metalcloud", clock, verifier, secret, login, logins)
