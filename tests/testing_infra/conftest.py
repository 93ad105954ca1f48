"""A tiny Starlette app wrapped in the fault-injection middleware, shared by these tests."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mfa_common.testing import FakeControls, FaultInjectionMiddleware


def error_body(status: int, message: str) -> dict[str, Any]:
    """A Quatrix-style error body, to check the fake's own body is used."""
    return {"code": status, "msg": message}


def make_app(controls: FakeControls) -> Starlette:
    """GET /item returns JSON; POST /write records ``key`` in the ledger; GET /_control is exempt."""

    async def item(request: Request) -> JSONResponse:
        return JSONResponse({"id": "1", "name": "widget"})

    async def write(request: Request) -> JSONResponse:
        payload = await request.json()
        controls.ledger.record("write", str(payload["key"]), value=payload.get("value"))
        return JSONResponse({"ok": True, "key": payload["key"]}, status_code=201)

    async def control(request: Request) -> JSONResponse:
        return JSONResponse({"requests": controls.total_requests})

    app = Starlette(
        routes=[
            Route("/item", item),
            Route("/write", write, methods=["POST"]),
            Route("/_control", control),
        ],
        middleware=[
            Middleware(
                FaultInjectionMiddleware,
                controls=controls,
                error_body=error_body,
                exempt_paths=["/_control"],
            )
        ],
    )
    app.state.controls = controls
    return app


def socket_client(base_url: str, *, timeout: float = 5.0) -> httpx.AsyncClient:
    """A real-socket client with TCP_NODELAY, so that timings are not skewed by delayed ACKs."""
    transport = httpx.AsyncHTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)], retries=0
    )
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)


def inprocess_client(app: Starlette) -> httpx.AsyncClient:
    """An in-process client; ASGITransport does not enforce timeouts."""
    return httpx.AsyncClient(base_url="http://fake.test", transport=httpx.ASGITransport(app))


@pytest.fixture
def controls() -> FakeControls:
    return FakeControls(error_body=error_body)


@pytest.fixture
def app(controls: FakeControls) -> Starlette:
    return make_app(controls)
