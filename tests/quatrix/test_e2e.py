"""End-to-end: QuatrixClient against the Quatrix fake, in-process and over real sockets."""

from __future__ import annotations

import anyio
import httpx
import pytest

from mfa_common._transports import default_transport
from mfa_common.clock import FakeClock
from mfa_common.code_providers import CallbackCodeProvider, MfaChallenge
from mfa_common.errors import (
    AuthenticationError,
    CaptchaRequiredError,
    MfaCodeRejectedError,
    MfaRequiredError,
    PermissionDeniedError,
)
from mfa_common.qr_decode import decode_qr_text
from mfa_common.totp import Totp
from quatrix_async import AuthType, CaptchaRejectedError
from quatrix_async.testing import QuatrixFake
from tests.gates import GatedTransport, hold_login_until_waiters

from .conftest import PASSWORD, ClientFactory

pytestmark = pytest.mark.anyio


async def test_login_without_mfa(fake: QuatrixFake, make_client: ClientFactory) -> None:
    fake.add_user(email="plain@example.com", password=PASSWORD)
    async with make_client(email="plain@example.com", password=PASSWORD) as client:
        profile = await client.profile.get()
        assert profile.email == "plain@example.com"
        assert profile.auth_methods == []
        assert len(fake.sessions_of("plain@example.com")) == 1
    assert fake.counts["basic_login"] == 1
    assert fake.counts["mfa_step"] == 0
    assert fake.counts["logout"] == 1
    assert fake.sessions_of("plain@example.com") == []


async def test_login_with_2fa(fake: QuatrixFake, make_client: ClientFactory) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    async with make_client(
        email="totp@example.com", password=PASSWORD, totp_secret=user.totp_secret
    ) as client:
        info = await client.profile.info()
        assert info.user_used == 1
        assert (await client.profile.get()).auth_methods == ["2FA"]
    assert fake.counts["basic_login"] == 1
    assert fake.counts["mfa_step"] == 1
    assert fake.logins_of("totp@example.com") == 1


async def test_login_with_pin(fake: QuatrixFake, make_client: ClientFactory) -> None:
    fake.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
    async with make_client(email="pin@example.com", password=PASSWORD, pin="40516") as client:
        assert (await client.profile.get()).auth_methods == ["PIN"]
    assert fake.counts["mfa_step"] == 1


async def test_mfa_user_without_a_code_source_gets_mfa_required(
    fake: QuatrixFake, make_client: ClientFactory
) -> None:
    fake.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
    async with make_client(email="pin@example.com", password=PASSWORD) as client:
        with pytest.raises(MfaRequiredError) as info:
            await client.profile.get()
        assert info.value.challenge.kind == "pin"
    assert fake.counts["mfa_step"] == 0


async def test_wrong_totp_code_is_rejected_once_and_not_retried(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    assert user.totp_secret is not None
    right = Totp(user.totp_secret).code_at(clock.now())
    wrong = "000000" if right != "000000" else "111111"
    asked: list[MfaChallenge] = []

    def ask(challenge: MfaChallenge) -> str:
        asked.append(challenge)
        return wrong

    provider = CallbackCodeProvider(ask)
    async with make_client(email="totp@example.com", password=PASSWORD, code_provider=provider) as client:
        with pytest.raises(MfaCodeRejectedError) as info:
            await client.profile.get()
    assert info.value.error_code == 83
    assert info.value.status_code == 401
    assert [c.kind for c in asked] == ["totp"]
    assert fake.counts["mfa_step"] == 1
    assert right not in str(info.value)


async def test_wrong_pin_is_rejected_with_code_84(fake: QuatrixFake, make_client: ClientFactory) -> None:
    fake.add_user(email="pin@example.com", password=PASSWORD, pin="40516")
    async with make_client(email="pin@example.com", password=PASSWORD, pin="99999") as client:
        with pytest.raises(MfaCodeRejectedError) as info:
            await client.users.metadata(fake.user("pin@example.com").id)
    assert info.value.error_code == 84
    assert fake.counts["mfa_step"] == 1


async def test_reused_code_waits_for_the_next_step(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    assert user.totp_secret is not None
    totp = Totp(user.totp_secret)
    start_step = totp.step_at(clock.now())
    for _ in range(3):
        async with make_client(
            email="totp@example.com", password=PASSWORD, totp_secret=user.totp_secret
        ) as client:
            await client.profile.get()
    # Three logins, three accepted codes: each in its own step, reached by waiting on the clock.
    assert fake.logins_of("totp@example.com") == 3
    assert fake.verifier.last_step(user.id) == start_step + 2
    assert clock.sleeps, "the client should have waited for the next time step"


async def test_the_fake_rejects_a_replayed_code(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    assert user.totp_secret is not None
    code = Totp(user.totp_secret).code_at(clock.now())
    async with make_client() as client:
        first = await client.session.login("totp@example.com", PASSWORD)
        assert first.kind == "mfa"
        assert first.session_id is not None
        done = await client.session.login_mfa(first.session_id, AuthType.TWO_FA, code)
        assert done.session_id == first.session_id
        second = await client.session.login("totp@example.com", PASSWORD)
        assert second.session_id is not None
        with pytest.raises(MfaCodeRejectedError) as info:
            await client.session.login_mfa(second.session_id, "2FA", code)
        assert info.value.error_code == 83


async def test_idle_session_is_replaced_before_use(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    async with make_client(
        email="totp@example.com", password=PASSWORD, totp_secret=user.totp_secret
    ) as client:
        await client.profile.get()
        clock.advance(16 * 60)
        await client.profile.get()
        assert fake.counts["basic_login"] == 2
        assert fake.counts["mfa_step"] == 2
        # No 401 was needed: the client knew the session was too old.
        assert fake.controls.requests_to("GET", "/api/1.0/profile") == 2


async def test_expired_session_triggers_one_transparent_relogin_and_replay(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    async with make_client(
        email="totp@example.com", password=PASSWORD, totp_secret=user.totp_secret
    ) as client:
        await client.profile.get()
        fake.expire_all_sessions()
        profile = await client.profile.get()
        assert profile.email == "totp@example.com"
        assert fake.counts["basic_login"] == 2
        assert fake.controls.requests_to("GET", "/api/1.0/profile") == 3


async def test_keepalive_only_when_idle_long_enough(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    fake.add_user(email="plain@example.com", password=PASSWORD)
    async with make_client(email="plain@example.com", password=PASSWORD) as client:
        auth = client.auth
        assert auth is not None
        assert await auth.keepalive_if_idle() is False  # no session yet
        await client.profile.get()
        clock.advance(60)
        assert await auth.keepalive_if_idle() is False  # busy enough: nothing sent
        clock.advance(5 * 60)
        assert await auth.keepalive_if_idle() is True
        clock.advance(10 * 60)  # 10 min after the keepalive: the session must still live
        await client.profile.get()
        assert fake.counts["keepalive"] == 1
        assert fake.counts["basic_login"] == 1
        await client.session.keepalive()
        assert fake.counts["keepalive"] == 2


async def test_background_keepalive_helper(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    fake.add_user(email="plain@example.com", password=PASSWORD)
    async with make_client(email="plain@example.com", password=PASSWORD) as client:
        await client.profile.get()
        clock.advance(6 * 60)
        async with client.keepalive_in_background(interval=0.01):
            with anyio.fail_after(5):
                while fake.counts["keepalive"] == 0:
                    await anyio.sleep(0.01)
        assert fake.counts["basic_login"] == 1


async def test_one_thousand_concurrent_calls_on_a_cold_client_log_in_once(
    fake: QuatrixFake, make_client: ClientFactory, request: pytest.FixtureRequest
) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    # The Basic login's answer is held until the other 999 calls wait on the login in flight.
    inner = (
        httpx.ASGITransport(fake)
        if request.node.callspec.params["make_client"] == "in-process"
        else default_transport(limits=httpx.Limits(max_connections=100))
    )
    gate = GatedTransport(inner, lambda r: r.method == "GET" and r.url.path.endswith("/session/login"))
    async with make_client(
        transport=gate, email="totp@example.com", password=PASSWORD, totp_secret=user.totp_secret
    ) as client:
        auth = client.auth
        assert auth is not None
        results: list[str | None] = []

        async def call() -> None:
            results.append((await client.profile.get()).email)

        async with anyio.create_task_group() as group:
            for _ in range(1000):
                group.start_soon(call)
            await hold_login_until_waiters(gate, auth, 999)
        assert results == ["totp@example.com"] * 1000
        assert gate.held == 1
        assert auth.acquisitions == 1
        assert auth.mfa_steps == 1
    assert fake.counts["basic_login"] == 1
    assert fake.counts["mfa_step"] == 1


async def test_captcha_path(fake: QuatrixFake, make_client: ClientFactory) -> None:
    user = fake.add_user(email="totp@example.com", password=PASSWORD, mfa=True)
    for _ in range(3):
        async with make_client(email="totp@example.com", password="wrong-password") as client:
            with pytest.raises(AuthenticationError) as info:
                await client.profile.get()
            assert info.value.error_code == 14
    async with make_client(
        email="totp@example.com", password=PASSWORD, totp_secret=user.totp_secret
    ) as client:
        with pytest.raises(CaptchaRequiredError) as blocked:
            await client.profile.get()
        blocked_session = blocked.value.session_id
        assert blocked_session is not None
        assert blocked_session.reveal() not in str(blocked.value)
        assert blocked.value.error_code == 61
        with pytest.raises(CaptchaRejectedError):
            await client.session.unblock_captcha("not-the-token", session_id=blocked_session)
        result = await client.session.unblock_captcha(fake.captcha_token, session_id=blocked_session)
        assert result.valid is True
        profile = await client.profile.get()
        assert profile.email == "totp@example.com"


async def test_captcha_unblock_with_get_variant(fake: QuatrixFake, make_client: ClientFactory) -> None:
    fake.add_user(email="plain@example.com", password=PASSWORD)
    fake.block_with_captcha("plain@example.com")
    async with make_client(email="plain@example.com", password=PASSWORD) as client:
        with pytest.raises(CaptchaRequiredError) as blocked:
            await client.login()
        result = await client.session.unblock_captcha(
            fake.captcha_token, session_id=blocked.value.session_id, method="GET"
        )
        assert result.valid is True
        # The unblocked session is logged in (no MFA): adopt it instead of logging in again.
        auth = client.auth
        assert auth is not None
        auth.adopt_session(blocked.value.session_id)
        await client.profile.get()
    assert fake.counts["basic_login"] == 1


async def test_admin_set_reset_remove_mfa_for_many_users(
    fake: QuatrixFake, make_client: ClientFactory
) -> None:
    fake.add_user(email="admin@example.com", password=PASSWORD, admin=True)
    staff = [fake.add_user(email=f"user{i:03}@example.com", password=PASSWORD) for i in range(60)]
    ids = [u.id for u in staff]
    async with make_client() as raw:
        for user in staff[:10]:  # give some users live sessions
            await raw.session.login(user.email, PASSWORD)
    assert all(len(fake.sessions_of(u.email)) == 1 for u in staff[:10])

    async with make_client(email="admin@example.com", password=PASSWORD) as admin:
        listed = await admin.users.list()
        assert {u.email for u in listed} >= {u.email for u in staff}

        assert (await admin.mfa.set_for_users(ids, AuthType.PIN, "24680")).status == "success"
        assert all(fake.sessions_of(u.email) == [] for u in staff[:10])
        meta = await admin.users.metadata(ids[0])
        assert meta.auth_methods == ["PIN"]

        await admin.mfa.set_for_users(ids[:30], "2FA", "000000")
        meta = await admin.users.metadata(ids[0])
        assert meta.auth_methods == ["2FA"]
        assert meta.forced_auth == ["2FA"]

        await admin.mfa.reset_for_users(ids[:30])
        await admin.mfa.remove_for_users(ids[30:], "PIN")
        assert (await admin.users.metadata(ids[59])).auth_methods == []

    assert fake.ledger.keys("user.set-mfa") == set(ids)
    assert fake.ledger.duplicates("user.reset-mfa") == {}
    assert fake.ledger.keys("user.reset-mfa") == set(ids[:30])
    assert fake.ledger.keys("user.remove-mfa") == set(ids[30:])
    # The users forced to 2FA whose secret was reset must set it up again: a PIN no longer works.
    async with make_client(email=staff[0].email, password=PASSWORD, pin="24680") as client:
        with pytest.raises(MfaRequiredError):
            await client.profile.get()


async def test_non_admin_cannot_use_admin_calls(fake: QuatrixFake, make_client: ClientFactory) -> None:
    fake.add_user(email="plain@example.com", password=PASSWORD)
    other = fake.add_user(email="other@example.com", password=PASSWORD)
    async with make_client(email="plain@example.com", password=PASSWORD) as client:
        with pytest.raises(PermissionDeniedError) as info:
            await client.mfa.remove_for_users([other.id], "PIN")
        assert info.value.error_code == 70
    assert fake.counts["basic_login"] == 1
    assert fake.ledger.entries() == []


async def test_own_mfa_setup_with_generated_secret(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    fake.add_user(email="plain@example.com", password=PASSWORD)
    async with make_client(email="plain@example.com", password=PASSWORD) as client:
        generated = await client.profile.generate_2fa()
        assert generated.qr_png.reveal().startswith(b"\x89PNG")
        assert generated.secret is not None
        code = Totp(generated.secret).code_at(clock.now())
        await client.profile.set_mfa("2FA", code)
        assert (await client.profile.get()).auth_methods == ["2FA"]
        assert (await client.mfa.remove_own("2FA")).status == "success"
        await client.profile.set_mfa(AuthType.PIN, "13579")
        await client.profile.update(name="Plain User", language="deu")
        profile = await client.profile.get()
        assert (profile.name, profile.language, profile.auth_methods) == ("Plain User", "deu", ["PIN"])
        changed = await client.profile.set_password(PASSWORD, "a-new-password")
        assert changed.email == "plain@example.com"
    assert fake.user("plain@example.com").password == "a-new-password"
    # The new credentials work, with the PIN now required.
    async with make_client(email="plain@example.com", password="a-new-password", pin="13579") as client:
        await client.profile.get()


async def test_forced_2fa_user_without_secret_can_set_it_up_in_the_partial_session(
    fake: QuatrixFake, make_client: ClientFactory, clock: FakeClock
) -> None:
    user = fake.add_user(email="forced@example.com", password=PASSWORD, mfa=True)
    user.totp_secret = None
    async with make_client() as client:
        step = await client.session.login("forced@example.com", PASSWORD)
        assert step.kind == "mfa"
        assert step.session_id is not None
        headers = {"X-Auth-Token": step.session_id.reveal()}
        response = await client.requestor.request(
            "GET", "profile/2fa/generate", headers=headers, authenticated=False
        )
        assert response.headers["content-type"] == "application/octet-stream"
        totp = Totp.from_uri(decode_qr_text(response.content))
        await client.requestor.request(
            "POST",
            "profile/set-mfa",
            json={"auth_type": "2FA", "code": totp.code_at(clock.now())},
            headers=headers,
            authenticated=False,
        )
        # The session is now fully logged in.
        ok = await client.requestor.request("GET", "profile", headers=headers, authenticated=False)
        assert ok.json()["auth_methods"] == ["2FA"]
