"""One overhead run: one client, one method, one concurrency, in its own process.

``python -m benchmarks.overhead_client --client sdk --conc 16 --method get --n 3000 --url URL``
prints one JSON line: requests, wall, req/s, client CPU µs per request (process CPU time over
requests), p50/p99 latency, server CPU µs per request, errors. Every loop is bounded by a
request count and by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from benchmarks._common import emit, percentile
from benchmarks.server_app import TOKEN

Call = Callable[[], Awaitable[Any]]

ASYNCIO_CLIENTS = ("sdk", "raw_transport", "httpx", "aiohttp", "httpx2", "httpx2_aiohttp")
TRIO_CLIENTS = ("sdk_trio", "raw_transport_trio")
CLIENTS = ASYNCIO_CLIENTS + TRIO_CLIENTS


def _headers() -> dict[str, str]:
    from mfa_common import _constants as C

    return {"Authorization": f"Bearer {TOKEN}", "User-Agent": C.USER_AGENT, "Accept": "application/json"}


@contextlib.asynccontextmanager
async def make_client(name: str, base_url: str, method: str) -> AsyncIterator[Call]:
    """An async call doing one GET /profile or POST /items through client ``name``."""
    from benchmarks.sdk_client import NEW_ITEM, NEW_ITEM_JSON

    if name in ("sdk", "sdk_trio"):
        from benchmarks.sdk_client import BenchClient

        async with BenchClient(base_url, TOKEN) as sdk:
            if method == "get":
                yield sdk.get_profile
            else:
                yield lambda: sdk.create_item(NEW_ITEM)
        return

    if name == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as session:
            headers = _headers()
            url = base_url + ("/profile" if method == "get" else "/items")

            async def aio_get() -> Any:
                async with session.get(url, headers=headers) as r:
                    body = await r.read()
                    if r.status >= 400:
                        raise RuntimeError(f"status {r.status}")
                    return json.loads(body)

            async def aio_post() -> Any:
                async with session.post(url, json=NEW_ITEM_JSON, headers=headers) as r:
                    body = await r.read()
                    if r.status >= 400:
                        raise RuntimeError(f"status {r.status}")
                    return json.loads(body)

            yield aio_get if method == "get" else aio_post
        return

    import httpx

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    client: Any
    if name == "raw_transport":
        from mfa_common._transports.aiohttp import AiohttpTransport

        client = httpx.AsyncClient(base_url=base_url, transport=AiohttpTransport(limits=limits))
    elif name == "raw_transport_trio":
        from mfa_common._transports.httpcore2 import Httpcore2Transport

        client = httpx.AsyncClient(base_url=base_url, transport=Httpcore2Transport(limits=limits))
    elif name == "httpx":
        client = httpx.AsyncClient(base_url=base_url)  # httpx's defaults, as users write it
    elif name == "httpx2":
        import httpx2

        client = httpx2.AsyncClient(base_url=base_url, limits=httpx2.Limits(max_connections=100))
    elif name == "httpx2_aiohttp":
        import httpx2
        from httpx_aiohttp.httpx2 import AiohttpTransport as Httpx2AiohttpTransport

        client = httpx2.AsyncClient(
            base_url=base_url, transport=Httpx2AiohttpTransport(limits=httpx2.Limits(max_connections=100))
        )
    else:
        raise SystemExit(f"unknown client {name!r}")
    client.headers.update(_headers())
    async with client:

        async def hx_get() -> Any:
            r = await client.get("/profile")
            if r.status_code >= 400:
                raise RuntimeError(f"status {r.status_code}")
            return r.json()

        async def hx_post() -> Any:
            r = await client.post("/items", json=NEW_ITEM_JSON)
            if r.status_code >= 400:
                raise RuntimeError(f"status {r.status_code}")
            return r.json()

        yield hx_get if method == "get" else hx_post


async def _drive(call: Call, conc: int, total: int, stop_at: float, latencies: list[float] | None) -> int:
    """Run ``total`` calls over ``conc`` worker tasks (or until ``stop_at``); return errors."""
    issued = 0
    errors = 0

    async def worker() -> None:
        nonlocal issued, errors
        perf = time.perf_counter
        while issued < total and perf() < stop_at:
            issued += 1
            t0 = perf()
            try:
                await call()
            except Exception:
                errors += 1
                if errors > 50:
                    raise
                continue
            if latencies is not None:
                latencies.append(perf() - t0)

    async with anyio.create_task_group() as tg:
        for _ in range(conc):
            tg.start_soon(worker)
    return errors


def _server_cpu(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        import psutil  # type: ignore[import-untyped]

        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    except Exception:
        return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up (untimed), then time ``args.n`` calls; return the figures."""
    with anyio.fail_after(args.max_seconds + 60):
        async with make_client(args.client, args.url, args.method) as call:
            await _drive(call, args.conc, args.warmup, time.perf_counter() + 30, None)
            latencies: list[float] = []
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
            srv0 = _server_cpu(args.server_pid)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            errors = await _drive(call, args.conc, args.n, time.perf_counter() + args.max_seconds, latencies)
            if profiler is not None:
                profiler.disable()
            cpu1, wall1 = time.process_time(), time.perf_counter()
            srv1 = _server_cpu(args.server_pid)
            if profiler is not None:
                profiler.dump_stats(args.profile)
    done = len(latencies)
    latencies.sort()
    wall = wall1 - wall0
    result: dict[str, Any] = {
        "client": args.client,
        "method": args.method,
        "conc": args.conc,
        "requests": done,
        "errors": errors,
        "wall_s": round(wall, 4),
        "rps": round(done / wall, 1) if wall > 0 else None,
        "cpu_us_per_req": round((cpu1 - cpu0) / done * 1e6, 1) if done else None,
        "client_cpu_util": round((cpu1 - cpu0) / wall, 3) if wall > 0 else None,
        "p50_ms": round(percentile(latencies, 0.50) * 1e3, 3) if done else None,
        "p99_ms": round(percentile(latencies, 0.99) * 1e3, 3) if done else None,
        "server_cpu_us_per_req": (
            round((srv1 - srv0) / done * 1e6, 1) if srv0 is not None and srv1 is not None and done else None
        ),
        "profiled": bool(args.profile),
    }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", required=True, choices=CLIENTS)
    parser.add_argument("--method", choices=("get", "post"), default="get")
    parser.add_argument("--conc", type=int, default=16)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--url", required=True)
    parser.add_argument("--server-pid", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--profile", default=None, help="write cProfile stats of the timed phase here")
    args = parser.parse_args(argv)
    backend = "trio" if args.client in TRIO_CLIENTS else "asyncio"
    emit(anyio.run(run, args, backend=backend))


if __name__ == "__main__":
    main()
