"""Cancellation at every await point of a login, injected faults, and the fake's command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.code_providers import CallbackCodeProvider, MfaChallenge
from mfa_common.errors import APIConnectionError
from mfa_common.testing import FaultPlan
from mfa_common.totp import Totp
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

pytestmark = pytest.mark.anyio

PASSWORD = "correct-horse"


class Gate(httpx.AsyncBaseTransport):
    """Hangs forever on the first request matching (method, path suffix), before or after the
    fake handled it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, method: str, suffix: str, *, after: bool) -> None:
        self.inner = inner
        self.method = method
        self.suffix = suffix
        self.after = after
        self.armed = True
        self.reached = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        hit = self.armed and request.method == self.method and request.url.path.endswith(self.suffix)
        if hit:
            self.armed = False
            if not self.after:
                self.reached.set()
                await anyio.sleep_forever()
        response = await self.inner.handle_async_request(request)
        if hit:
            self.reached.set()
            await anyio.sleep_forever()
        return response


@pytest.mark.parametrize(
    ("method", "suffix", "after"),
    [
        ("GET", "/session/login", False),
        ("GET", "/session/login", True),
        ("POST", "/session/login", False),
        ("POST", "/session/login", True),
    ],
    ids=["before-basic", "after-basic", "before-mfa-step", "after-mfa-step"],
)
async def test_cancelled_login_leaves_nothing_half_made(method: str, suffix: str, after: bool) -> None:
    clock = FakeClock()
    fake = QuatrixFake(clock=clock)
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    gate = Gate(httpx.ASGITransport(fake), method, suffix, after=after)
    async with QuatrixClient(
        "http://127.0.0.1",
        email="totp@example.com",
        password=PASSWORD,
        totp_secret=user.totp_secret,
        clock=clock,
        transport=gate,
    ) as client:
        auth = client.auth
        assert auth is not None
        async with anyio.create_task_group() as group:
            group.start_soon(client.profile.get)
            with anyio.fail_after(5):
                await gate.reached.wait()
            group.cancel_scope.cancel()
        assert auth.credential is None
        assert auth.acquisitions == 0
        # The next call logs in cleanly (a code already spent waits for the next step).
        assert (await client.profile.get()).email == "totp@example.com"
        assert auth.acquisitions == 1
    assert fake.logins_of("totp@example.com") == (2 if method == "POST" and after else 1)


async def test_cancelled_while_waiting_for_a_person_to_type_the_code() -> None:
    clock = FakeClock()
    fake = QuatrixFake(clock=clock)
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    assert user.totp_secret is not None
    secret = user.totp_secret
    asked = anyio.Event()
    calls = 0

    async def ask(challenge: MfaChallenge) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            asked.set()
            await anyio.sleep_forever()
        return Totp(secret).code_at(clock.now())

    async with QuatrixClient(
        "http://127.0.0.1",
        email="totp@example.com",
        password=PASSWORD,
        code_provider=CallbackCodeProvider(ask),
        clock=clock,
        transport=httpx.ASGITransport(fake),
    ) as client:
        async with anyio.create_task_group() as group:
            for _ in range(5):  # waiters behind the cancelled leader take over
                group.start_soon(client.profile.get)
            with anyio.fail_after(5):
                await asked.wait()
            # Cancel only the leader's login: the others must carry on and succeed.
            group.cancel_scope.cancel()
        assert fake.counts["mfa_step"] == 0
        await client.profile.get()
    assert fake.counts["mfa_step"] == 1
    assert fake.counts["basic_login"] == 2


async def test_retries_on_injected_faults_for_reads_never_for_the_mfa_step() -> None:
    clock = FakeClock()
    fake = QuatrixFake(clock=clock)
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    fake.controls.faults = FaultPlan(server_error_statuses=(503,))
    fake.controls.fail_next("server_error", path="/api/1.0/session/login", method="GET")
    fake.controls.fail_next("drop_before", path="/api/1.0/profile")
    async with QuatrixClient(
        "http://127.0.0.1",
        email="totp@example.com",
        password=PASSWORD,
        totp_secret=user.totp_secret,
        clock=clock,
        transport=httpx.ASGITransport(fake),
    ) as client:
        assert (await client.profile.get()).email == "totp@example.com"
        assert fake.counts["basic_login"] == 1  # the faulted attempt never reached the handler
        # A dropped connection on the (non-idempotent) MFA step is not retried blindly.
        auth = client.auth
        assert auth is not None
        await client.session.logout()
        fake.controls.fail_next("drop_after", path="/api/1.0/session/login", method="POST")
        with pytest.raises(APIConnectionError):
            await client.profile.get()
        assert fake.counts["mfa_step"] == 2
        await client.profile.get()  # next login uses the next time step
        assert fake.counts["mfa_step"] == 3


def test_command_line_fake_serves_scripted_accounts(tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps([{"email": "ops@example.com", "password": "ops-password", "admin": True}]))
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "quatrix_async.testing", "--port", str(port), "--accounts", str(accounts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "Quatrix fake" in banner
        assert "ops@example.com" in proc.stdout.readline()
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/1.0/session/login", auth=("ops@example.com", "ops-password")
                )
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert response.status_code == 200
        assert "session_id" in response.json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
