"""End to end against the fake, in-process (contract-validated) and over real sockets."""

from __future__ import annotations

from datetime import datetime, timezone

import anyio
import httpx
import pytest

from mfa_common._transports import default_transport
from mfa_common.clock import FakeClock
from mfa_common.code_providers import CallbackCodeProvider
from mfa_common.errors import (
    AccountLockedError,
    AuthenticationError,
    MfaCodeRejectedError,
    MfaRequiredError,
    MfaTokenExpiredError,
    NotFoundError,
    RecoveryCodeRejectedError,
)
from mfa_common.recovery_codes import RecoveryCodeFormat, RecoveryCodeStore
from mfa_common.replay_guard import next_totp
from mfa_common.totp import Totp
from mfa_common.xmfa import EmailCodeRejectedError, RecoveryWindowClosedError, XMfaClient, XMfaTokenAuth
from mfa_common.xmfa.testing import XMfaFake
from tests.gates import GatedTransport, hold_login_until_waiters

from .conftest import ClientFactory

pytestmark = pytest.mark.anyio


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=timezone.utc)


async def test_login_without_mfa(fake: XMfaFake, connect: ClientFactory, clock: FakeClock) -> None:
    fake.add_user("alice", "alice-password")
    auth = XMfaTokenAuth("alice", "alice-password", clock=clock)
    async with connect(auth=auth) as client:
        me = await client.user.get()
        again = await client.user.get()
    assert me.user == "alice" and not me.mfa and again.user == "alice"
    assert fake.counts["login"] == 1 and fake.counts["mfa_challenge"] == 0
    assert auth.acquisitions == 1


async def test_login_with_totp(fake: XMfaFake, connect: ClientFactory, clock: FakeClock) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    auth = XMfaTokenAuth("bob", "bob-password", totp_secret=user.totp_secret, clock=clock)
    async with connect(auth=auth) as client:
        me = await client.user.get()
    assert me.mfa and me.user == "bob"
    assert fake.counts["mfa_challenge"] == 1 and fake.counts["exchange"] == 1


@pytest.mark.parametrize(
    ("status", "spent"),
    # The console's 500 (the default) says nothing about the token: the SDK reads it as a
    # refused code. The 401 switch names the token, and the SDK tells it apart.
    [(500, MfaCodeRejectedError), (401, MfaTokenExpiredError)],
)
async def test_manual_flow_and_mfa_required_without_provider(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock, status: int, spent: type[Exception]
) -> None:
    fake.auth_failure_status = status
    user = fake.add_user("bob", "bob-password", mfa=True)
    async with connect() as client:
        result = await client.session.login("bob", "bob-password")
        assert result.mfa_required and result.user is None
        assert result.mfa_token_expires_at == utc(clock.now() + 1800)
        issued = await next_totp(Totp(str(user.totp_secret)), clock=clock)
        me = await client.session.auth_mfa(result.mfa_token, issued.code)  # type: ignore[arg-type]
        assert me.mfa
        assert (await client.user.get()).user == "bob"  # the JWT was adopted
        # the MFA token is spent by the successful exchange
        with pytest.raises(spent):
            await client.session.auth_mfa(result.mfa_token, "123456")  # type: ignore[arg-type]
    async with connect(auth=XMfaTokenAuth("bob", "bob-password", clock=clock)) as client:
        with pytest.raises(MfaRequiredError):
            await client.user.get()


async def test_wrong_password_and_wrong_code(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    wrong = Totp(str(user.totp_secret)).code_at(clock.now() + 3600)
    provider = CallbackCodeProvider(lambda _: wrong)
    async with connect(
        auth=XMfaTokenAuth("bob", "bob-password", code_provider=provider, clock=clock)
    ) as client:
        with pytest.raises(MfaCodeRejectedError):
            await client.user.get()
    async with connect(auth=XMfaTokenAuth("bob", "bad-password", clock=clock)) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.user.get()
        assert not isinstance(info.value, MfaCodeRejectedError)
    assert fake.counts["exchange"] == 0


@pytest.mark.parametrize(("status", "expired"), [(500, MfaCodeRejectedError), (401, MfaTokenExpiredError)])
async def test_mfa_token_expires_after_30_minutes(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock, status: int, expired: type[Exception]
) -> None:
    """By hand, the SDK knows the token's age only from the answer: the 401 switch names the
    token; the console's 500 does not (a login through the auth backend knows the age, and
    reads it as expired either way: tests/core/test_login_engine.py)."""
    fake.auth_failure_status = status
    user = fake.add_user("bob", "bob-password", mfa=True)
    async with connect() as client:
        result = await client.session.login("bob", "bob-password")
        clock.advance(30 * 60 + 1)
        code = Totp(str(user.totp_secret)).code_at(clock.now())
        with pytest.raises(expired):
            await client.session.auth_mfa(result.mfa_token, code)  # type: ignore[arg-type]


async def test_reused_code_is_rejected_and_the_provider_waits(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    secret = str(user.totp_secret)
    async with connect() as client:
        first = await client.session.login("bob", "bob-password")
        second = await client.session.login("bob", "bob-password")
        code = (await next_totp(Totp(secret), clock=clock)).code  # registered as used
        await client.session.auth_mfa(first.mfa_token, code)  # type: ignore[arg-type]
        with pytest.raises(MfaCodeRejectedError):  # the server refuses the same step twice
            await client.session.auth_mfa(second.mfa_token, code)  # type: ignore[arg-type]
    started = clock.now()
    step = Totp(secret).step_at(started)
    for _ in range(2):  # two logins in a row: the provider waits for fresh steps
        auth = XMfaTokenAuth("bob", "bob-password", totp_secret=secret, clock=clock)
        async with connect(auth=auth) as client:
            await client.user.get()
    assert Totp(secret).step_at(clock.now()) >= step + 2
    assert fake.counts["totp_replayed"] == 1  # only the deliberate reuse above


async def test_recovery_code_then_disable_inside_the_window(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    store = RecoveryCodeStore(user.recovery_codes, format=RecoveryCodeFormat.SHELLHUB)
    auth = XMfaTokenAuth("bob", "bob-password", recovery_codes=store, clock=clock)
    async with connect(auth=auth) as client:
        me = await client.user.get()
        assert me.mfa
        assert auth.recovery_window_expires_at == utc(int(clock.now() + 600))
        assert store.counts()["used"] == 1
        clock.advance(300)
        await client.mfa.disable()  # empty body inside the window
        assert not (await client.user.get()).mfa
    assert [e.operation for e in fake.ledger.entries()] == ["recover", "disable"]
    assert fake.ledger.entries("disable")[0].details == {"via": "recovery_window"}


async def test_recovery_window_closes(fake: XMfaFake, connect: ClientFactory, clock: FakeClock) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    async with connect() as client:
        result = await client.session.recover("bob", user.recovery_codes[0].lower())  # normalised
        assert result.expires_at == utc(int(clock.now() + 600))
        clock.advance(601)
        with pytest.raises(RecoveryWindowClosedError):
            await client.mfa.recovery_disable()
        with pytest.raises(RecoveryWindowClosedError):
            await client.mfa.disable()
    assert fake.user("bob").mfa


async def test_recovery_disable_endpoint_inside_window(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    async with connect() as client:
        await client.session.recover("bob", user.recovery_codes[0])
        await client.mfa.recovery_disable()
    assert not fake.user("bob").mfa


async def test_recovery_code_reused_is_rejected(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    code = user.recovery_codes[0]
    async with connect() as client:
        await client.session.recover("bob", code)
        with pytest.raises(RecoveryCodeRejectedError):
            await client.session.recover("bob", code)
    # a store still holding the spent code settles it as rejected, never offered again
    store = RecoveryCodeStore([code], format=RecoveryCodeFormat.SHELLHUB)
    auth = XMfaTokenAuth("bob", "bob-password", recovery_codes=store, clock=clock)
    async with connect(auth=auth) as client:
        with pytest.raises(RecoveryCodeRejectedError):
            await client.user.get()
    assert store.counts()["rejected"] == 1 and store.remaining == 0
    assert fake.ledger.count("recover", user.id) == 1


async def test_reset_by_email_codes(fake: XMfaFake, connect: ClientFactory) -> None:
    user = fake.add_user("carol", "carol-password", mfa=True)
    async with connect() as client:
        token = await client.session.request_reset_mfa("carol@example.com")
        assert token is not None
        main, recovery = fake.reset_codes("carol")
        with pytest.raises(EmailCodeRejectedError):
            await client.session.reset_mfa(token, main, "ZZZZZ" if recovery != "ZZZZZ" else "YYYYY")
        me = await client.session.reset_mfa(token, main.lower(), recovery)
        assert not me.mfa and me.user == "carol"
        assert (await client.user.get()).user == "carol"
    assert fake.ledger.count("reset", user.id) == 1
    assert {m.to for m in fake.outbox} == {user.email, user.recovery_email}


async def test_reset_on_an_older_server_by_user_id(clock: FakeClock) -> None:
    # Older servers answer requestResetMFA without a body (not the current spec: no validation).
    fake = XMfaFake(clock=clock, legacy_reset=True)
    user = fake.add_user("carol", "carol-password", mfa=True)
    async with XMfaClient("http://127.0.0.1", transport=httpx.ASGITransport(fake), clock=clock) as client:
        assert await client.session.request_reset_mfa("carol") is None
        main, recovery = fake.reset_codes("carol")
        me = await client.session.reset_mfa(user.id, main, recovery)
    assert not me.mfa


async def test_reset_token_never_in_errors(fake: XMfaFake, connect: ClientFactory) -> None:
    secret_token = "4a5f6b3e-1234-4a12-9abc-1234567890ab"
    async with connect() as client:
        with pytest.raises(NotFoundError) as info:
            await client.session.reset_mfa(secret_token, "AAAAA", "BBBBB")
    assert secret_token not in str(info.value) and "{user_id}" in str(info.value)


async def test_lockout_surfaces_unlock_time(fake: XMfaFake, connect: ClientFactory, clock: FakeClock) -> None:
    fake.add_user("alice", "alice-password")
    async with connect() as client:
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                await client.session.login("alice", "wrong-password")
        with pytest.raises(AccountLockedError) as info:
            await client.session.login("alice", "wrong-password")
        assert info.value.locked_until == utc(clock.now() + 60)
        with pytest.raises(AccountLockedError):  # even the right password, while locked
            await client.session.login("alice", "alice-password")
        clock.advance(61)
        assert (await client.session.login("alice", "alice-password")).user is not None
    assert fake.controls.requests_to("POST", "/api/login") == 5  # a lockout is never retried


async def test_lockout_grows(fake: XMfaFake, connect: ClientFactory, clock: FakeClock) -> None:
    fake.add_user("alice", "alice-password")
    async with connect() as client:
        for _ in range(2):
            with pytest.raises(AuthenticationError):
                await client.session.login("alice", "wrong-password")
        with pytest.raises(AccountLockedError):
            await client.session.login("alice", "wrong-password")
        clock.advance(61)
        with pytest.raises(AccountLockedError) as info:
            await client.session.login("alice", "wrong-password")
        assert info.value.locked_until == utc(clock.now() + 4 * 60)


async def test_jwt_refresh_ahead_of_expiry_and_relogin_after(
    clock: FakeClock, mode: str, connect: ClientFactory, fake: XMfaFake
) -> None:
    fake.jwt_ttl = 300
    user = fake.add_user("bob", "bob-password", mfa=True)
    auth = XMfaTokenAuth("bob", "bob-password", totp_secret=user.totp_secret, clock=clock, refresh_margin=60)
    async with connect(auth=auth) as client:
        await client.user.get()
        first = auth.credential
        assert first is not None and first.expires_at == int(clock.now()) + 300
        clock.advance(250)  # inside the refresh margin: renewed without a new login
        await client.user.get()
        assert auth.refreshes == 1 and fake.counts["mfa_challenge"] == 1
        assert auth.credential is not first
        clock.advance(400)  # now past exp: a full login
        await client.user.get()
        assert fake.counts["mfa_challenge"] == 2 and fake.counts["exchange"] == 2


async def test_revoked_jwt_is_replaced_once(fake: XMfaFake, connect: ClientFactory, clock: FakeClock) -> None:
    fake.add_user("alice", "alice-password")
    auth = XMfaTokenAuth("alice", "alice-password", clock=clock)
    async with connect(auth=auth) as client:
        await client.user.get()
        fake.revoke_jwts("alice")
        assert (await client.user.get()).user == "alice"
    assert fake.counts["login"] == 2 and auth.acquisitions == 2


@pytest.mark.parametrize("mode", ["socket"])  # real sockets; the in-process path is the same code
async def test_a_thousand_concurrent_calls_on_a_cold_client(
    fake: XMfaFake, connect: ClientFactory, clock: FakeClock, mode: str
) -> None:
    user = fake.add_user("bob", "bob-password", mfa=True)
    auth = XMfaTokenAuth("bob", "bob-password", totp_secret=user.totp_secret, clock=clock)
    n = 1000
    done: list[str] = []
    # The password login's answer is held until the other 999 calls wait on the login in flight.
    inner = default_transport(limits=httpx.Limits(max_connections=100))
    gate = GatedTransport(inner, lambda r: r.url.path.endswith("/api/login"))
    async with connect(auth=auth, transport=gate) as client:

        async def call() -> None:
            done.append((await client.user.get()).user)

        async with anyio.create_task_group() as group:
            for _ in range(n):
                group.start_soon(call)
            await hold_login_until_waiters(gate, auth, n - 1)
    assert len(done) == n
    assert gate.held == 1
    assert fake.controls.requests_to("POST", "/api/login") == 1
    assert fake.controls.requests_to("POST", "/api/user/mfa/auth") == 1
    assert fake.counts["exchange"] == 1 and auth.acquisitions == 1
