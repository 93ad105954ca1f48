"""API keys: ``Authorization: Bearer <key>``, no session and no login (first class in the current
Quatrix documentation), in the client and in the fake (keys per user, revocable)."""

from __future__ import annotations

import httpx
import pytest

from mfa_common.auth import ApiKeyAuth
from mfa_common.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from quatrix_async import QuatrixClient
from quatrix_async.testing import QuatrixFake

from .conftest import PASSWORD, ClientFactory

pytestmark = pytest.mark.anyio

KEY = "qx_batch-key-0123456789"


async def test_a_key_reads_and_administers_without_any_login(
    fake: QuatrixFake, make_client: ClientFactory
) -> None:
    admin = fake.add_user(email="admin@example.com", password=PASSWORD, admin=True, mfa=True)
    staff = fake.add_user(email="staff@example.com", password=PASSWORD)
    key = fake.issue_api_key(admin.email)
    async with make_client(api_key=key, validate=False) as client:
        assert (await client.profile.get()).email == "admin@example.com"
        assert {u.email for u in await client.users.list()} == {admin.email, staff.email}
        assert (await client.mfa.set_for_users([staff.id], "PIN", "13579")).status == "success"
    assert fake.counts["basic_login"] == 0 and fake.counts["mfa_step"] == 0 and fake.counts["logout"] == 0
    assert fake.counts["api_key_call"] == 3
    assert fake.sessions_of(admin.email, state=None) == []
    assert fake.user(staff.email).mfa_kind == "pin"


async def test_keys_belong_to_their_user(fake: QuatrixFake, make_client: ClientFactory) -> None:
    fake.add_user(email="admin@example.com", password=PASSWORD, admin=True)
    fake.add_user(email="staff@example.com", password=PASSWORD)
    staff_key = fake.issue_api_key("staff@example.com")
    fake.issue_api_key("staff@example.com")
    assert fake.api_keys_of("staff@example.com") == 2
    async with make_client(api_key=staff_key, validate=False) as client:
        assert (await client.profile.get()).email == "staff@example.com"
        with pytest.raises(PermissionDeniedError):
            await client.users.list()


async def test_a_revoked_key_is_refused_at_once_and_nothing_logs_in(
    fake: QuatrixFake, make_client: ClientFactory
) -> None:
    fake.add_user(email="staff@example.com", password=PASSWORD)
    key = fake.issue_api_key("staff@example.com")
    async with make_client(api_key=key, validate=False) as client:
        await client.profile.get()
        fake.revoke_api_key(key)
        with pytest.raises(AuthenticationError) as info:
            await client.profile.get()
    assert info.value.status_code == 401 and info.value.error_code == 14
    assert key not in str(info.value)
    assert fake.api_keys_of("staff@example.com") == 0
    assert fake.counts["basic_login"] == 0


async def test_the_fake_refuses_an_unknown_key_with_a_json_error() -> None:
    fake = QuatrixFake()
    fake.add_user(email="staff@example.com", password=PASSWORD)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake), base_url="http://q.test") as http:
        answer = await http.get("/api/1.0/profile", headers={"Authorization": "Bearer qx_not-a-key"})
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["code"] == 14


async def test_the_client_sends_only_the_bearer_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "u1", "email": "svc@example.com"})

    async with QuatrixClient(
        "https://acme.quatrix.example", api_key=KEY, transport=httpx.MockTransport(handler)
    ) as client:
        await client.profile.get()
        assert isinstance(client.auth, ApiKeyAuth)
        assert KEY not in repr(client)
    (request,) = seen  # no login before, no logout after
    assert request.url.path == "/api/1.0/profile"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert "X-Auth-Token" not in request.headers


@pytest.mark.parametrize(
    "extra",
    [
        {"email": "a@example.com", "password": "pw"},
        {"email": "a@example.com"},
        {"password": "pw"},
        {"totp_secret": "JBSWY3DPEHPK3PXP"},
        {"pin": "12345"},
        {"auth": httpx.BasicAuth("a", "b")},
    ],
    ids=["email-password", "email", "password", "totp", "pin", "auth"],
)
def test_a_key_with_login_credentials_is_a_clear_typed_error(extra: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match=r"give one credential|only with email=") as info:
        QuatrixClient("https://acme.quatrix.example", api_key=KEY, **extra)  # type: ignore[arg-type]
    assert KEY not in str(info.value)


@pytest.mark.parametrize("bad", ["", "   ", "key with space", "key\r\nX-Injected: 1", " padded"])
def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        QuatrixClient("https://acme.quatrix.example", api_key=bad)
    assert bad.strip() == "" or bad.strip() not in str(info.value)
