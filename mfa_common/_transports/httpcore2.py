"""An httpx transport over httpcore2's connection pool (asyncio and Trio).

httpcore2 is the maintained continuation of httpcore; unlike httpcore 1.0.9 its pool drops a
connection that no request owns, so per-request cancellation under contention cannot leave the
pool full of orphaned ``CONNECTING`` slots (encode/httpcore#1093).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore2

from .. import _constants as C
from .._httpx import AsyncByteStream, Request, Response, httpx
from ..errors import ResponseTooLargeError
from . import PooledTransport

_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore2.PoolTimeout, httpx.PoolTimeout),
    (httpcore2.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore2.ReadTimeout, httpx.ReadTimeout),
    (httpcore2.WriteTimeout, httpx.WriteTimeout),
    (httpcore2.TimeoutException, httpx.TimeoutException),
    (httpcore2.ConnectError, httpx.ConnectError),
    (httpcore2.ReadError, httpx.ReadError),
    (httpcore2.WriteError, httpx.WriteError),
    (httpcore2.NetworkError, httpx.NetworkError),
    (httpcore2.ProxyError, httpx.ProxyError),
    (httpcore2.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore2.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore2.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore2.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _map_errors(header_limit: int = C.MAX_RESPONSE_HEADER_BYTES) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        if isinstance(exc, httpcore2.RemoteProtocolError) and "buffer too long" in str(exc).lower():
            # h11 refuses a response head larger than its buffer: deterministic, not retried.
            raise ResponseTooLargeError(
                f"response headers exceed the {header_limit}-byte limit", limit=header_limit
            ) from exc
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _Stream(AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_errors():
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            with _map_errors():
                await self._stream.aclose()


class Httpcore2Transport(PooledTransport):
    """``httpx.AsyncBaseTransport`` backed by ``httpcore2.AsyncConnectionPool``."""

    def _setup(self) -> None:
        limits = self._limits
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=self._verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            # Small request bodies must not wait for a delayed ACK (aiohttp sets this too).
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    async def handle_async_request(self, request: Request) -> Response:
        req = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _map_errors(self._max_header_bytes):
            resp = await self._pool.handle_async_request(req)
        return Response(
            status_code=resp.status,
            headers=resp.headers,
            stream=_Stream(resp.stream),
            extensions=resp.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
