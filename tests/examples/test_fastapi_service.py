"""The FastAPI example: one client opened in the lifespan, shared by every request, tested
against the shipped Quatrix fake over real loopback sockets."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from examples.fastapi_service.app import Settings, create_app
from mfa_common.testing import serve
from quatrix_async.testing import QuatrixFake

PASSWORD = "Adm1n-pass-for-tests"


@pytest.fixture
def fake() -> QuatrixFake:
    fake = QuatrixFake()  # a fresh TOTP secret per test: the replay guard is process-wide
    fake.add_user(email="admin@example.com", password=PASSWORD, mfa=True, admin=True, name="Admin")
    for n in range(5):
        fake.add_user(email=f"user{n}@example.com", password=f"user-pass-{n}", mfa=n % 2 == 1)
    return fake


@pytest.fixture
def service(fake: QuatrixFake) -> Iterator[str]:
    admin = fake.user("admin@example.com")
    with serve(fake) as quatrix:
        settings = Settings(
            url=quatrix.base_url, email=admin.email, password=PASSWORD, totp_secret=admin.totp_secret
        )
        with serve(create_app(settings), lifespan="on") as app_server:
            yield app_server.base_url


@pytest.mark.anyio
async def test_endpoints_share_one_client_and_one_login(fake: QuatrixFake, service: str) -> None:
    async with httpx.AsyncClient(base_url=service, timeout=20) as http:
        results = []

        async def call() -> None:
            results.append((await http.get("/me")).json())

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(call)
        assert all(r["email"] == "admin@example.com" for r in results)
        lacking = (await http.get("/users/without-2fa")).json()
        assert {u["email"] for u in lacking} >= {"user0@example.com", "user2@example.com"}
        assert "user1@example.com" not in {u["email"] for u in lacking}
    assert fake.logins_of("admin@example.com") == 1
    assert fake.counts["mfa_step"] == 1


@pytest.mark.anyio
async def test_client_disconnecting_mid_request_does_not_harm_later_requests(
    fake: QuatrixFake, service: str
) -> None:
    fake.controls.latency = 0.3
    async with httpx.AsyncClient(base_url=service) as impatient:
        for _ in range(10):
            with pytest.raises(httpx.ReadTimeout):
                await impatient.get("/me", timeout=0.05)
    fake.controls.latency = 0.0
    async with httpx.AsyncClient(base_url=service, timeout=20) as http:
        responses = [await http.get("/me") for _ in range(10)]
    assert [r.status_code for r in responses] == [200] * 10
    assert fake.logins_of("admin@example.com") == 1


@pytest.mark.anyio
async def test_admin_reset_goes_through_and_errors_are_typed(fake: QuatrixFake, service: str) -> None:
    target = fake.user("user1@example.com")
    async with httpx.AsyncClient(base_url=service, timeout=20) as http:
        ok = await http.post(f"/users/{target.id}/reset-mfa")
        assert ok.status_code == 200
        assert ok.json() == {"status": "success"}
        missing = await http.post("/users/00000000-0000-4000-8000-000000000000/reset-mfa")
        assert missing.status_code in (400, 404)
        assert PASSWORD not in missing.text
    assert fake.ledger.count("user.reset-mfa", target.id) == 1
