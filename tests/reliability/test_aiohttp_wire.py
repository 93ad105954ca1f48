"""What the aiohttp transport puts on the wire: exactly the SDK's headers, every time.

aiohttp adds headers of its own (``Accept: */*``, ``Accept-Encoding: gzip, deflate``, its
``User-Agent``, ``Content-Type: application/octet-stream`` for a body) unless told not to; the
transport turns every one of them off (a compressed answer would reach the size limits
compressed). Requests go to a raw socket server that records each request head as it arrived.
"""

from __future__ import annotations

import socket

import anyio
import pytest

from mfa_common.auth import BearerTokenAuth
from mfa_common.client import BaseClient
from mfa_common.options import ClientOptions
from mfa_common.retry import RetryPolicy

from ._raw_server import Stats, raw_server, read_head

GUARD = 20.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiohttp is the default transport on asyncio only


def _recording(heads: list[bytes]):  # type: ignore[no-untyped-def]
    def behaviour(conn: socket.socket, stats: Stats) -> None:
        while not stats.stop.is_set():
            head = read_head(conn)
            if not head:
                return
            heads.append(head)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    return behaviour


def _header_names(head: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode().lower() for line in head.split(b"\r\n")[1:]]


@pytest.mark.anyio
async def test_the_transport_sends_the_sdk_headers_and_none_of_aiohttp_s_own() -> None:
    heads: list[bytes] = []
    with raw_server(_recording(heads)) as (url, _):
        client = BaseClient(
            url,
            auth=BearerTokenAuth("token-1"),
            options=ClientOptions(headers={"X-Tenant": "blue"}),
        )
        async with client:
            with anyio.fail_after(GUARD):
                for _ in range(3):  # the cached URL and header state must not change a thing
                    await client.requestor.request("GET", "things", params={"page": "2"})
                    await client.requestor.request("GET", "things")
                    await client.requestor.request("POST", "things", json={"a": 1})
    assert len(heads) == 9
    base = ["host", "user-agent", "accept", "x-tenant", "authorization"]
    for head in heads:
        names = _header_names(head)
        if head.startswith(b"POST "):
            assert sorted(names) == sorted([*base, "content-length", "content-type"]), head
            assert b"\r\nContent-Type: application/json" in head
        else:
            assert sorted(names) == sorted(base), head
        assert b"\r\nAccept: application/json" in head
        assert b"Authorization: Bearer token-1" in head
    request_lines = [head.split(b"\r\n", 1)[0] for head in heads[:3]]
    assert request_lines == [
        b"GET /things?page=2 HTTP/1.1",
        b"GET /things HTTP/1.1",
        b"POST /things HTTP/1.1",
    ]


# --- the read timeout: moved on by every piece of data, ending a read that waits too long -------

TRICKLE = 40  # body bytes, one every TRICKLE_GAP seconds: twice the read timeout in total
TRICKLE_GAP = 0.05


def _trickle(conn: socket.socket, stats: Stats) -> None:
    if not read_head(conn):
        return
    stats.count_request()
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {TRICKLE}\r\n\r\n".encode())
    for _ in range(TRICKLE):
        if stats.stop.wait(TRICKLE_GAP):
            return
        conn.sendall(b"x")


def _stall_mid_body(conn: socket.socket, stats: Stats) -> None:
    if not read_head(conn):
        return
    stats.count_request()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhalf")
    stats.stop.wait(60)


@pytest.mark.anyio
async def test_a_body_that_keeps_coming_is_read_past_the_read_timeout() -> None:
    with raw_server(_trickle) as (url, _):
        options = ClientOptions(timeout=1.0, deadline=None)
        async with BaseClient(url, options=options) as client:
            with anyio.fail_after(GUARD):
                response = await client.requestor.request("GET", "slow")
    assert response.content == b"x" * TRICKLE


@pytest.mark.anyio
async def test_a_body_that_stops_coming_ends_in_the_read_timeout() -> None:
    from mfa_common import errors

    with raw_server(_stall_mid_body) as (url, _):
        options = ClientOptions(timeout=0.3, deadline=None, retry=RetryPolicy(max_retries=0))
        async with BaseClient(url, options=options) as client:
            with anyio.fail_after(GUARD), pytest.raises(errors.APITimeoutError) as caught:
                await client.requestor.request("GET", "stalls")
    assert "ReadTimeout" in str(caught.value)
