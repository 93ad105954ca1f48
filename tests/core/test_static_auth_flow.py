"""The static backends' auth flow: one step, driven exactly like ``async def f(): yield request``."""

from __future__ import annotations

import httpx
import pytest

from mfa_common.auth import BearerTokenAuth
from mfa_common.wire import PATH_TEMPLATE_EXTENSION


@pytest.mark.anyio
async def test_the_flow_yields_the_signed_request_once_then_ends() -> None:
    auth = BearerTokenAuth("token-1", base_url="https://api.test")
    request = httpx.Request("GET", "https://api.test/x")
    flow = auth.async_auth_flow(request)
    assert await flow.__anext__() is request
    assert request.headers["Authorization"] == "Bearer token-1"
    with pytest.raises(StopAsyncIteration):
        await flow.asend(httpx.Response(401))
    await flow.aclose()
    with pytest.raises(StopAsyncIteration):
        await flow.__anext__()
    assert [r async for r in auth.async_auth_flow(httpx.Request("GET", "https://api.test/y"))] != []


@pytest.mark.anyio
async def test_a_url_on_the_origin_is_remembered_but_never_one_with_a_secret_path() -> None:
    auth = BearerTokenAuth("token-1", base_url="https://api.test")
    secret = httpx.Request(
        "GET", "https://api.test/reset/s3cr3t", extensions={PATH_TEMPLATE_EXTENSION: "reset/{token}"}
    )
    await auth.async_auth_flow(secret).__anext__()
    assert secret.headers["Authorization"] == "Bearer token-1"
    assert auth._on_origin is None
    plain = httpx.Request("GET", "https://api.test/x")
    await auth.async_auth_flow(plain).__anext__()
    assert auth._on_origin is plain.url
    # Another origin is still refused after a URL was remembered.
    other = httpx.Request("GET", "https://other.test/x")
    assert await auth.async_auth_flow(other).__anext__() is other
    assert "Authorization" not in other.headers
