"""serve() and the fault kinds over real loopback sockets (uvicorn in a thread)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mfa_common.testing import FakeControls, FaultPlan, ServerHandle, serve

from .conftest import error_body, make_app, socket_client

pytestmark = pytest.mark.timeout(15)

HTTP_IMPLS = ["h11", "httptools"]


@pytest.fixture(scope="module")
def shared_controls() -> FakeControls:
    return FakeControls(error_body=error_body)


@pytest.fixture(scope="module")
def servers(shared_controls: FakeControls) -> Iterator[dict[str, ServerHandle]]:
    app = make_app(shared_controls)
    with serve(app, http="h11") as h11_server, serve(app, http="httptools") as httptools_server:
        yield {"h11": h11_server, "httptools": httptools_server}


@pytest.fixture(params=HTTP_IMPLS)
def server(request: pytest.FixtureRequest, servers: dict[str, ServerHandle]) -> ServerHandle:
    return servers[str(request.param)]


@pytest.fixture(autouse=True)
def _fresh_controls(shared_controls: FakeControls) -> Iterator[None]:
    shared_controls.reset()
    yield
    shared_controls.reset()


@asynccontextmanager
async def client_for(server: ServerHandle, timeout: float = 5.0) -> Any:
    async with socket_client(server.base_url, timeout=timeout) as client:
        yield client


# -- serve() itself --------------------------------------------------------------------------


def test_handle_describes_a_loopback_server(servers: dict[str, ServerHandle]) -> None:
    handle = servers["h11"]
    assert handle.host == "127.0.0.1"
    assert handle.port > 0
    assert handle.base_url == f"http://127.0.0.1:{handle.port}"
    assert handle.url("item") == f"{handle.base_url}/item"
    assert handle.thread.is_alive()
    assert servers["httptools"].port != handle.port


@pytest.mark.anyio
async def test_serve_starts_and_stops(controls: FakeControls) -> None:
    started = time.monotonic()
    with serve(make_app(controls), port=0) as handle:
        async with socket_client(handle.base_url) as client:
            response = await client.get("/item")
        assert response.json() == {"id": "1", "name": "widget"}
    assert time.monotonic() - started < 5.0
    assert not handle.thread.is_alive()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", handle.port), timeout=1):
        pass


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com", "::"])
def test_serve_refuses_non_loopback_hosts(host: str, controls: FakeControls) -> None:
    with pytest.raises(ValueError, match="loopback"), serve(make_app(controls), host=host):
        pytest.fail("must not start")


def test_serve_accepts_localhost_alias(controls: FakeControls) -> None:
    with serve(make_app(controls), host="localhost") as handle:
        assert handle.host == "127.0.0.1"
        with socket.create_connection((handle.host, handle.port), timeout=1):
            pass


def test_serve_reports_a_failed_startup() -> None:
    @asynccontextmanager
    async def broken_lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("startup failed")
        yield  # pragma: no cover

    app = Starlette(lifespan=broken_lifespan)
    with pytest.raises(RuntimeError, match="failed to start"), serve(app, lifespan="on"):
        pytest.fail("must not start")


def test_run_forever_prints_banner_and_serves(tmp_path: Path) -> None:
    script = tmp_path / "fake_main.py"
    script.write_text(
        "from starlette.applications import Starlette\n"
        "from starlette.responses import PlainTextResponse\n"
        "from starlette.routing import Route\n"
        "from mfa_common.testing import run_forever\n"
        "async def hello(request):\n"
        "    return PlainTextResponse('hello')\n"
        "run_forever(Starlette(routes=[Route('/', hello)]), '127.0.0.1', 0, 'Demo fake')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    process = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "Demo fake"
        listening = process.stdout.readline().strip()
        assert listening.startswith("Listening on http://127.0.0.1:")
        url = listening.split()[2]
        deadline = time.monotonic() + 5
        body = None
        while body is None and time.monotonic() < deadline:
            try:
                body = httpx.get(url, timeout=1).text
            except httpx.TransportError:
                time.sleep(0.05)
        assert body == "hello"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


# -- knobs over sockets ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_latency_over_sockets(server: ServerHandle, shared_controls: FakeControls) -> None:
    async with client_for(server) as client:
        await client.get("/item")  # open the connection first
        shared_controls.latency = 0.1
        started = time.monotonic()
        response = await client.post("/write", json={"key": "k"})
        elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert 0.1 <= elapsed < 0.9


@pytest.mark.anyio
async def test_rate_limit_over_sockets(server: ServerHandle, shared_controls: FakeControls) -> None:
    shared_controls.rate_limit(0.5, burst=3)
    async with client_for(server) as client:
        responses = [await client.get("/item") for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[-1].headers["retry-after"] == "2"
    assert responses[-1].json() == {"code": 429, "msg": "Too Many Requests"}


# -- each fault kind over sockets ------------------------------------------------------------


@pytest.mark.anyio
async def test_server_error_over_sockets(server: ServerHandle, shared_controls: FakeControls) -> None:
    shared_controls.fail_next("server_error")
    async with client_for(server) as client:
        response = await client.post("/write", json={"key": "k"})
    assert response.status_code in (500, 503)
    assert response.json() == {
        "code": response.status_code,
        "msg": "Internal Server Error" if response.status_code == 500 else "Service Unavailable",
    }
    assert len(shared_controls.ledger) == 0


@pytest.mark.anyio
async def test_rate_limited_fault_over_sockets(server: ServerHandle, shared_controls: FakeControls) -> None:
    shared_controls.fail_next("rate_limited", path="/write")
    async with client_for(server) as client:
        response = await client.post("/write", json={"key": "k"})
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert len(shared_controls.ledger) == 0


@pytest.mark.anyio
async def test_drop_before_over_sockets(
    server: ServerHandle, shared_controls: FakeControls, caplog: pytest.LogCaptureFixture
) -> None:
    shared_controls.fail_next("drop_before")
    async with client_for(server) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/write", json={"key": "k"})
        again = await client.post("/write", json={"key": "k2"})
    assert again.status_code == 201
    assert shared_controls.ledger.keys() == {"k2"}  # the dropped write was never applied
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]


@pytest.mark.anyio
async def test_drop_after_over_sockets(
    server: ServerHandle, shared_controls: FakeControls, caplog: pytest.LogCaptureFixture
) -> None:
    shared_controls.fail_next("drop_after")
    async with client_for(server) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/write", json={"key": "k", "value": 1})
    assert shared_controls.ledger.count("write", "k") == 1  # applied although the client failed
    assert not [r for r in caplog.records if r.name.startswith("uvicorn")]


@pytest.mark.anyio
async def test_slow_over_sockets_fires_client_timeout(
    server: ServerHandle, shared_controls: FakeControls
) -> None:
    shared_controls.faults = FaultPlan(slow=1.0, slow_seconds=3.0)
    async with client_for(server, timeout=0.15) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/write", json={"key": "k"})
        assert time.monotonic() - started < 2.0
    assert shared_controls.ledger.count("write", "k") == 1


@pytest.mark.anyio
async def test_slow_over_sockets_answers_late(server: ServerHandle, shared_controls: FakeControls) -> None:
    shared_controls.fail_next("slow")
    shared_controls.configure(slow_seconds=0.15)
    async with client_for(server) as client:
        started = time.monotonic()
        response = await client.get("/item")
        elapsed = time.monotonic() - started
    assert response.json() == {"id": "1", "name": "widget"}
    assert 0.15 <= elapsed < 1.5


@pytest.mark.anyio
async def test_malformed_over_sockets(server: ServerHandle, shared_controls: FakeControls) -> None:
    shared_controls.fail_next("malformed")
    async with client_for(server) as client:
        response = await client.get("/item")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


@pytest.mark.anyio
async def test_garbled_after_over_sockets(server: ServerHandle, shared_controls: FakeControls) -> None:
    """Over both HTTP parsers: the write is applied, a complete 2xx comes back, unparseable,
    and the connection stays usable."""
    shared_controls.fail_next("garbled_after")
    async with client_for(server) as client:
        response = await client.post("/write", json={"key": "k"})
        assert response.status_code == 201
        assert int(response.headers["content-length"]) == len(response.content)
        with pytest.raises(ValueError):
            response.json()
        assert (await client.get("/item")).json() == {"id": "1", "name": "widget"}
    assert shared_controls.ledger.count("write", "k") == 1
    assert shared_controls.faults_injected == {"garbled_after": 1}


@pytest.mark.anyio
async def test_counters_over_sockets(server: ServerHandle, shared_controls: FakeControls) -> None:
    shared_controls.fail_next("drop_after", 2)
    async with client_for(server) as client:
        results = []
        for i in range(5):
            try:
                results.append((await client.post("/write", json={"key": str(i)})).status_code)
            except httpx.TransportError:
                results.append(0)
    assert results == [0, 0, 201, 201, 201]
    assert shared_controls.requests_to("POST", "/write") == 5
    assert shared_controls.faults_injected == {"drop_after": 2}
    assert sorted(shared_controls.ledger.keys("write")) == ["0", "1", "2", "3", "4"]
    assert shared_controls.ledger.duplicates() == {}
