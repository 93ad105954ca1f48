"""Replay-safe code issuing: distinct steps under concurrency, waiting instead of reusing."""

from __future__ import annotations

import anyio
import pytest

from mfa_common.clock import FakeClock
from mfa_common.code_providers import (
    CallbackCodeProvider,
    MfaChallenge,
    RecoveryCodeProvider,
    StaticCodeProvider,
    TotpCodeProvider,
)
from mfa_common.errors import InvalidCodeError, RecoveryCodesExhaustedError
from mfa_common.recovery_codes import RecoveryCodeFormat, RecoveryCodeStore
from mfa_common.replay_guard import StepRegistry, next_totp
from mfa_common.totp import Totp

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@pytest.mark.anyio
async def test_concurrent_callers_get_distinct_successive_steps() -> None:
    clock = FakeClock(1_000_000_005.0)
    registry = StepRegistry()
    totp = Totp(SECRET)
    issued = []

    async def take() -> None:
        issued.append(await next_totp(totp, clock=clock, registry=registry))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(take)
    steps = sorted(i.step for i in issued)
    assert len(set(steps)) == 20
    assert steps == list(range(steps[0], steps[0] + 20))
    for item in issued:
        assert item.code.reveal() == totp.code_at_step(item.step)


@pytest.mark.anyio
async def test_second_code_waits_for_the_next_step() -> None:
    clock = FakeClock(1_000_000_005.0)
    registry = StepRegistry()
    totp = Totp(SECRET)
    first = await next_totp(totp, clock=clock, registry=registry)
    before = clock.now()
    second = await next_totp(totp, clock=clock, registry=registry)
    assert second.step == first.step + 1
    next_boundary = (first.step + 1) * totp.period
    assert clock.now() == pytest.approx(next_boundary + 0.25, abs=0.01)
    assert clock.now() > before


@pytest.mark.anyio
async def test_never_hands_out_a_code_about_to_expire() -> None:
    clock = FakeClock(1_000_000_019.0)  # 29 s into the step: 1 s left
    issued = await next_totp(Totp(SECRET), clock=clock, registry=StepRegistry(), min_remaining=3)
    assert issued.step == Totp(SECRET).step_at(1_000_000_019.0) + 1


@pytest.mark.anyio
async def test_registry_is_shared_between_providers_of_the_same_secret() -> None:
    clock = FakeClock(1_000_000_005.0)
    registry = StepRegistry()
    a = TotpCodeProvider(SECRET, clock=clock, registry=registry)
    b = TotpCodeProvider(SECRET.lower(), clock=clock, registry=registry)
    code_a = await a.issue(MfaChallenge())
    code_b = await b.issue(MfaChallenge())
    assert code_a.value != code_b.value


@pytest.mark.anyio
async def test_recovery_provider_settles_reservations() -> None:
    store = RecoveryCodeStore(["MLNSPOB2L2ZRO2D5", "6UIHAIN3CYUEFY5X"], format=RecoveryCodeFormat.SHELLHUB)
    provider = RecoveryCodeProvider(store)
    first = await provider.issue(MfaChallenge(kind="recovery"))
    first.not_sent()  # never reached the server: back to the pool
    assert store.remaining == 2
    again = await provider.issue(MfaChallenge(kind="recovery"))
    again.accepted()
    other = await provider.issue(MfaChallenge(kind="recovery"))
    other.unknown()
    assert store.remaining == 0
    with pytest.raises(RecoveryCodesExhaustedError):
        await provider.issue(MfaChallenge(kind="recovery"))
    assert "MLNSPOB2L2ZRO2D5" not in repr(provider) + repr(again)


@pytest.mark.anyio
async def test_callback_provider_validates_before_sending() -> None:
    async def ask(challenge: MfaChallenge) -> str:
        return " 123 456 "

    issued = await CallbackCodeProvider(ask).issue(MfaChallenge())
    assert issued.value.reveal() == "123456"
    with pytest.raises(InvalidCodeError):
        await CallbackCodeProvider(lambda c: "12345x").issue(MfaChallenge())


@pytest.mark.anyio
async def test_static_provider_for_pins() -> None:
    issued = await StaticCodeProvider("12345").issue(MfaChallenge(kind="pin"))
    assert issued.kind == "pin" and issued.value.reveal() == "12345"
    assert "12345" not in repr(StaticCodeProvider("12345"))
