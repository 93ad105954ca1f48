"""An httpx transport over aiohttp's connection pool (asyncio only).

Errors are mapped so that the SDK's retry policy can tell whether a request may have reached
the server: only a failure to connect (or to get a pooled connection in time) becomes
``ConnectError`` / ``ConnectTimeout`` / ``PoolTimeout``; a connection lost after the request
was written becomes ``RemoteProtocolError`` or ``ReadError``, which the SDK never retries for
non-idempotent writes.

Every phase has its timeout, as on every transport: aiohttp bounds the pool wait, the connect
and each read, but not the writing of a request body (its read timer starts only once the body
is written), so a server that never reads would hold the call forever. The body writer here
(:class:`_TimedRequest`) ends it after the ``write`` timeout with ``WriteTimeout``. The write
timeouts of a transport's requests, and aiohttp's own read timeouts (``sock_read``, moved on
with every piece of data received), share one loop timer (:class:`~mfa_common._alarms.Alarms`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ssl
from typing import Any

import aiohttp
import multidict
import yarl
from aiohttp.client_proto import ResponseHandler

from .. import _constants as C
from .._alarms import Alarm, Alarms
from .._httpx import (
    AsyncByteStream,
    ConnectError,
    ConnectTimeout,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    Request,
    Response,
    UnsupportedProtocol,
    WriteError,
    WriteTimeout,
    httpx,
)
from ..errors import ClientClosedError, ResponseTooLargeError
from . import PooledTransport

_CHUNK = 64 * 1024
# Entries of the per-transport URL and timeout caches.
_CACHE_SIZE = 512
# The headers aiohttp would add on its own (User-Agent, Accept, Accept-Encoding, and a
# Content-Type for a body): the SDK sends exactly the headers of the httpx request.
_SKIPPED_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")


def _header_too_large(exc: BaseException) -> bool:
    """Whether aiohttp refused the response head for its size (a line or field too long)."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "too long" in text.lower() or "Got more than" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _mapped(exc: Exception, stage: str, header_limit: int) -> Exception:
    """The httpx (or SDK) error for an aiohttp failure at ``stage`` ("send" or "read")."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return (PoolTimeout if stage == "pool" else ConnectTimeout)(str(exc))
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return ReadTimeout(str(exc))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectError(str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return RemoteProtocolError(str(exc) or "server disconnected")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ReadError(str(exc))
    if isinstance(exc, (aiohttp.InvalidUrlClientError, aiohttp.NonHttpUrlClientError)):
        return UnsupportedProtocol(str(exc))
    if isinstance(exc, aiohttp.ClientResponseError):
        if _header_too_large(exc):
            return ResponseTooLargeError(
                f"a response header line exceeds the {header_limit}-byte limit", limit=header_limit
            )
        return RemoteProtocolError(str(exc))
    if isinstance(exc, (aiohttp.ClientOSError, aiohttp.ClientConnectionError)):
        return (WriteError if stage == "send" else ReadError)(str(exc))
    if isinstance(exc, asyncio.TimeoutError):
        return ReadTimeout("timed out")
    return exc


class _WriteWatch:
    """The write timeout of one request body, and whether it fired."""

    __slots__ = ("alarms", "seconds", "timed_out")

    def __init__(self, seconds: float, alarms: Alarms) -> None:
        self.seconds = seconds
        self.alarms = alarms
        self.timed_out = False


# Set around ``session.request``: the body-writer task aiohttp starts inside it copies the
# context, so it finds the watch of its own request.
_WRITE_WATCH: contextvars.ContextVar[_WriteWatch | None] = contextvars.ContextVar(
    "mfa_sdk_write_watch", default=None
)


class _TimedRequest(aiohttp.ClientRequest):
    """aiohttp's request whose body writer gives up after the request's write timeout."""

    _skipped = multidict.CIMultiDict[None]((name, None) for name in _SKIPPED_AUTO_HEADERS)

    def update_auto_headers(self, skip_auto_headers: Any) -> None:
        # The session skips every header aiohttp would add (_SKIPPED_AUTO_HEADERS), so there
        # is nothing to add: this spares the per-request sorting and copying of that set.
        self._skip_auto_headers = self._skipped

    async def write_bytes(self, writer: Any, conn: Any, *args: Any, **kwargs: Any) -> None:
        watch = _WRITE_WATCH.get()
        if watch is None:
            await super().write_bytes(writer, conn, *args, **kwargs)
            return

        def expire() -> None:
            # Abort, not close: a close waits for the unsent buffer to drain, which a server
            # that does not read never lets happen. The writer and the reader both end at once.
            watch.timed_out = True
            transport = conn.transport
            if transport is not None:
                transport.abort()

        alarm = watch.alarms.add(watch.seconds, expire)
        try:
            await super().write_bytes(writer, conn, *args, **kwargs)
        finally:
            watch.alarms.remove(alarm)


class _ResponseHandler(ResponseHandler):
    """aiohttp's connection protocol, its read timeout on the transport's alarm timer.

    aiohttp restarts the read timeout (``sock_read``) on every piece of data received, with a
    loop timer cancelled and made anew each time; here one alarm per read phase is moved. It
    rings, as aiohttp's timer does, when no data came for the read timeout while reading."""

    def __init__(self, loop: asyncio.AbstractEventLoop, alarms: Alarms) -> None:
        super().__init__(loop)
        self._alarms = alarms
        self._read_alarm: Alarm | None = None

    def _reschedule_timeout(self) -> None:
        timeout = self._read_timeout
        if not timeout:
            self._drop_timeout()
            return
        alarm = self._read_alarm
        if alarm is None:
            self._read_alarm = self._alarms.add(timeout, self._read_timed_out)
        else:
            self._alarms.move(alarm, timeout)

    def _drop_timeout(self) -> None:
        alarm = self._read_alarm
        if alarm is not None:
            self._read_alarm = None
            self._alarms.remove(alarm)

    def _read_timed_out(self) -> None:
        self._read_alarm = None
        self._on_read_timeout()


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, its connections on :class:`_ResponseHandler`."""

    def __init__(self, *, alarms: Alarms, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(_ResponseHandler, loop=self._loop, alarms=alarms)  # type: ignore[assignment]


class _AiohttpStream(AsyncByteStream):
    """The body of one answer, chunk by chunk (its own iterator: no async generator to set up
    and finalise per answer)."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    def __aiter__(self) -> _AiohttpStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._response.content.read(_CHUNK)
        except Exception as exc:
            mapped = _mapped(exc, "read", C.MAX_RESPONSE_HEADER_BYTES)
            if mapped is exc:
                raise
            raise mapped from exc
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(PooledTransport):
    """``httpx.AsyncBaseTransport`` backed by one ``aiohttp.ClientSession``."""

    def _setup(self) -> None:
        self._closed = False
        self._ssl: ssl.SSLContext | bool
        if self._verify is False:
            self._ssl = False
        else:
            self._ssl = httpx.create_ssl_context(verify=self._verify)
        self._session: aiohttp.ClientSession | None = None
        self._alarms: Alarms | None = None
        # Parsed request URLs (by the httpx URL object, held so that its id stays its own, and
        # by text) and timeout objects, reused across requests (bounded).
        self._url_objects: dict[int, tuple[httpx.URL, yarl.URL]] = {}
        self._urls: dict[str, yarl.URL] = {}
        self._timeouts: dict[tuple[Any, Any, Any], aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            # Never a new session after close: nothing would ever close it.
            raise ClientClosedError("the transport is closed")
        if self._session is None:
            connector = _Connector(
                alarms=self._alarms_of_loop(),
                limit=self._limits.max_connections or 0,
                limit_per_host=0,
                keepalive_timeout=self._limits.keepalive_expiry or C.KEEPALIVE_EXPIRY,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=_SKIPPED_AUTO_HEADERS,
                cookie_jar=aiohttp.DummyCookieJar(),
                # One header line may use the whole header budget; the total is checked by
                # the client, the same way for every transport.
                max_line_size=self._max_header_bytes,
                max_field_size=self._max_header_bytes,
                request_class=_TimedRequest,
            )
        return self._session

    def _alarms_of_loop(self) -> Alarms:
        """The timer of this transport's write and read timeouts (its session's event loop)."""
        alarms = self._alarms
        if alarms is None:
            alarms = self._alarms = Alarms(asyncio.get_running_loop())
        return alarms

    def _yarl_url(self, url: httpx.URL) -> yarl.URL:
        """``url`` for aiohttp. A URL object the SDK reuses (its requestor keeps one per path) is
        converted once; a URL with a query (it may hold a one-time token) is never kept."""
        entry = self._url_objects.get(id(url))
        if entry is not None and entry[0] is url:
            return entry[1]
        text = str(url)
        parsed = self._urls.get(text)
        if parsed is None:
            parsed = yarl.URL(text, encoded=True)  # httpx already percent-encoded it
            if url.query:
                return parsed
            if len(self._urls) >= _CACHE_SIZE:
                self._urls.clear()
            self._urls[text] = parsed
        if len(self._url_objects) >= _CACHE_SIZE:
            self._url_objects.clear()
        self._url_objects[id(url)] = (url, parsed)
        return parsed

    async def handle_async_request(self, request: Request) -> Response:
        session = self._session or self._get_session()
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        body: Any
        try:
            body = request.content or None
        except httpx.RequestNotRead:  # pragma: no cover - the SDK always sends bytes
            body = request.stream
        url = self._yarl_url(request.url)
        # aiohttp writes the Host header of the URL itself: the same one is not handed over.
        host = url.host_port_subcomponent
        headers: list[tuple[str, str]] = []
        for raw_name, raw_value in request.headers.raw:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            if value != host or name.lower() != "host":
                headers.append((name, value))
        key = (timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=None, connect=key[0], sock_connect=key[1], sock_read=key[2])
            if len(self._timeouts) >= _CACHE_SIZE:
                self._timeouts.clear()
            self._timeouts[key] = timeout
        write_timeout = timeouts.get("write")
        watch = token = None
        if body and write_timeout is not None:
            watch = _WriteWatch(write_timeout, self._alarms_of_loop())
            token = _WRITE_WATCH.set(watch)
        try:
            response = await session.request(
                request.method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=timeout,
            )
        except Exception as exc:
            if watch is not None and watch.timed_out:
                raise WriteTimeout(f"the request body was not written within {watch.seconds} s") from exc
            mapped = _mapped(exc, "send", self._max_header_bytes)
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            if token is not None:
                _WRITE_WATCH.reset(token)
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
