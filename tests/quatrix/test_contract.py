"""Contract: every request the client sends and every response the fake returns, for every
operation of quatrix-1.0.yaml, validates against that document."""

from __future__ import annotations

import httpx
import pytest
import yaml

from mfa_common.clock import FakeClock
from mfa_common.code_providers import CallbackCodeProvider
from mfa_common.errors import AuthenticationError, BadRequestError, MfaCodeRejectedError
from mfa_common.options import ClientOptions
from mfa_common.totp import Totp
from quatrix_async import AuthType, CaptchaRejectedError, QuatrixClient
from quatrix_async.testing import QuatrixFake
from tests.contract import SPECS, ValidatingTransport

pytestmark = pytest.mark.anyio

PASSWORD = "correct-horse"
SPEC = "quatrix-1.0.yaml"


def _spec_operations() -> set[tuple[str, str]]:
    doc = yaml.safe_load((SPECS / SPEC).read_text())
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}


class Recording(ValidatingTransport):
    """Also records which documented operation each exchange hit."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        super().__init__(inner, SPEC, prefix="/api/1.0")
        self.seen: set[tuple[str, str]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/1.0")
        if path.startswith("/user/metadata/"):
            path = "/user/metadata/{id}"
        self.seen.add((request.method, path))
        return await super().handle_async_request(request)


async def test_every_operation_validates_against_the_document() -> None:
    clock = FakeClock()
    fake = QuatrixFake(clock=clock)
    admin = fake.add_user(email="admin@example.com", password=PASSWORD, admin=True, mfa=True)
    staff = [fake.add_user(email=f"u{i}@example.com", password=PASSWORD) for i in range(3)]
    fake.add_user(email="pin@example.com", password=PASSWORD, pin="12345")
    transport = Recording(httpx.ASGITransport(fake))

    def client(**kw: object) -> QuatrixClient:
        return QuatrixClient("http://127.0.0.1", transport=transport, clock=clock, **kw)  # type: ignore[arg-type]

    async with client(email="admin@example.com", password=PASSWORD, totp_secret=admin.totp_secret) as c:
        await c.profile.get()
        await c.profile.info()
        await c.profile.update(name="Admin", message_signature="--")
        await c.profile.set_password(PASSWORD, PASSWORD + "!")
        with pytest.raises(BadRequestError):
            await c.profile.set_password("wrong-current", "whatever-new")
        generated = await c.profile.generate_2fa()
        assert generated.secret is not None
        clock.advance(30)
        await c.profile.set_mfa("2FA", Totp(generated.secret).code_at(clock.now()))
        await c.session.keepalive()
        users = await c.users.list()
        assert len(users) == 5
        await c.users.metadata(staff[0].id)
        ids = [u.id for u in staff]
        await c.mfa.set_for_users(ids, AuthType.TWO_FA, "123456")
        await c.mfa.reset_for_users(ids)
        await c.mfa.remove_for_users(ids, AuthType.TWO_FA)
        await c.profile.set_mfa("PIN", "54321")
        await c.profile.remove_mfa("PIN")
        await c.session.logout()

    async with client(email="pin@example.com", password=PASSWORD, pin="00000") as c:
        with pytest.raises(MfaCodeRejectedError):
            await c.profile.get()
    async with client(email="pin@example.com", password="bad-password") as c:
        with pytest.raises(AuthenticationError):
            await c.profile.get()
    fake.block_with_captcha("pin@example.com")
    async with client() as c:
        step = await c.session.login("pin@example.com", PASSWORD)
        assert step.kind == "captcha"
        assert step.session_id is not None
        # The POST form is the one the document describes (GET, the default, is newer).
        with pytest.raises(CaptchaRejectedError):
            await c.session.unblock_captcha("nope", session_id=step.session_id, method="POST")
        unblocked = await c.session.unblock_captcha(
            fake.captcha_token, session_id=step.session_id, method="POST"
        )
        assert unblocked.valid
    # A dead session id: the fake's 401 ErrorModel on an authenticated path.
    dead = {"X-Auth-Token": "00000000-0000-4000-8000-000000000000"}
    async with QuatrixClient(
        "http://127.0.0.1", transport=transport, options=ClientOptions(headers=dead)
    ) as anonymous:
        with pytest.raises(AuthenticationError):
            await anonymous.profile.get()

    assert transport.violations == []
    assert transport.seen >= _spec_operations()
    assert transport.checked >= 25


async def test_fake_error_bodies_validate_under_fault_injection_too() -> None:
    fake = QuatrixFake()
    fake.add_user(email="plain@example.com", password=PASSWORD)
    transport = ValidatingTransport(
        httpx.ASGITransport(fake), SPEC, prefix="/api/1.0", ignore_statuses=frozenset({503, 500})
    )
    fake.controls.fail_next("server_error", path="/api/1.0/profile")
    async with QuatrixClient(
        "http://127.0.0.1", email="plain@example.com", password=PASSWORD, transport=transport
    ) as client:
        assert (await client.profile.get()).email == "plain@example.com"
    assert fake.controls.faults_injected == {"server_error": 1}
    assert transport.violations == []


async def test_callback_provider_request_shape_validates() -> None:
    clock = FakeClock()
    fake = QuatrixFake(clock=clock)
    user = fake.add_user(email="t@example.com", password=PASSWORD, mfa=True)
    assert user.totp_secret is not None
    secret = user.totp_secret
    transport = ValidatingTransport(httpx.ASGITransport(fake), SPEC, prefix="/api/1.0")
    provider = CallbackCodeProvider(lambda challenge: Totp(secret).code_at(clock.now()))
    async with QuatrixClient(
        "http://127.0.0.1",
        email="t@example.com",
        password=PASSWORD,
        code_provider=provider,
        transport=transport,
        clock=clock,
    ) as client:
        await client.profile.get()
    assert transport.violations == []
