"""Every operation of shellhub-mfa.yaml, driven by the client against the fake through the
validating transport: each request and each response (success and error) must match the spec."""

from __future__ import annotations

import httpx
import pytest

from mfa_common.clock import FakeClock
from mfa_common.errors import (
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    MfaCodeRejectedError,
    NotFoundError,
    RecoveryCodeRejectedError,
)
from mfa_common.replay_guard import next_totp
from mfa_common.totp import Totp
from mfa_common.xmfa import (
    EmailCodeRejectedError,
    Operation,
    RecoveryWindowClosedError,
    XMfaClient,
    XMfaPaths,
    XMfaTokenAuth,
)
from mfa_common.xmfa.testing import XMfaFake
from tests.contract import ValidatingTransport

from .conftest import unexpected_violations

pytestmark = pytest.mark.anyio


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: set[tuple[Operation | None, int]] = set()
        self.paths = XMfaPaths()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen.add((self.paths.operation_of(request.method, request.url.path), response.status_code))
        return response


async def test_every_operation_and_its_errors_match_the_spec() -> None:
    clock = FakeClock(1_700_000_000.0)
    fake = XMfaFake(clock=clock)
    fake.add_user("alice", "alice-password")
    bob = fake.add_user("bob", "bob-password", mfa=True)
    fake.add_user("carol", "carol-password", mfa=True)
    recording = Recording(httpx.ASGITransport(fake))
    transport = ValidatingTransport(recording, "shellhub-mfa.yaml")
    async with XMfaClient("http://127.0.0.1", transport=transport, clock=clock) as client:
        # login: 200, 401 (+ X-MFA-Token), 401 (wrong password), 429 (+ X-Account-Lockout)
        assert (await client.session.login("alice", "alice-password")).user is not None
        challenge = await client.session.login("bob", "bob-password")
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                await client.session.login("carol", "wrong-password")
        with pytest.raises(AccountLockedError):
            await client.session.login("carol", "wrong-password")
        # authMFA: 500 wrong code (the console's status, the fake's default), 200
        with pytest.raises(MfaCodeRejectedError):
            await client.session.auth_mfa(challenge.mfa_token, "000000")  # type: ignore[arg-type]
        issued = await next_totp(Totp(str(bob.totp_secret)), clock=clock)
        assert (await client.session.auth_mfa(challenge.mfa_token, issued.code)).mfa  # type: ignore[arg-type]
        # generate 409 (already on), recover 401 and 200, disable 403 and 200
        with pytest.raises(ConflictError):
            await client.mfa.generate()
        with pytest.raises(RecoveryCodeRejectedError):
            await client.session.recover("bob", "AAAAAAAAAAAAAAAA")
        result = await client.session.recover("bob", bob.recovery_codes[0])
        assert result.expires_at is not None
        with pytest.raises(MfaCodeRejectedError):
            await client.mfa.disable(code="000000")
        await client.mfa.disable(recovery_code=bob.recovery_codes[0])  # the cached code, in window
        # generate 200, enable 403 and 200 (as bob, now without MFA)
        generated = await client.mfa.generate()
        totp = Totp(generated.secret)
        with pytest.raises(MfaCodeRejectedError):
            await client.mfa.enable("000000", generated.secret, generated.recovery_codes)
        code = (await next_totp(totp, clock=clock)).code
        await client.mfa.enable(code, generated.secret, generated.recovery_codes)
        assert (await client.user.get()).mfa
        # recoveryDisableMFA 403 (no window), then 200 inside a window
        with pytest.raises(RecoveryWindowClosedError):
            await client.mfa.recovery_disable()
        await client.session.recover("bob", generated.recovery_codes[0])
        await client.mfa.recovery_disable()
        # requestResetMFA 404 and 200; resetMFA 403, 404, 200
        with pytest.raises(NotFoundError):
            await client.session.request_reset_mfa("nobody")
        clock.advance(61)
        token = await client.session.request_reset_mfa("carol")
        assert token is not None
        main, recovery = fake.reset_codes("carol")
        with pytest.raises(EmailCodeRejectedError):
            await client.session.reset_mfa(token, "ZZZZ9", "ZZZZ9")
        with pytest.raises(NotFoundError):
            await client.session.reset_mfa("no-such-token", main, recovery)
        assert not (await client.session.reset_mfa(token, main, recovery)).mfa
        # getUserInfo 401 with a dead JWT
        fake.revoke_jwts("carol")
        with pytest.raises(AuthenticationError):
            await client.user.get()
    # the auth backend's own requests go through the same validation
    auth = XMfaTokenAuth("alice", "alice-password", clock=clock)
    async with XMfaClient("http://127.0.0.1", transport=transport, auth=auth, clock=clock) as client:
        assert (await client.user.get()).user == "alice"

    assert unexpected_violations(transport) == []
    operations = {op for op, _ in recording.seen}
    assert operations == set(Operation)
    assert {(Operation.LOGIN, s) for s in (200, 401, 429)} <= recording.seen
    assert (Operation.AUTH, 500) in recording.seen and (Operation.RESET, 404) in recording.seen
