"""End to end: the client against the fake, in-process and over a real loopback socket."""

from __future__ import annotations

import math
from typing import Any

import anyio
import httpx
import pytest

from metalcloud_async import (
    LATEST,
    MetalCloudClient,
    MetalCloudLoginAuth,
    MetalCloudMfaRequiredError,
    TwoFactorAlreadyDisabledError,
    TwoFactorAlreadyEnabledError,
    TwoFactorCodeRejectedError,
)
from metalcloud_async.testing import MetalCloudFake
from mfa_common._transports import default_transport
from mfa_common.clock import FakeClock
from mfa_common.code_providers import CallbackCodeProvider, IssuedCode, MfaChallenge
from mfa_common.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    PreconditionRequiredError,
)
from mfa_common.secret import Secret
from mfa_common.testing import generate_base32_secret
from mfa_common.totp import Totp
from tests.gates import GatedTransport, hold_login_until_waiters, wait_until

from .conftest import ADMIN_EMAIL, ADMIN_PASSWORD, TOTP_EMAIL, TOTP_PASSWORD, api_key_client

pytestmark = pytest.mark.anyio


def jwt_client(
    fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock, **kw: Any
) -> MetalCloudClient:
    return MetalCloudClient(email=ADMIN_EMAIL, password=ADMIN_PASSWORD, clock=clock, **endpoint, **kw)


def totp_client(fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock) -> MetalCloudClient:
    secret = fake.user(TOTP_EMAIL).totp_secret
    assert secret is not None
    return MetalCloudClient(
        email=TOTP_EMAIL, password=TOTP_PASSWORD, totp_secret=secret, clock=clock, **endpoint
    )


async def raw_status(endpoint: dict[str, Any], token: str, path: str = "/api/v2/user") -> int:
    async with httpx.AsyncClient(**endpoint) as raw:
        response = await raw.get(path, headers={"Authorization": f"Bearer {token}"})
        return response.status_code


async def test_api_key_use(fake: MetalCloudFake, endpoint: dict[str, Any]) -> None:
    async with api_key_client(fake, endpoint) as client:
        me = await client.user.get()
        assert me.email == ADMIN_EMAIL
        assert me.access_level == "root"
        assert me.etag == str(me.revision)
        key = await client.user.get_api_key()
        assert key.api_key.reveal() == fake.user(ADMIN_EMAIL).api_key
        assert key.user_id == me.id
        assert "Secret('***')" in repr(key)
    assert fake.counts["login"] == 0


async def test_jwt_login_use_and_logout_on_close(
    fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock
) -> None:
    async with jwt_client(fake, endpoint, clock) as client:
        assert (await client.user.get()).email == ADMIN_EMAIL
        assert (await client.users.get(fake.user(TOTP_EMAIL).id)).email == TOTP_EMAIL
        backend = client.auth
        assert isinstance(backend, MetalCloudLoginAuth)
        assert backend.credential is not None
        token = backend.credential.token.reveal()
        assert await raw_status(endpoint, token) == 200
    assert fake.counts["login"] == 1
    assert fake.counts["logout"] == 1
    assert await raw_status(endpoint, token) == 401


async def test_jwt_refreshed_ahead_of_expiry(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    async with jwt_client(fake, local, clock) as client:
        await client.user.get()
        clock.advance(3600 - 30)  # inside the refresh margin, before exp
        await client.user.get()
        assert fake.counts["login"] == 2
        clock.advance(10)
        await client.user.get()
        assert fake.counts["login"] == 2


async def test_login_with_2fa(fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock) -> None:
    async with totp_client(fake, endpoint, clock) as client:
        me = await client.user.get()
        assert me.email == TOTP_EMAIL and me.authenticator_enabled
        backend = client.auth
        assert isinstance(backend, MetalCloudLoginAuth)
        assert backend.two_factor_logins == 1
        # A second login in a row must not replay the TOTP step the server already accepted.
        step = await client.session.login()
        assert step.user is not None and step.token is not None
        assert backend.two_factor_logins == 2
        await client.user.get()
    assert fake.counts["login"] == 2
    assert fake.counts["password_login"] == 2


async def test_2fa_required_without_provider(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    async with MetalCloudClient(email=TOTP_EMAIL, password=TOTP_PASSWORD, **local) as client:
        with pytest.raises(MetalCloudMfaRequiredError):
            await client.user.get()
    assert fake.counts["login"] == 0


async def test_wrong_2fa_code_rejected(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    provider = CallbackCodeProvider(lambda challenge: "000000")
    async with MetalCloudClient(
        email=TOTP_EMAIL, password=TOTP_PASSWORD, code_provider=provider, **local
    ) as c:
        with pytest.raises(TwoFactorCodeRejectedError):
            await c.user.get()
    assert fake.counts["login"] == 0


async def test_wrong_password(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    async with MetalCloudClient(email=ADMIN_EMAIL, password="nope", **local) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.user.get()
    assert info.value.server_message == "Invalid credentials"
    assert "nope" not in str(info.value)


async def test_raw_login_then_login_2fa(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    secret = fake.user(TOTP_EMAIL).totp_secret
    assert secret is not None
    async with MetalCloudClient(clock=clock, **local) as client:
        step = await client.session.login(TOTP_EMAIL, TOTP_PASSWORD)
        assert step.mfa_required and step.source == "cookie:jwt"
        assert step.token is not None
        assert await raw_status(local, step.token.reveal()) == 401  # pending: not a session
        done = await client.session.login_2fa(step, Totp(secret))
        assert not done.mfa_required and done.token is not None
        assert await raw_status(local, done.token.reveal()) == 200
        await client.session.logout(done.token)
        assert await raw_status(local, done.token.reveal()) == 401


async def test_2fa_enrolment_round_trip(
    fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock
) -> None:
    async with api_key_client(fake, endpoint, clock=clock) as client:
        secret = await client.user.generate_2fa()
        assert secret.qr_png.reveal().startswith(b"\x89PNG\r\n\x1a\n")
        assert secret.qr_mime_type == "image/png"
        before = (await client.user.get()).revision
        await client.user.enable_2fa(secret)
        me = await client.user.get()
        assert me.authenticator_enabled and me.revision == before + 1
        with pytest.raises(TwoFactorAlreadyEnabledError):
            await client.user.enable_2fa(secret)
    # The enrolled secret now guards the password login.
    async with MetalCloudClient(
        email=ADMIN_EMAIL, password=ADMIN_PASSWORD, totp_secret=secret.totp(), clock=clock, **endpoint
    ) as client:
        assert (await client.user.get()).authenticator_enabled
        await client.user.disable_2fa()
        with pytest.raises(TwoFactorAlreadyDisabledError):
            await client.user.disable_2fa()
    assert fake.ledger.count("2fa-enable", str(me.id)) == 1
    assert fake.ledger.count("2fa-disable", str(me.id)) == 1


async def test_enable_2fa_with_wrong_code(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    async with api_key_client(fake, local) as client:
        await client.user.generate_2fa()
        with pytest.raises(TwoFactorCodeRejectedError):
            await client.user.enable_2fa("123456")
        assert not fake.user(ADMIN_EMAIL).mfa


class _RecordingProvider:
    """Issues codes of ``totp`` whose settlement can only happen through the async path (the
    one that keeps a store's file write off the event loop), and records it."""

    def __init__(self, totp: Totp, clock: FakeClock) -> None:
        self.totp = totp
        self.clock = clock
        self.settled: list[str] = []

    async def issue(self, challenge: MfaChallenge) -> IssuedCode:
        async def on_asettle(outcome: str) -> None:
            await anyio.lowlevel.checkpoint()
            self.settled.append(outcome)

        def on_settle(outcome: str) -> None:
            raise AssertionError("settled synchronously, on the event loop")

        return IssuedCode(
            Secret(self.totp.code_at(self.clock.now())), "totp", on_settle, on_asettle=on_asettle
        )


async def test_enable_2fa_settles_its_code_off_the_loop_by_the_settlement_table(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    async with api_key_client(fake, local, clock=clock) as client:
        secret = await client.user.generate_2fa()
        wrong = _RecordingProvider(Totp(generate_base32_secret(20)), clock)
        with pytest.raises(TwoFactorCodeRejectedError):
            await client.user.enable_2fa(wrong)
        right = _RecordingProvider(secret.totp(), clock)
        await client.user.enable_2fa(right)
        clock.advance(30)  # a fresh step: the fake refuses a replayed one before anything else
        again = _RecordingProvider(secret.totp(), clock)
        with pytest.raises(TwoFactorAlreadyEnabledError):
            await client.user.enable_2fa(again)
    assert (wrong.settled, right.settled, again.settled) == (["rejected"], ["accepted"], ["unknown"])


async def test_regenerate_api_key_mid_use(fake: MetalCloudFake, endpoint: dict[str, Any]) -> None:
    old = fake.user(ADMIN_EMAIL).api_key
    results: list[str] = []
    async with api_key_client(fake, endpoint) as client:

        async def reader() -> None:
            for _ in range(5):
                results.append((await client.user.get()).email)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(reader)
            rotated = await client.user.regenerate_api_key()
        assert rotated.switched
        new = fake.user(ADMIN_EMAIL).api_key
        assert new != old and rotated.api_key.reveal() == new
        assert new.startswith(f"{fake.user(ADMIN_EMAIL).id}:") and len(new.split(":", 1)[1]) == 63
        assert (await client.user.get_api_key()).api_key.reveal() == new
    assert results == [ADMIN_EMAIL] * 100
    assert await raw_status(endpoint, old) == 401
    assert await raw_status(endpoint, new) == 200


async def test_regenerate_api_key_on_jwt_session(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    old = fake.user(ADMIN_EMAIL).api_key
    async with jwt_client(fake, local, clock) as client:
        rotated = await client.user.regenerate_api_key()
        assert not rotated.switched
        assert rotated.api_key.reveal() == fake.user(ADMIN_EMAIL).api_key != old


async def test_regenerate_jwt_salt_mid_use(
    fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock
) -> None:
    async with jwt_client(fake, endpoint, clock) as first, jwt_client(fake, endpoint, clock) as second:
        await first.user.get()
        await second.user.get()
        backend = second.auth
        assert isinstance(backend, MetalCloudLoginAuth) and backend.credential is not None
        old_token = backend.credential.token.reveal()
        assert fake.counts["login"] == 2
        await first.user.regenerate_jwt_salt()
        assert await raw_status(endpoint, old_token) == 401
        # Both sessions died; each client logs in again cleanly (one login each).
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(second.user.get)
                tg.start_soon(first.user.get)
        assert fake.counts["login"] == 4


async def test_stale_revision_and_missing_revision(fake: MetalCloudFake, endpoint: dict[str, Any]) -> None:
    target = fake.user(TOTP_EMAIL).id
    async with api_key_client(fake, endpoint) as client:
        seen = await client.users.get(target)
        await client.users.archive(target, revision=seen.revision)
        with pytest.raises(PreconditionFailedError) as stale:
            await client.users.unarchive(target, revision=seen.revision)
        assert stale.value.status_code == 412
        with pytest.raises(PreconditionRequiredError):
            await client.users.unarchive(target, revision=None)
        with pytest.raises(PreconditionRequiredError):
            await client.user.regenerate_jwt_salt(revision=None)
        assert fake.user(target).archived
    assert fake.ledger.count("archive", str(target)) == 1
    assert fake.ledger.count("unarchive", str(target)) == 0


async def test_opt_in_retry_on_stale(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    target = fake.user(TOTP_EMAIL).id
    async with api_key_client(fake, local) as client:
        seen = await client.users.get(target)
        reason = await client.users.suspend(target, public_comment="late payment", reason="unpaid")
        assert reason.user_id == target and reason.type == "unpaid"
        updated = await client.users.archive(target, revision=seen.revision, retry_on_stale=True)
        assert updated.is_archived and updated.revision == seen.revision + 2
        assert updated.etag == str(updated.revision)
        await client.users.unsuspend(target)
    assert fake.ledger.count("archive", str(target)) == 1
    assert not fake.ledger.duplicates()


async def test_listing_2500_users_with_filters(fake: MetalCloudFake, endpoint: dict[str, Any]) -> None:
    fake.seed_users(2500, start=1000)
    controls = fake.controls
    expected = sorted(u.id for u in fake.users if not u.archived)
    async with api_key_client(fake, endpoint) as client:
        before = controls.requests_to("GET", "/api/v2/users")
        ids = [u.id async for u in client.users.list(filters={"archived": False})]
        assert ids == expected and len(ids) > 2000
        assert controls.requests_to("GET", "/api/v2/users") - before == math.ceil(len(expected) / 100)
        admins = [u async for u in client.users.list(filters={"accessLevel": "admin", "archived": False})]
        assert {u.access_level for u in admins} == {"admin"}
        assert len(admins) == sum(1 for u in fake.users if u.access_level == "admin" and not u.archived)
        found = [u async for u in client.users.list(search="user01234", sort_by=["displayName:DESC"])]
        assert [u.email for u in found] == ["user01234@example.test"]


async def test_listing_is_lazy(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    fake.seed_users(500, start=1000)
    async with api_key_client(fake, local) as client:
        before = fake.controls.requests_to("GET", "/api/v2/users")
        iterator = client.users.list(page_size=50)
        first = [await iterator.__anext__() for _ in range(60)]
        assert len(first) == 60
        assert fake.controls.requests_to("GET", "/api/v2/users") - before == 2
        await iterator.aclose()


async def test_1000_concurrent_calls_on_cold_jwt_client_one_login(
    fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock
) -> None:
    # The login answer is held until the other 999 calls wait on the login in flight.
    inner = endpoint.get("transport") or default_transport(limits=httpx.Limits(max_connections=100))
    gate = GatedTransport(inner, lambda r: r.url.path.endswith("/api/v2/login"))
    ok = 0
    async with jwt_client(fake, {**endpoint, "transport": gate}, clock) as client:
        backend = client.auth
        assert isinstance(backend, MetalCloudLoginAuth)

        async def call() -> None:
            nonlocal ok
            await client.user.get()
            ok += 1

        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(call)
            await hold_login_until_waiters(gate, backend, 999)
    assert ok == 1000
    assert gate.held == 1
    assert fake.counts["login"] == 1 and fake.counts["password_login"] == 1


async def test_cancellation_during_login(
    fake: MetalCloudFake, endpoint: dict[str, Any], clock: FakeClock
) -> None:
    secret = fake.user(TOTP_EMAIL).totp_secret
    assert secret is not None
    calls = 0
    asked = anyio.Event()

    async def code(challenge: MfaChallenge) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            asked.set()
            await anyio.sleep_forever()
        return Totp(secret).code_at(clock.now())

    async with MetalCloudClient(
        email=TOTP_EMAIL, password=TOTP_PASSWORD, code_provider=CallbackCodeProvider(code), **endpoint
    ) as client:
        backend = client.auth
        assert isinstance(backend, MetalCloudLoginAuth)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(client.user.get)
                # Cancelled while the login waits for its code and the 4 others wait on it.
                await asked.wait()
                await wait_until(lambda: backend.waiting == 4)
                scope.cancel()
        assert scope.cancelled_caught
        assert backend.credential is None and fake.counts["login"] == 0
        await client.user.get()  # a later call logs in cleanly
        assert backend.acquisitions == 1 and fake.counts["login"] == 1


async def test_change_password_keeps_session_login_working(
    fake: MetalCloudFake, local: dict[str, Any], clock: FakeClock
) -> None:
    async with jwt_client(fake, local, clock) as client:
        user = await client.user.change_password("new-secret", old_password=ADMIN_PASSWORD)
        assert user.revision == 2
        await client.session.logout()
        assert (await client.user.get()).email == ADMIN_EMAIL
    assert fake.user(ADMIN_EMAIL).password == "new-secret"
    assert fake.counts["login"] == 2


async def test_email_change_and_password_reset(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    async with api_key_client(fake, local) as client:
        await client.user.initiate_email_change("boss@example.test", redirect_url="https://app/x")
        token = fake.outbox[-1].token
        await client.user.verify_email(token)
        assert (await client.user.get()).email == "boss@example.test"
        await client.user.initiate_password_reset(TOTP_EMAIL)
        reset = fake.outbox[-1]
        assert reset.kind == "reset-password" and reset.to == TOTP_EMAIL
        await client.user.reset_password(reset.token)
        assert fake.user(TOTP_EMAIL).password_change_required


async def test_typed_errors(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    fake.add_user("plain@example.test", "pw")
    async with api_key_client(fake, local) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.users.get(424242)
        assert missing.value.server_message == "User not found"
        assert missing.value.details["error"] == "Not Found"
    async with api_key_client(fake, local, email="plain@example.test") as plain:
        with pytest.raises(PermissionDeniedError):
            await anext_user(plain)


async def anext_user(client: MetalCloudClient) -> Any:
    async for user in client.users.list():
        return user
    return None


async def test_latest_revision_is_read_first(fake: MetalCloudFake, local: dict[str, Any]) -> None:
    target = fake.user(TOTP_EMAIL)
    target.revision = 41
    async with api_key_client(fake, local) as client:
        user = await client.users.archive(target.id, revision=LATEST)
        assert user.revision == 42
