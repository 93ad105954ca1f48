"""A tiny Starlette app for the overhead benchmark, served by uvicorn in its own process.

``GET /profile`` returns a ~300-byte JSON document; ``POST /items`` echoes a small JSON body
with an id. Both require ``Authorization: Bearer <token>`` (the token from ``BENCH_TOKEN``),
so every client pays for setting the header and the server for checking it.
"""

from __future__ import annotations

import itertools
import json
import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = os.environ.get("BENCH_TOKEN", "bench-token-0123456789abcdef")
_EXPECTED = f"Bearer {TOKEN}"

PROFILE = {
    "id": 4711,
    "username": "ada.lovelace",
    "email": "ada.lovelace@example.com",
    "display_name": "Ada Lovelace",
    "role": "admin",
    "active": True,
    "mfa_enabled": True,
    "created_at": "2024-05-17T09:12:44Z",
    "last_login": "2026-11-20T18:03:11Z",
    "quota_bytes": 107374182400,
    "used_bytes": 5368709120,
    "language": "en",
    "tags": ["ops", "billing"],
}

_ids = itertools.count(1)
_UNAUTHORIZED = Response(b'{"message":"unauthorized"}', status_code=401, media_type="application/json")


def _authorized(request: Request) -> bool:
    return request.headers.get("authorization") == _EXPECTED


async def profile(request: Request) -> Response:
    """The caller's profile (serialised on every request, as a real server would)."""
    if not _authorized(request):
        return _UNAUTHORIZED
    return JSONResponse(PROFILE)


async def create_item(request: Request) -> Response:
    """Echo the posted item with a new id."""
    if not _authorized(request):
        return _UNAUTHORIZED
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"message": "bad json"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"message": "expected an object"}, status_code=400)
    return JSONResponse({"id": next(_ids), **body}, status_code=201)


app = Starlette(routes=[Route("/profile", profile), Route("/items", create_item, methods=["POST"])])
