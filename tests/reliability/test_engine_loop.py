"""The attempt loop against servers that misbehave: silence, redirects, broken answers, huge
answers, a close during backoff, a TimeoutError of the caller's own code.

Each server is a real loopback socket (tests/reliability/_raw_server.py). Every wait is bounded
by the SDK's own timeouts; ``anyio.fail_after`` only guards against a hang, it orders nothing.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from metalcloud_async import MetalCloudClient
from mfa_common import errors
from mfa_common.auth import CredentialAuth
from mfa_common.batch import run_batch
from mfa_common.client import BaseClient
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy
from mfa_common.xmfa import XMfaClient, XMfaTokenAuth
from quatrix_async import QuatrixClient

from ._raw_server import Stats, answer_then, raw_server, read_head, silent

pytestmark = pytest.mark.anyio

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
FAST = RetryPolicy(max_retries=2, initial_backoff=0.001, max_backoff=0.002)
# Only a guard against a hang: every expectation below ends by the SDK's own timeouts.
HANG_GUARD = 60


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --- 1: a silent server ends in a typed timeout, login steps included -----------------------


async def test_explicit_quatrix_login_runs_under_the_deadline() -> None:
    with raw_server(silent) as (url, stats):
        client = QuatrixClient(
            url,
            email="a@example.com",
            password="pw",
            totp_secret=SECRET,
            options=ClientOptions(timeout=600, deadline=0.5),
        )
        async with client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.APITimeoutError) as caught:
                await client.login()
    assert "deadline" in str(caught.value)
    assert stats.requests >= 1


async def test_explicit_metalcloud_login_runs_under_the_deadline() -> None:
    with raw_server(silent) as (url, stats):
        client = MetalCloudClient(
            url,
            email="a@example.com",
            password="pw",
            totp_secret=SECRET,
            options=ClientOptions(timeout=600, deadline=0.5),
        )
        async with client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.APITimeoutError):
                await client.session.login()
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.APITimeoutError):
                await client.session.login("a@example.com", "pw")
    assert stats.requests >= 2


def _quatrix(url: str) -> Any:
    return QuatrixClient(
        url,
        email="a@example.com",
        password="pw",
        totp_secret=SECRET,
        options=ClientOptions(timeout=0.3, deadline=None),
    )


def _metalcloud(url: str) -> Any:
    return MetalCloudClient(
        url,
        email="a@example.com",
        password="pw",
        totp_secret=SECRET,
        options=ClientOptions(timeout=0.3, deadline=None),
    )


def _xmfa(url: str) -> Any:
    return XMfaClient(
        url,
        auth=XMfaTokenAuth("alice", "pw", totp_secret=SECRET),
        options=ClientOptions(timeout=0.3, deadline=None),
    )


async def _first_call(client: Any) -> None:
    if isinstance(client, QuatrixClient):
        await client.profile.get()
    elif isinstance(client, MetalCloudClient):
        await client.user.get()
    else:
        await client.requestor.request("GET", "api/users")


@pytest.mark.parametrize("make", [_quatrix, _metalcloud, _xmfa], ids=["quatrix", "metalcloud", "xmfa"])
async def test_first_call_without_deadline_times_out_on_its_login_request(make: Any) -> None:
    """deadline=None: only the per-phase timeouts can end it, so the login steps carry them."""
    with raw_server(silent) as (url, stats):
        async with make(url) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.APITimeoutError) as caught:
                await _first_call(client)
    assert caught.value.request_sent
    assert stats.requests >= 1


# --- 2: a redirect is an error, never a success -----------------------------------------------


def _redirect(conn: socket.socket, stats: Stats) -> None:
    answer_then(
        _head(
            "302 Found", {"Location": "https://elsewhere.example/x?token=tok-secret", "Content-Length": "0"}
        ),
        lambda: iter(()),
        close=False,
    )(conn, stats)


async def test_a_redirect_is_a_typed_error_and_no_batch_item_is_done() -> None:
    with raw_server(_redirect) as (url, stats):
        async with MetalCloudClient(url, api_key="1:key", options=ClientOptions(retry=FAST)) as client:
            with pytest.raises(errors.RedirectError) as caught:
                await client.user.get()
            assert caught.value.location == "https://elsewhere.example/x?token=***"
            assert "tok-secret" not in str(caught.value)

            async def write(item: int) -> None:
                await client.requestor.request("POST", f"api/v2/things/{item}", json={"n": item})

            summary = await run_batch(range(5), write, key=str, concurrency=2)
    assert summary.done == 0 and summary.failed == 5
    assert stats.requests == 6  # nothing followed, nothing retried


# --- 3: a write whose answer could not be read is an unknown outcome -------------------------


def _garbled(conn: socket.socket, stats: Stats) -> None:
    body = b'{"id": 1, "status": "ena'
    answer_then(
        _head("200 OK", {"Content-Type": "application/json", "Content-Length": str(len(body))}),
        lambda: iter([body]),
        close=False,
    )(conn, stats)


def _dropped_mid_body(conn: socket.socket, stats: Stats) -> None:
    answer_then(
        _head("200 OK", {"Content-Type": "application/json", "Content-Length": "1000"}),
        lambda: iter([b'{"id": 1, "st']),
    )(conn, stats)


@pytest.mark.parametrize("behaviour", [_garbled, _dropped_mid_body], ids=["garbled-2xx", "dropped-mid-body"])
async def test_unreadable_answer_to_a_write_is_unknown_and_the_batch_says_so(behaviour: Any) -> None:
    with raw_server(behaviour) as (url, stats):
        async with BaseClient(url, options=ClientOptions(retry=FAST)) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.OutcomeUnknownError) as caught:
                await client.requestor.request("POST", "things", json={"n": 1})
            assert caught.value.request_sent and caught.value.status_code == 200

            async def write(item: int) -> None:
                await client.requestor.request("POST", "things", json={"n": item})

            with anyio.fail_after(HANG_GUARD):
                summary = await run_batch(range(4), write, key=str, concurrency=2)
    assert summary.unknown == 4 and summary.done == 0 and summary.failed == 0
    assert stats.requests == 5  # a write is never resent after it was sent


# --- 4: bounded answers on both transports ------------------------------------------------------


def _endless(conn: socket.socket, stats: Stats) -> None:
    chunk = b"x" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"

    def parts() -> Iterator[bytes]:
        while True:
            yield frame

    answer_then(_head("200 OK", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}), parts)(
        conn, stats
    )


async def test_an_endless_body_ends_in_a_size_error_with_bounded_reading() -> None:
    limit = 1024 * 1024
    with raw_server(_endless) as (url, stats):
        async with BaseClient(url, options=ClientOptions(retry=FAST, max_body_bytes=limit)) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.ResponseTooLargeError) as caught:
                await client.requestor.request("GET", "big")
    assert caught.value.limit == limit
    assert stats.requests == 1  # deterministic: never retried
    # The client stopped reading near the limit (what the socket buffers hold, not gigabytes).
    assert stats.bytes_sent < limit + 32 * 1024 * 1024


async def test_a_declared_oversized_body_is_refused_before_reading() -> None:
    def behaviour(conn: socket.socket, stats: Stats) -> None:
        answer_then(
            _head("200 OK", {"Content-Type": "application/json", "Content-Length": str(50 * 1024 * 1024)}),
            lambda: iter([b"[" + b"0," * 1000]),
        )(conn, stats)

    with raw_server(behaviour) as (url, stats):
        async with BaseClient(url, options=ClientOptions(retry=FAST)) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.ResponseTooLargeError):
                await client.requestor.request("GET", "big")
    assert stats.requests == 1


@pytest.mark.parametrize("size", [100 * 1024, 200 * 1024], ids=["100KB", "200KB"])
async def test_an_oversized_header_is_a_size_error_never_retried(size: int) -> None:
    def behaviour(conn: socket.socket, stats: Stats) -> None:
        answer_then(
            _head("200 OK", {"X-Big": "a" * size, "Content-Type": "application/json", "Content-Length": "2"}),
            lambda: iter([b"{}"]),
        )(conn, stats)

    with raw_server(behaviour) as (url, stats):
        async with BaseClient(url, options=ClientOptions(retry=FAST)) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.ResponseTooLargeError):
                await client.requestor.request("GET", "x")
    assert stats.requests == 1


async def test_many_headers_within_a_line_limit_but_over_the_total_are_refused() -> None:
    headers = {f"X-H{i}": "v" * 1000 for i in range(100)}  # 100 KB in total, 1 KB per line
    headers.update({"Content-Type": "application/json", "Content-Length": "2"})

    def behaviour(conn: socket.socket, stats: Stats) -> None:
        answer_then(_head("200 OK", headers), lambda: iter([b"{}"]))(conn, stats)

    with raw_server(behaviour) as (url, stats):
        async with BaseClient(url, options=ClientOptions(retry=FAST)) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.ResponseTooLargeError):
                await client.requestor.request("GET", "x")
    assert stats.requests == 1


# --- 7: nothing goes out after aclose() -----------------------------------------------------


async def test_a_request_waiting_to_retry_is_not_sent_after_aclose() -> None:
    calls = 0
    first_answered = anyio.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        first_answered.set()
        return httpx.Response(503)

    client = BaseClient(
        "http://127.0.0.1:9", transport=httpx.MockTransport(handler), options=ClientOptions(retry=FAST)
    )
    outcome: list[BaseException] = []

    async def call() -> None:
        try:
            await client.requestor.request("GET", "x")
        except BaseException as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await first_answered.wait()  # the call is now waiting out its backoff
        await client.aclose()
    assert calls == 1
    assert len(outcome) == 1 and isinstance(outcome[0], errors.ClientClosedError)


async def test_the_aiohttp_transport_never_reopens_after_close() -> None:
    pytest.importorskip("aiohttp")
    from mfa_common._transports.aiohttp import AiohttpTransport

    if anyio.get_current_task().name and _library() != "asyncio":
        pytest.skip("aiohttp runs on asyncio only")
    transport = AiohttpTransport()
    transport._get_session()
    await transport.aclose()
    with pytest.raises(errors.ClientClosedError):
        await transport.handle_async_request(httpx.Request("GET", "http://127.0.0.1:9/"))
    assert transport._session is None


def _library() -> str:
    import sniffio

    return sniffio.current_async_library()


# --- 17: a TimeoutError of the caller's own code is not our deadline --------------------------


class _ProviderTimesOut(CredentialAuth[str]):
    async def acquire(self, stale: str | None) -> str:
        raise TimeoutError("the code prompt timed out")

    def apply(self, request: httpx.Request, credential: str) -> None:
        request.headers["Authorization"] = credential


async def test_a_timeout_inside_the_auth_flow_is_not_reported_as_the_deadline() -> None:
    auth = _ProviderTimesOut()
    client = BaseClient(
        "http://127.0.0.1:9",
        auth=auth,
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        options=ClientOptions(deadline=30),
    )
    async with client:
        with pytest.raises(TimeoutError) as caught:
            await client.requestor.request("GET", "x")
    assert not isinstance(caught.value, errors.APITimeoutError)
    assert str(caught.value) == "the code prompt timed out"


async def test_our_own_deadline_is_still_an_api_timeout() -> None:
    with raw_server(silent) as (url, _):
        async with BaseClient(url, options=ClientOptions(timeout=600, deadline=0.3)) as client:
            with anyio.fail_after(HANG_GUARD), pytest.raises(errors.APITimeoutError) as caught:
                await client.requestor.request("GET", "x")
    assert "deadline" in str(caught.value)


# A server that answers well, for the keep-alive and header tests.
def ok_server(conn: socket.socket, stats: Stats) -> None:
    while not stats.stop.is_set():
        if not read_head(conn):
            return
        stats.count_request()
        conn.sendall(_head("200 OK", {"Content-Type": "application/json", "Content-Length": "2"}) + b"{}")


# --- 16: a pooled connection idle as long as a server's keep-alive is never reused ------------


class _PortRecorder:
    """An ASGI app answering ``{}`` that records the client port of every request."""

    def __init__(self) -> None:
        self.ports: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.ports.append(scope["client"][1])
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})


def _advance_pool_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the transport's pool see ``seconds`` more of idle time (its own monotonic clock)."""
    import time as real_time

    if _library() == "asyncio":
        from aiohttp import connector

        monkeypatch.setattr(connector, "monotonic", lambda: real_time.monotonic() + seconds)
    else:
        import types

        from httpcore2._async import http11

        fake = types.SimpleNamespace(monotonic=lambda: real_time.monotonic() + seconds)
        monkeypatch.setattr(http11, "time", fake)  # httpcore2's keep-alive clock


async def test_a_connection_idle_as_long_as_uvicorns_keepalive_is_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvicorn (and Apache) close an idle connection after 5 s. A POST written into such a
    connection fails after it was sent: the pool must have dropped it already."""
    from mfa_common.testing import serve

    app = _PortRecorder()
    with serve(app, lifespan="off") as handle:
        async with BaseClient(handle.base_url) as client:
            await client.requestor.request("GET", "x")
            await client.requestor.request("GET", "x")
            assert len(set(app.ports)) == 1  # pooled: the second call reused the connection
            _advance_pool_clock(monkeypatch, 5.0)
            await client.requestor.request("POST", "x", json={})
    assert len(app.ports) == 3 and app.ports[2] != app.ports[0]


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
async def test_a_chunked_answer_within_the_limit_is_read_whole_and_closed(encoding: str) -> None:
    import gzip

    document = b'{"items": [' + b",".join(b'"%d"' % i for i in range(20_000)) + b"]}"
    payload = gzip.compress(document) if encoding == "gzip" else document
    pieces = [payload[i : i + 7000] for i in range(0, len(payload), 7000)]
    frames = [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces] + [b"0\r\n\r\n"]
    head = _head(
        "200 OK",
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked", "Content-Encoding": encoding},
    )
    with raw_server(answer_then(head, lambda: iter(frames), close=False)) as (url, stats):
        async with BaseClient(
            url, options=ClientOptions(retry=FAST, max_body_bytes=len(document) + 10)
        ) as client:
            with anyio.fail_after(HANG_GUARD):
                first = await client.requestor.request("GET", "a")
                second = await client.requestor.request("GET", "b")
    for response in (first, second):
        assert response.content == document  # decoded when encoded
        assert response.is_closed and response.is_stream_consumed
        assert response.json()["items"][-1] == "19999"
    assert stats.requests == 2 and stats.connections == 1  # the connection went back to the pool
