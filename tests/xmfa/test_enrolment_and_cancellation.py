"""enrol_totp round trip and failure paths; cancellation at each await point of the login."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import anyio
import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.code_providers import CallbackCodeProvider, MfaChallenge
from mfa_common.recovery_codes import RecoveryCodeStore
from mfa_common.secret import Secret
from mfa_common.totp import Totp
from mfa_common.xmfa import (
    MfaNotEnabledError,
    RecoveryCodesNotStoredError,
    XMfaClient,
    XMfaTokenAuth,
    enrol_totp,
)
from mfa_common.xmfa.testing import XMfaFake

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio


async def test_enrolment_round_trip(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock, tmp_path: Path
) -> None:
    fake.add_user("alice", "alice-password")
    shown: list[tuple[Secret[str], Secret[str]]] = []
    path = tmp_path / "codes.json"
    async with connect(auth=XMfaTokenAuth("alice", "alice-password", clock=clock)) as client:
        enrolment = await enrol_totp(
            client, show=lambda link, secret: shown.append((link, secret)), store_path=path
        )
    link, secret = shown[0]
    assert link.reveal().startswith("otpauth://totp/") and Totp(secret) == enrolment.totp
    user = fake.user("alice")
    assert user.mfa and fake.ledger.count("enable", user.id) == 1
    assert os.stat(path).st_mode & 0o077 == 0
    stored = RecoveryCodeStore.load(path)
    assert stored.remaining == len(user.recovery_codes) == 6
    assert "codes" in json.loads(path.read_text())
    # the new factor works at once: the login waits for the step after the enrolment's
    auth = XMfaTokenAuth("alice", "alice-password", totp_secret=enrolment.totp, clock=clock)
    async with connect(auth=auth) as client:
        assert (await client.user.get()).mfa
    assert fake.counts["totp_replayed"] == 0


async def test_enrolment_show_failure_leaves_mfa_off(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    fake.add_user("alice", "alice-password")

    async def show(link: Secret[str], secret: Secret[str]) -> None:
        raise OSError("no display")

    async with connect(auth=XMfaTokenAuth("alice", "alice-password", clock=clock)) as client:
        with pytest.raises(MfaNotEnabledError) as info:
            await enrol_totp(client, show=show)
    assert info.value.mfa_enabled is False and isinstance(info.value.__cause__, OSError)
    assert not fake.user("alice").mfa and len(fake.ledger) == 0


async def test_enrolment_refused_by_server_says_not_enabled(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    fake.add_user("alice", "alice-password", recovery_email="")  # enable needs a recovery e-mail
    async with connect(auth=XMfaTokenAuth("alice", "alice-password", clock=clock)) as client:
        with pytest.raises(MfaNotEnabledError):
            await enrol_totp(client, show=lambda link, secret: None)
    assert not fake.user("alice").mfa


async def test_enrolment_store_failure_says_enabled_and_carries_codes(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    fake.add_user("alice", "alice-password")

    def broken_store(codes: Sequence[Secret[str]]) -> RecoveryCodeStore:
        raise PermissionError("read-only disk")

    async with connect(auth=XMfaTokenAuth("alice", "alice-password", clock=clock)) as client:
        with pytest.raises(RecoveryCodesNotStoredError) as info:
            await enrol_totp(client, show=lambda link, secret: None, store_factory=broken_store)
        error = info.value
        assert error.mfa_enabled is True and "IS enabled" in str(error)
        assert [c.reveal() for c in error.codes] == fake.user("alice").recovery_codes
        assert all(c.reveal() not in str(error) for c in error.codes)
        # the carried codes are the real ones
        await client.session.recover("alice", error.codes[0])


async def test_enrolment_lost_enable_answer_is_resolved(clock: FakeClock) -> None:
    fake = XMfaFake(clock=clock)
    fake.add_user("alice", "alice-password")
    fake.controls.fail_next("drop_after", path="/api/user/mfa/enable")
    auth = XMfaTokenAuth("alice", "alice-password", clock=clock)
    async with XMfaClient(
        "http://127.0.0.1", transport=httpx.ASGITransport(fake), auth=auth, clock=clock
    ) as c:
        enrolment = await enrol_totp(c, show=lambda link, secret: None)
    assert fake.user("alice").mfa and enrolment.recovery_codes.remaining == 6
    assert fake.ledger.count("enable", fake.user("alice").id) == 1  # applied once, never repeated


# --------------------------------------------------------------------------- cancellation


class Gate(httpx.AsyncBaseTransport):
    """Holds the request to ``hold_path`` until released (the first time only)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, hold_path: str) -> None:
        self.inner = inner
        self.hold_path = hold_path
        self.reached = anyio.Event()
        self.held = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == self.hold_path and not self.held:
            self.held = True
            self.reached.set()
            await anyio.sleep_forever()
        return await self.inner.handle_async_request(request)


@pytest.mark.parametrize("point", ["/api/login", "code", "/api/user/mfa/auth"])
async def test_cancelled_login_leaves_nothing_and_next_call_logs_in(clock: FakeClock, point: str) -> None:
    fake = XMfaFake(clock=clock)
    user = fake.add_user("bob", "bob-password", mfa=True)
    totp = Totp(str(user.totp_secret))
    gate = Gate(httpx.ASGITransport(fake), point)
    code_reached = anyio.Event()
    first = True

    async def ask(challenge: MfaChallenge) -> str:
        nonlocal first
        if point == "code" and first:
            first = False
            code_reached.set()
            await anyio.sleep_forever()
        return totp.code_at(clock.now())

    auth = XMfaTokenAuth("bob", "bob-password", code_provider=CallbackCodeProvider(ask), clock=clock)
    async with XMfaClient("http://127.0.0.1", transport=gate, auth=auth, clock=clock) as client:
        async with anyio.create_task_group() as group:
            group.start_soon(client.user.get)
            await (code_reached if point == "code" else gate.reached).wait()
            group.cancel_scope.cancel()
        assert auth.credential is None and auth.acquisitions == 0
        clock.advance(30)  # the next step, in case the cancelled exchange used this one
        assert (await client.user.get()).user == "bob"
    assert auth.acquisitions == 1 and fake.counts["exchange"] == 1
