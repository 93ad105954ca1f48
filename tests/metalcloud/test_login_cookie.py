"""MetalCloud 12: the pending login is a cookie session; ``login-2fa`` goes with the cookie
``/login`` set, on the bound origin only, and nothing of it is sent to another origin."""

from __future__ import annotations

import httpx
import pytest

from metalcloud_async import MetalCloudClient
from mfa_common.code_providers import CallbackCodeProvider

pytestmark = pytest.mark.anyio
USER = {"id": 7, "email": "u@example.test", "authenticatorEnabled": True}


async def test_login_2fa_goes_with_the_pending_cookie_on_the_bound_origin_only() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path.endswith("/api/v2/login"):
            return httpx.Response(
                200, json=USER, headers={"Set-Cookie": "jwt=pending-token; HttpOnly; Path=/"}
            )
        if path.endswith("/api/v2/login-2fa"):
            if "jwt=pending-token" not in request.headers.get("cookie", ""):
                return httpx.Response(404, json={"message": "User not found"})
            return httpx.Response(200, json=USER, headers={"Set-Cookie": "jwt=full-token; HttpOnly; Path=/"})
        return httpx.Response(200, json={**USER, "authenticatorEnabled": True})

    async with MetalCloudClient(
        "http://metalcloud.localhost",
        email="u@example.test",
        password="pw",
        code_provider=CallbackCodeProvider(lambda challenge: "123456"),
        transport=httpx.MockTransport(handler),
    ) as client:
        await client.user.get()
        await client.requestor.request("GET", "http://elsewhere.localhost/steal")
    second = next(r for r in seen if r.url.path.endswith("/login-2fa"))
    assert second.url.host == "metalcloud.localhost"
    assert "jwt=pending-token" in second.headers["cookie"]
    call = next(r for r in seen if r.url.path.endswith("/api/v2/user"))
    assert call.headers["authorization"] == "Bearer full-token"
    elsewhere = next(r for r in seen if r.url.host == "elsewhere.localhost")
    assert "authorization" not in elsewhere.headers and "cookie" not in elsewhere.headers
