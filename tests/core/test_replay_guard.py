"""Replay-safe code issuing: distinct steps under concurrency, waiting instead of reusing."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

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
from mfa_common.replay_guard import (
    STEP_REGISTRY,
    StepRegistry,
    current_step_registry,
    next_totp,
    using_step_registry,
)
from mfa_common.replay_state import (
    STATE_DIR_ENV,
    FileStepRegistry,
    StepStateError,
    default_state_dir,
    default_step_registry,
    shared_step_registry,
)
from mfa_common.totp import Totp

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
HERE = Path(__file__).parent


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


@pytest.mark.anyio
async def test_a_longer_period_of_the_same_key_does_not_wait_for_decades() -> None:
    """Steps of a 30 s and a 60 s code are different windows: the registry keys them apart."""
    clock = FakeClock(1_000_000_005.0)
    registry = StepRegistry()
    await next_totp(Totp(SECRET), clock=clock, registry=registry)
    issued = await next_totp(Totp(SECRET, period=60), clock=clock, registry=registry)
    assert sum(clock.sleeps) < 60
    assert issued.step == Totp(SECRET, period=60).step_at(clock.now())
    # The 60 s key still has its own replay guard.
    again = await next_totp(Totp(SECRET, period=60), clock=clock, registry=registry)
    assert again.step == issued.step + 1


@pytest.mark.anyio
async def test_every_wait_for_a_code_window_is_logged_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(1_000_000_005.0)
    registry = StepRegistry()
    totp = Totp(SECRET)
    with caplog.at_level(logging.INFO, logger="mfa_common"):
        first = await next_totp(totp, clock=clock, registry=registry)
        assert not [r for r in caplog.records if "code window" in r.getMessage()]
        second = await next_totp(totp, clock=clock, registry=registry)
        clock.set(1_000_000_019.5)  # 0.5 s left in the step: too little
        await next_totp(totp, clock=clock, registry=StepRegistry())
    waits = [r for r in caplog.records if "code window" in r.getMessage()]
    assert len(waits) == 2
    assert all(r.levelno == logging.INFO for r in waits)
    assert "waiting 15.2 s for the next code window" in waits[0].getMessage()
    text = "\n".join(r.getMessage() for r in caplog.records)
    for leaked in (SECRET, totp.code_at_step(first.step), totp.code_at_step(second.step)):
        assert leaked not in text


@pytest.mark.anyio
async def test_using_step_registry_applies_to_codes_without_an_explicit_registry() -> None:
    clock = FakeClock(1_000_000_005.0)
    registry = StepRegistry()
    with using_step_registry(registry):
        issued = await next_totp(Totp(SECRET), clock=clock)
    assert registry.last_used(registry.key_for(Totp(SECRET))) == issued.step
    assert current_step_registry() is default_step_registry()  # the default again after the block


# ------------------------------------------------------------------ the state-file registry


@pytest.mark.anyio
async def test_state_file_registry_remembers_steps_privately(tmp_path: Path) -> None:
    path = tmp_path / "state" / "steps.json"
    clock = FakeClock(1_000_000_005.0)
    totp = Totp(SECRET)
    first = await next_totp(totp, clock=clock, registry=FileStepRegistry(path))
    # A new registry object on the same file (as a new process would make) sees that step.
    second = await next_totp(totp, clock=clock, registry=FileStepRegistry(path))
    assert second.step == first.step + 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    raw = path.read_text()
    for leaked in (SECRET, SECRET.lower(), totp.code_at_step(first.step), totp.fingerprint):
        assert leaked not in raw
    assert len(json.loads(raw)["steps"]) == 1


@pytest.mark.anyio
async def test_state_file_registry_prunes_and_bounds_its_entries(tmp_path: Path) -> None:
    path = tmp_path / "steps.json"
    registry = FileStepRegistry(path, max_entries=3)
    clock = FakeClock(1_000_000_005.0)
    keys = [Totp(base64.b32encode(bytes([n]) * 20).decode()) for n in range(5)]
    for totp in keys:
        await next_totp(totp, clock=clock, registry=registry)
    assert len(registry) == 3  # the oldest were dropped
    clock.advance(2 * 3600)  # past the retention of every entry written so far
    await next_totp(keys[0], clock=clock, registry=registry)
    assert len(registry) == 1


def test_state_file_registry_refuses_a_shared_or_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "steps.json"
    path.write_text("{}")
    path.chmod(0o644)
    registry = FileStepRegistry(path)
    with pytest.raises(StepStateError, match="chmod 600"):
        registry.claim(Totp(SECRET), 1)
    path.chmod(0o600)
    with pytest.raises(StepStateError, match="delete it"):
        registry.claim(Totp(SECRET), 1)
    path.write_text("not json")
    with pytest.raises(StepStateError, match="not valid JSON"):
        registry.claim(Totp(SECRET), 1)


def test_state_directory_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir() == tmp_path / "xdg" / "mfa-sdks"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir() == tmp_path / "home" / ".local" / "state" / "mfa-sdks"
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "override"))
    assert shared_step_registry().path == tmp_path / "override" / "totp-steps.json"
    assert shared_step_registry() is shared_step_registry()


def _issue_in_child(state: Path, now: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "_step_child.py"), str(state), repr(now)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(child: subprocess.Popen[str]) -> dict[str, float]:
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    result: dict[str, float] = json.loads(out)
    return result


def test_a_second_process_in_the_same_step_waits_for_the_next(tmp_path: Path) -> None:
    """Two real processes, one state file, the same (fake) moment: the second does not reuse
    the first one's step, it waits (on its fake clock) for the next window."""
    state = tmp_path / "steps.json"
    now = 1_000_000_005.0
    first = _result(_issue_in_child(state, now))
    second = _result(_issue_in_child(state, now))
    assert first["slept"] == 0
    assert second["step"] == first["step"] + 1
    assert second["slept"] == pytest.approx((first["step"] + 1) * 30 - now + 0.25)


def test_concurrent_processes_get_distinct_steps(tmp_path: Path) -> None:
    """Four processes claiming at once through the lock: four successive steps, none shared."""
    state = tmp_path / "steps.json"
    now = 1_000_000_005.0
    children = [_issue_in_child(state, now) for _ in range(4)]
    steps = sorted(int(_result(child)["step"]) for child in children)
    assert steps == list(range(steps[0], steps[0] + 4))
    assert steps[0] == Totp(SECRET).step_at(now)


def test_a_state_file_locked_too_long_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl

    import mfa_common.replay_state as module

    path = tmp_path / "steps.json"
    monkeypatch.setattr(module, "LOCK_TIMEOUT_SECONDS", 0.0)
    holder = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(StepStateError, match="stayed locked"):
            FileStepRegistry(path).claim(Totp(SECRET), 1)
    finally:
        os.close(holder)
    assert FileStepRegistry(path).claim(Totp(SECRET), 1) is None


def test_a_step_reserved_through_key_for_is_not_claimed_again(tmp_path: Path) -> None:
    """On a fresh state file the public methods agree on the key: a step reserved through
    key_for() and reserve() is not handed out again by claim(), nor by another registry object
    on the same file."""
    path = tmp_path / "steps.json"
    registry = FileStepRegistry(path)
    totp = Totp(SECRET)
    key = registry.key_for(totp)
    assert registry.reserve(key, 100)
    assert registry.last_used(key) == 100
    assert registry.claim(totp, 100) == 100
    assert FileStepRegistry(path).key_for(totp) == key
    assert FileStepRegistry(path).claim(totp, 100) == 100


# ------------------------------------------------------------------ the default registry


def test_the_shared_registry_is_the_default_and_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """No opt-in: a code issued with no registry is recorded in the user's state file, where
    another process finds it. MFA_SDKS_STEP_STATE=0 or an explicit registry keep it in the process."""
    from mfa_common.replay_state import STEP_STATE_ENV

    totp = Totp(SECRET)
    clock = FakeClock(1_000_000_005.0)
    issued = anyio.run(lambda: next_totp(totp, clock=clock))
    on_disk = FileStepRegistry()  # the default path, as another process would open it
    assert on_disk.last_used(on_disk.key_for(totp)) == issued.step

    # An explicit registry is used alone: it knows nothing of the file's step, nor the file of it.
    explicit = StepRegistry()
    anyio.run(lambda: TotpCodeProvider(totp, clock=clock, registry=explicit).issue(MfaChallenge()))
    assert explicit.last_used(explicit.key_for(totp)) == issued.step
    clock.advance(30)
    anyio.run(lambda: TotpCodeProvider(totp, clock=clock, registry=explicit).issue(MfaChallenge()))
    assert on_disk.last_used(on_disk.key_for(totp)) == issued.step

    monkeypatch.setenv(STEP_STATE_ENV, "0")
    assert current_step_registry() is STEP_REGISTRY
    with using_step_registry(explicit):
        assert current_step_registry() is explicit


def _script(server_url: str, user: Any, now: float, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the user's script (tests/core/_totp_script.py) in a new process and wait for it."""
    child_env = {
        **os.environ,
        "SCRIPT_URL": server_url,
        "SCRIPT_EMAIL": user.email,
        "SCRIPT_PASSWORD": SCRIPT_PASSWORD,
        "SCRIPT_TOTP_SECRET": user.totp_secret,
        "SCRIPT_NOW": repr(now),
        **env,
    }
    return subprocess.run(
        [sys.executable, str(HERE / "_totp_script.py")],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


SCRIPT_PASSWORD = "dev-pass-12345"


def test_a_totp_script_run_twice_back_to_back_succeeds_both_times(tmp_path: Path) -> None:
    """The same script, no opt-in, two processes one after the other within one 30-second step,
    against the Quatrix fake on a loopback socket (which refuses a reused step): the second run
    waits (on its fake clock) for the next step instead of sending the used one."""
    from mfa_common.testing import serve
    from quatrix_async.testing import QuatrixFake

    now = 1_000_000_005.0
    fake = QuatrixFake(clock=FakeClock(now), seed=7)
    user = fake.add_user(email="dev@acme.test", password=SCRIPT_PASSWORD, mfa=True)
    with serve(fake) as server:
        first = _script(server.base_url, user, now)
        second = _script(server.base_url, user, now)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout)["slept"] == 0
    assert json.loads(second.stdout)["slept"] > 0
    assert fake.logins_of(user.email) == 2
    assert fake.verifier.last_step(user.id) == Totp(user.totp_secret).step_at(now) + 1


def test_with_an_unusable_state_directory_the_script_still_succeeds(tmp_path: Path) -> None:
    """A state directory that cannot be made (a file where it belongs, which stops root too):
    the script falls back to the in-process registry, says so in one DEBUG line, and works."""
    from mfa_common.testing import serve
    from quatrix_async.testing import QuatrixFake

    blocker = tmp_path / "read-only-home"
    blocker.write_text("")
    now = 1_000_000_005.0
    fake = QuatrixFake(clock=FakeClock(now), seed=8)
    user = fake.add_user(email="dev@acme.test", password=SCRIPT_PASSWORD, mfa=True)
    with serve(fake) as server:
        result = _script(
            server.base_url, user, now, MFA_SDKS_STATE_DIR=str(blocker / "state"), SCRIPT_DEBUG="1"
        )
    assert result.returncode == 0, result.stderr
    fallback = [line for line in result.stderr.splitlines() if "in this process only" in line]
    assert len(fallback) == 1, result.stderr
    assert str(blocker / "state") in fallback[0] and fallback[0].startswith("DEBUG")
    assert user.totp_secret not in result.stderr
    assert not (blocker / "state").exists()


@pytest.mark.anyio
async def test_a_rejected_totp_code_that_may_have_been_a_replay_says_so() -> None:
    """Two logins of one user in one step with nothing shared between them (as two processes
    with the shared registry turned off): the server refuses the second code as reused, and the
    error says the code may have been a replay and what shares the steps."""
    import httpx

    from mfa_common.errors import MfaCodeRejectedError
    from quatrix_async import QuatrixClient
    from quatrix_async.testing import QuatrixFake

    clock = FakeClock(1_000_000_005.0)
    fake = QuatrixFake(clock=clock, seed=9)
    user = fake.add_user(email="dev@acme.test", password=SCRIPT_PASSWORD, mfa=True)

    def client() -> QuatrixClient:
        provider = TotpCodeProvider(user.totp_secret, clock=clock, registry=StepRegistry())
        return QuatrixClient(
            "http://127.0.0.1",
            email=user.email,
            password=SCRIPT_PASSWORD,
            code_provider=provider,
            clock=clock,
            transport=httpx.ASGITransport(fake),
        )

    async with client() as first:
        await first.profile.get()
    async with client() as second:
        with pytest.raises(MfaCodeRejectedError) as info:
            await second.profile.get()
    message = str(info.value)
    assert "replay" in message and "MFA_SDKS_STEP_STATE" in message
    assert info.value.error_code == 83
    assert user.totp_secret not in message
