"""The contract harness itself must be able to fail, or every contract test proves nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.contract import ValidatingTransport


def _transport(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body, headers=headers))


@pytest.mark.anyio
async def test_valid_exchange_has_no_violations() -> None:
    inner = _transport(207, {"session_id": "7f0c2c36-0f4e-4a53-9d7e-5b0f7f3b2f11"}, {"Mfa-Code": "71"})
    transport = ValidatingTransport(inner, "quatrix-1.0.yaml", prefix="/api/1.0")
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1/api/1.0") as client:
        await client.get("/session/login", auth=("a@example.com", "pw"))
    assert transport.checked == 1
    assert transport.violations == []


@pytest.mark.anyio
async def test_wrong_response_type_is_a_violation() -> None:
    transport = ValidatingTransport(
        _transport(200, {"session_id": 12}), "quatrix-1.0.yaml", prefix="/api/1.0"
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1/api/1.0") as client:
        await client.get("/session/login", auth=("a@example.com", "pw"))
    assert transport.violations, "a number where the spec says string must be reported"


@pytest.mark.anyio
async def test_request_missing_required_body_field_is_a_violation() -> None:
    transport = ValidatingTransport(_transport(200, {}), "shellhub-mfa.yaml")
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        await client.post("/api/user/mfa/auth", json={"token": "x"})  # no "code"
    assert any("request" in v for v in transport.violations)


@pytest.mark.anyio
async def test_unknown_path_is_a_violation() -> None:
    transport = ValidatingTransport(_transport(200, {}), "metalcloud-v2.yaml")
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        await client.get("/api/v2/not-an-operation")
    assert transport.violations
