"""Error bodies are read only when the content type says JSON (as Maytech's C# client does), and
the fake sends every ``ErrorModel`` as ``application/json``."""

from __future__ import annotations

import json

import httpx
import pytest

from mfa_common.errors import (
    AuthenticationError,
    BadRequestError,
    MfaCodeRejectedError,
    NotFoundError,
    ServerError,
)
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from quatrix_async import QuatrixClient
from quatrix_async.errors import map_error
from quatrix_async.testing import QuatrixFake

pytestmark = pytest.mark.anyio

WRONG_CODE = json.dumps({"code": 83, "msg": "Wrong authentication code", "details": {"try": 1}}).encode()


def answer(status: int, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return httpx.Response(
        status, content=body, headers=headers, request=httpx.Request("GET", "https://h/api/1.0/profile")
    )


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/problem+json"],
)
def test_a_json_error_model_is_read(content_type: str) -> None:
    error = map_error(answer(401, WRONG_CODE, content_type))
    assert type(error) is MfaCodeRejectedError
    assert (error.error_code, error.server_message, error.details) == (
        83,
        "Wrong authentication code",
        {"try": 1},
    )


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/html; charset=utf-8", "application/octet-stream", None]
)
def test_the_same_bytes_under_another_content_type_are_not_an_error_model(content_type: str | None) -> None:
    error = map_error(answer(401, WRONG_CODE, content_type))
    assert type(error) is AuthenticationError  # typed by its status alone
    assert error.error_code is None and error.server_message is None and error.details == {}


def test_a_proxy_error_page_is_a_server_error_by_status() -> None:
    error = map_error(answer(502, b"<html><body>Bad Gateway</body></html>", "text/html"))
    assert type(error) is ServerError
    assert error.error_code is None


async def test_the_client_reads_error_bodies_by_content_type() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        content_type = "application/json" if request.url.path.endswith("/profile") else "text/plain"
        return httpx.Response(
            400,
            content=json.dumps({"code": 10, "msg": "bad value"}).encode(),
            headers={"Content-Type": content_type},
        )

    async with QuatrixClient(
        "https://acme.quatrix.example",
        transport=httpx.MockTransport(handler),
        options=ClientOptions(retry=RetryPolicy(max_retries=0)),
    ) as client:
        with pytest.raises(BadRequestError) as typed:
            await client.profile.get()
        with pytest.raises(BadRequestError) as untyped:
            await client.profile.info()
    assert typed.value.error_code == 10
    assert untyped.value.error_code is None


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/1.0/no-such-operation", 404),
        ("DELETE", "/api/1.0/profile", 405),
        ("GET", "/api/1.0/profile", 401),
    ],
)
async def test_every_fake_error_is_a_json_error_model(method: str, path: str, status: int) -> None:
    fake = QuatrixFake()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake), base_url="http://q.test") as http:
        response = await http.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body["code"], int) and isinstance(body["msg"], str)


async def test_the_sdk_types_a_fake_404_from_its_error_model() -> None:
    fake = QuatrixFake()
    fake.add_user(email="staff@example.com", password="correct-horse")
    key = fake.issue_api_key("staff@example.com")
    async with QuatrixClient("http://127.0.0.1", api_key=key, transport=httpx.ASGITransport(fake)) as client:
        with pytest.raises(NotFoundError) as info:
            await client.requestor.request("GET", "no-such-operation")
    assert info.value.error_code == -1
