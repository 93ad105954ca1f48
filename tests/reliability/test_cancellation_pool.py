"""Cancelling many in-flight requests must never poison the client's connection pool.

httpx 0.28.1's own pool (httpcore 1.0.9) loses every connection slot when requests with their
own deadlines are cancelled under pool contention (encode/httpcore#1093): all later requests
fail with PoolTimeout. The SDK's default transports (aiohttp on asyncio, httpcore2 on Trio) must
survive it. Each variant: 10 connections, a slow endpoint, 1,000 requests cancelled, then 100
fresh requests that must all succeed promptly.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mfa_common.client import BaseClient
from mfa_common.errors import APIError
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from mfa_common.testing import serve


async def slow(request: Request) -> JSONResponse:
    await anyio.sleep(0.5)
    return JSONResponse({"slow": True})


async def fast(request: Request) -> JSONResponse:
    return JSONResponse({"fast": True})


APP = Starlette(routes=[Route("/slow", slow), Route("/fast", fast)])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(APP) as handle:
        yield handle.base_url


def make_client(base_url: str) -> BaseClient:
    return BaseClient(
        base_url,
        options=ClientOptions(
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
            timeout=httpx.Timeout(5.0, pool=5.0),
            retry=RetryPolicy(max_retries=0),
        ),
    )


async def check_fresh_requests(client: BaseClient) -> None:
    ok = 0

    async def one() -> None:
        nonlocal ok
        response = await client.requestor.request("GET", "fast")
        ok += response.json()["fast"] is True

    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(one)
    assert ok == 100


@pytest.mark.anyio
async def test_per_request_deadlines_under_contention(base_url: str) -> None:
    """50 workers share 10 connections; each of 1,000 requests has its own 50 ms deadline."""
    async with make_client(base_url) as client:
        remaining = iter(range(1000))
        cancelled = 0

        async def worker() -> None:
            nonlocal cancelled
            for _ in remaining:
                try:
                    with anyio.fail_after(0.05):
                        await client.requestor.request("GET", "slow")
                except TimeoutError:
                    cancelled += 1
                except APIError:
                    cancelled += 1

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(worker)
        assert cancelled == 1000
        await check_fresh_requests(client)


@pytest.mark.anyio
async def test_whole_task_group_cancelled(base_url: str) -> None:
    async with make_client(base_url) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(1000):
                tg.start_soon(client.requestor.request, "GET", "slow")
            await anyio.sleep(0.1)
            tg.cancel_scope.cancel()
        await check_fresh_requests(client)


@pytest.mark.anyio
async def test_move_on_after_around_a_batch(base_url: str) -> None:
    async with make_client(base_url) as client:
        for _ in range(3):
            with anyio.move_on_after(0.1):
                async with anyio.create_task_group() as tg:
                    for _ in range(300):
                        tg.start_soon(client.requestor.request, "GET", "slow")
        await check_fresh_requests(client)
