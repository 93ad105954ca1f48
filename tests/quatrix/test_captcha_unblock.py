"""CAPTCHA unblock: ``GET /session/unblock-captcha?token=`` by default (the current contract), the
older ``POST {"token"}`` on request; the fake accepts both."""

from __future__ import annotations

import json
from typing import Literal

import httpx
import pytest

from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from quatrix_async import QuatrixClient
from quatrix_async.errors import CaptchaRejectedError
from quatrix_async.testing import QuatrixFake

from .conftest import PASSWORD

pytestmark = pytest.mark.anyio

TOKEN = "solved-captcha-7f3a"


def recording_client(seen: list[httpx.Request], *, valid: bool = True) -> QuatrixClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200 if valid else 401, json={"valid": valid})

    return QuatrixClient(
        "https://acme.quatrix.example",
        transport=httpx.MockTransport(handler),
        options=ClientOptions(retry=RetryPolicy(max_retries=0)),
    )


async def test_the_default_is_get_with_the_token_in_the_query() -> None:
    seen: list[httpx.Request] = []
    async with recording_client(seen) as client:
        result = await client.session.unblock_captcha(TOKEN, session_id="blocked-session")
    assert result.valid is True
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/api/1.0/session/unblock-captcha"
    assert request.url.params["token"] == TOKEN
    assert request.headers["X-Auth-Token"] == "blocked-session"
    assert request.content == b""


async def test_post_is_still_available_with_the_token_in_the_body() -> None:
    seen: list[httpx.Request] = []
    async with recording_client(seen) as client:
        result = await client.session.unblock_captcha(TOKEN, session_id="blocked-session", method="POST")
    assert result.valid is True
    (request,) = seen
    assert request.method == "POST"
    assert "token" not in request.url.params
    assert json.loads(request.content) == {"token": TOKEN}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_wrong_token_is_a_typed_error_without_the_token(method: Literal["GET", "POST"]) -> None:
    seen: list[httpx.Request] = []
    async with recording_client(seen, valid=False) as client:
        with pytest.raises(CaptchaRejectedError) as info:
            await client.session.unblock_captcha(TOKEN, session_id="blocked-session", method=method)
    assert info.value.valid is False
    assert TOKEN not in str(info.value)
    assert seen[0].method == method


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_the_fake_unblocks_with_either_verb(method: Literal["GET", "POST"]) -> None:
    fake = QuatrixFake()
    fake.add_user(email="plain@example.com", password=PASSWORD)
    fake.block_with_captcha("plain@example.com")
    async with QuatrixClient("http://127.0.0.1", transport=httpx.ASGITransport(fake)) as client:
        step = await client.session.login("plain@example.com", PASSWORD)
        assert step.kind == "captcha" and step.session_id is not None
        with pytest.raises(CaptchaRejectedError):
            await client.session.unblock_captcha("wrong", session_id=step.session_id, method=method)
        assert (
            await client.session.unblock_captcha(
                fake.captcha_token, session_id=step.session_id, method=method
            )
        ).valid
    assert fake.counts["captcha_unblocked"] == 1
    assert len(fake.sessions_of("plain@example.com")) == 1
