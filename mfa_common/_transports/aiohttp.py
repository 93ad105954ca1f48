"""An httpx transport over aiohttp's connection pool (asyncio only).

Errors are mapped so that the SDK's retry policy can tell whether a request may have reached
the server: only a failure to connect (or to get a pooled connection in time) becomes
``ConnectError`` / ``ConnectTimeout`` / ``PoolTimeout``; a connection lost after the request
was written becomes ``RemoteProtocolError`` or ``ReadError``, which the SDK never retries for
non-idempotent writes.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

from .. import _constants as C
from .._httpx import (
    AsyncBaseTransport,
    AsyncByteStream,
    ConnectError,
    ConnectTimeout,
    Limits,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    Request,
    Response,
    UnsupportedProtocol,
    WriteError,
    httpx,
)
from ..errors import ClientClosedError, ResponseTooLargeError

_CHUNK = 64 * 1024


def _header_too_large(exc: BaseException, limit: int) -> ResponseTooLargeError | None:
    """aiohttp's refusal of an over-long header line, as the SDK's size error."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in ("LineTooLong", "BadHttpMessage") and "too long" in str(seen).lower():
            return ResponseTooLargeError(
                f"a response header line exceeds the {limit}-byte limit", limit=limit
            )
        if "Got more than" in str(seen) or "too long" in str(seen).lower():
            return ResponseTooLargeError(
                f"a response header line exceeds the {limit}-byte limit", limit=limit
            )
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def _map_errors(stage: str, header_limit: int = C.MAX_RESPONSE_HEADER_BYTES) -> Iterator[None]:
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise (PoolTimeout if stage == "pool" else ConnectTimeout)(str(exc)) from exc
    except aiohttp.SocketTimeoutError as exc:
        raise ReadTimeout(str(exc)) from exc
    except aiohttp.ClientConnectorError as exc:
        raise ConnectError(str(exc)) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise RemoteProtocolError(str(exc) or "server disconnected") from exc
    except aiohttp.ClientPayloadError as exc:
        raise ReadError(str(exc)) from exc
    except (aiohttp.InvalidUrlClientError, aiohttp.NonHttpUrlClientError) as exc:
        raise UnsupportedProtocol(str(exc)) from exc
    except aiohttp.ClientResponseError as exc:
        too_large = _header_too_large(exc, header_limit)
        if too_large is not None:
            raise too_large from exc
        raise RemoteProtocolError(str(exc)) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:
        raise (WriteError if stage == "send" else ReadError)(str(exc)) from exc
    except asyncio.TimeoutError as exc:
        raise ReadTimeout("timed out") from exc


class _AiohttpStream(AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _map_errors("read"):
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(AsyncBaseTransport):
    """``httpx.AsyncBaseTransport`` backed by one ``aiohttp.ClientSession``."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        verify: bool | str = True,
        max_header_bytes: int = C.MAX_RESPONSE_HEADER_BYTES,
    ) -> None:
        self._limits = limits or Limits()
        self._max_header_bytes = max_header_bytes
        self._closed = False
        self._ssl: ssl.SSLContext | bool
        if verify is False:
            self._ssl = False
        else:
            self._ssl = httpx.create_ssl_context(verify=verify)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            # Never a new session after close: nothing would ever close it.
            raise ClientClosedError("the transport is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry or C.KEEPALIVE_EXPIRY,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                cookie_jar=aiohttp.DummyCookieJar(),
                # One header line may use the whole header budget; the total is checked by
                # the client, the same way for every transport.
                max_line_size=self._max_header_bytes,
                max_field_size=self._max_header_bytes,
            )
        return self._session

    async def handle_async_request(self, request: Request) -> Response:
        session = self._get_session()
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        body: Any
        try:
            body = request.content or None
        except httpx.RequestNotRead:  # pragma: no cover - the SDK always sends bytes
            body = request.stream
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        with _map_errors("send", self._max_header_bytes):
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=timeout,
                compress=None,
                auto_decompress=False,
            )
        return Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_AiohttpStream(response),
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None
