"""The requestor: the one place that builds requests and the one that sends them.

Every request of a client goes through its :class:`Requestor`: the operation groups' calls,
the auth backends' login steps and logouts, the manual login steps. It owns

* **building** (:meth:`Requestor.build`): the base URL, the default headers (``User-Agent``,
  ``Accept``, the caller's ``headers``), the per-phase timeouts and the per-call options;
* **sending** (:meth:`Requestor.send`): the attempt loop: the closed state checked before every
  attempt, the auth flow, bounded answers, retries decided by the
  :class:`~mfa_common.retry.RetryPolicy` (never a sleep past the deadline), unknown outcomes for
  writes whose answer could not be read, typed errors;
* **the deadline** (:meth:`Requestor.request`, :meth:`Requestor.within_deadline`): one total
  deadline per call, login steps included; a write it cuts off after sending is an
  :class:`~mfa_common.errors.OutcomeUnknownTimeoutError`;
* **the transport**, created with the first request (so it fits the running event loop) and
  shared with every requestor made by :meth:`Requestor.with_defaults`.

A client owns the lifecycle and holds one requestor; auth backends and operation groups are
handed it. A backend used without an SDK client makes its own, the same way.
"""

from __future__ import annotations

import contextlib
import contextvars
import json as _json
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import sniffio

from . import _constants as C
from . import tracing as _tracing
from ._httpx import (
    URL,
    AsyncBaseTransport,
    AsyncByteStream,
    Auth,
    Headers,
    Request,
    Response,
    Timeout,
    TimeoutException,
    TransportError,
    httpx,
)
from ._logging import (
    debug_enabled,
    log_debug,
    mask_templated_segments,
    protect_third_party_loggers,
    redact_url,
)
from ._transports import default_transport
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    InsecureTransportError,
    InvalidInputError,
    OutcomeUnknownError,
    OutcomeUnknownTimeoutError,
    RedirectError,
    ResponseTooLargeError,
)
from .options import ClientOptions, RequestOptions
from .retry import RetryPolicy, request_not_sent
from .wire import (
    PATH_TEMPLATE_EXTENSION,
    build_status_error,
    default_error_mapper,
    describe,
    json_body_ok,
    json_or_none,
)

if TYPE_CHECKING:
    import asyncio

    from opentelemetry.trace import Tracer

    from ._alarms import Alarms

__all__ = [
    "ErrorMapper",
    "Requestor",
    "base_url_of",
    "check_transport_security",
    "is_loopback_host",
]

T = TypeVar("T")

ErrorMapper = Callable[[Response], APIStatusError]

_NATIVE_ASYNCIO_TIMEOUT = sys.version_info >= (3, 11)
# Methods that change nothing on the server: an unreadable answer to one is just a failed read.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Response extension: a success whose JSON body could not be decoded (set by _exchange).
_BROKEN_JSON = "mfa_sdk_broken_json"
# Joined request URLs kept per requestor (paths without secrets only).
_URL_CACHE_SIZE = 512

# The connection's states. While CLOSING only the close's own requests (a logout) are sent.
_OPEN, _CLOSING, _CLOSED = "open", "closing", "closed"
# The connection whose close the current task is running: its logout may still be sent.
_CLOSING_BY: contextvars.ContextVar[_Connection | None] = contextvars.ContextVar(
    "mfa_sdk_closing_by", default=None
)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    import ipaddress

    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport_security(url: URL | str, *, allow_insecure_http: bool) -> None:
    """Refuse plain http to a remote host when credentials will be sent."""
    url = URL(url) if isinstance(url, str) else url
    if url.scheme == "http" and not is_loopback_host(url.host) and not allow_insecure_http:
        raise InsecureTransportError(
            f"refusing to send credentials over plain http to {url.host!r}; use https, "
            "or pass allow_insecure_http=True if the network is trusted"
        )


def base_url_of(base_url: str | URL) -> URL:
    """The base URL with one trailing slash. InvalidInputError for anything but an http(s) URL
    with a host, and for a URL holding credentials (``user:password@``): they would show in
    every repr, message and log line, so they are refused, never shown (pass them as the
    client's credential keywords instead)."""
    text = str(base_url).strip()
    shown = _without_userinfo(text)
    try:
        url = URL(text.rstrip("/") + "/")
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidInputError(f"base_url {shown!r} is not a valid URL") from None if "@" in text else exc
    if url.userinfo:
        raise InvalidInputError(
            f"base_url {shown!r} holds credentials (user:password@): remove them and pass the "
            "credentials as the client's keywords (api_key=, email=/password=, ...)"
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInputError(
            f"base_url {shown!r} is not an http(s) URL with a host (e.g. https://api.example.com)"
        )
    return url


def _without_userinfo(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "***" if "@" in text else text
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}://{authority}{slash}{path}"


def _header_bytes(text: str | bytes) -> bytes:
    """A header name or value as httpx encodes it (ASCII; TypeError for anything else)."""
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        return text.encode("ascii")
    raise TypeError(f"header names and values must be str or bytes, not {type(text).__name__}")


async def _sleep(seconds: float) -> None:
    """Wait before a retry (anyio loaded by the first retry, not by an import of the SDK)."""
    import anyio

    await anyio.sleep(seconds)


class _AnswerLost(Exception):
    """Internal: the response head arrived, then reading its body failed."""

    def __init__(self, cause: TransportError | ResponseTooLargeError, status: int) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause
        self.status = status


class _Call:
    """What one call knows about itself: when its deadline ends (monotonic seconds, None
    without one) and whether its request may have reached the server."""

    __slots__ = ("ends_at", "maybe_sent")

    def __init__(self, ends_at: float | None) -> None:
        self.ends_at = ends_at
        self.maybe_sent = False

    def allows(self, delay: float) -> bool:
        """Whether a wait of ``delay`` seconds still ends before the deadline."""
        return self.ends_at is None or time.monotonic() + delay < self.ends_at


class _Connection:
    """The transport and the lifecycle state, shared by a client's requestors."""

    __slots__ = ("_alarms", "given", "limits", "max_header_bytes", "state", "transport", "verify")

    def __init__(self, given: AsyncBaseTransport | None, options: ClientOptions) -> None:
        self._alarms: Alarms | None = None
        self.given = given
        self.limits = options.limits
        self.verify = options.verify
        self.max_header_bytes = options.max_header_bytes
        self.transport: AsyncBaseTransport | None = None
        self.state = _OPEN

    def open_transport(self) -> AsyncBaseTransport:
        """The transport, created on first use; ClientClosedError once closed."""
        if self.state is not _OPEN and _CLOSING_BY.get() is not self:
            raise ClientClosedError("the client is closed")
        transport = self.transport
        if transport is None:
            transport = self.given or default_transport(
                limits=self.limits, verify=self.verify, max_header_bytes=self.max_header_bytes
            )
            self.transport = transport
        return transport

    def alarms_for(self, loop: asyncio.AbstractEventLoop) -> Alarms:
        """The call deadlines' shared timer on ``loop`` (a new one on another loop)."""
        alarms = self._alarms
        if alarms is None or alarms.loop is not loop:
            from ._alarms import Alarms

            alarms = self._alarms = Alarms(loop)
        return alarms


class Requestor:
    """Builds and sends every request of one client; see the module docstring.

    ``auth`` signs the calls sent with ``authenticated=True``; ``map_error`` types error
    answers; ``api_name`` names the API in log lines and spans."""

    def __init__(
        self,
        base_url: str | URL,
        *,
        options: ClientOptions | None = None,
        transport: AsyncBaseTransport | None = None,
        auth: Auth | None = None,
        error_mapper: ErrorMapper | None = None,
        api_name: str = "http",
    ) -> None:
        """A client makes its requestor; so does an auth backend used without an SDK client.

        Args:
            base_url: The API's base URL (an http(s) URL with a host, no credentials in it).
            options: The connection's tunables (default: ``ClientOptions()``).
            transport: An httpx transport to send through (default: the fastest well-behaved
                one for the running event loop, made with the first request).
            auth: Signs the calls sent with ``authenticated=True``.
            error_mapper: Types error answers (default: the generic status mapping).
            api_name: Names the API in log lines and spans.

        Raises:
            InvalidInputError: A base URL that is not an http(s) URL with a host, or that holds
                credentials; a default header no header may carry.
            InsecureTransportError: Credentials (``auth``) over plain http to a host that is not
                the loopback, without ``allow_insecure_http``.
        """
        options = options or ClientOptions()
        self.base_url = base_url_of(base_url)
        if auth is not None:
            check_transport_security(self.base_url, allow_insecure_http=options.allow_insecure_http)
        self.options = options
        self.auth = auth
        self.api_name = api_name
        self.map_error: ErrorMapper = error_mapper or default_error_mapper
        self._connection = _Connection(transport, options)
        self._defaults: RequestOptions | None = None
        self._timeout_ext = options.timeout.as_dict()
        # The default headers as (name, lower-case name, value) bytes, Host first as httpx
        # orders it; merged per request without building an intermediate Headers (see build).
        defaults = Headers({"Host": self.base_url.netloc.decode("ascii")})
        defaults.update({"User-Agent": C.USER_AGENT, "Accept": "application/json"})
        try:
            defaults.update(options.headers)
        except UnicodeError as exc:
            raise InvalidInputError("a default header holds characters no header may carry") from exc
        self._default_items = [(name, name.lower(), value) for name, value in defaults.raw]
        # The same, as the Headers of a request that adds none of its own (Request copies it).
        self._default_headers = Headers(defaults.raw, encoding="ascii")
        self._base_netloc = self.base_url.netloc
        self._base_raw_path = self.base_url.raw_path
        self._urls: dict[str, URL] = {}
        protect_third_party_loggers()

    def with_defaults(self, defaults: RequestOptions) -> Requestor:
        """A requestor sharing this one's connection, auth and lifecycle whose calls take
        ``defaults`` under their own per-call options."""
        twin = object.__new__(Requestor)
        twin.__dict__.update(self.__dict__)
        twin._defaults = defaults.over(self._defaults)
        return twin

    @property
    def retry_policy(self) -> RetryPolicy:
        return self.options.retry

    @property
    def defaults(self) -> RequestOptions | None:
        """The per-call defaults of this requestor (set by :meth:`with_defaults`)."""
        return self._defaults

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once closing has begun: no new call is accepted."""
        return self._connection.state is not _OPEN

    def check_open(self) -> None:
        """ClientClosedError once closing has begun (the close's own logout excepted)."""
        connection = self._connection
        if connection.state is not _OPEN and _CLOSING_BY.get() is not connection:
            raise ClientClosedError("the client is closed")

    @contextlib.contextmanager
    def releasing(self) -> Iterator[None]:
        """Within this block the current task may still send while the client closes: the
        logout of a session (one that a login in flight obtained after closing began included),
        so that no session outlives the close. Nothing else is sent once closing began."""
        token = _CLOSING_BY.set(self._connection)
        try:
            yield
        finally:
            _CLOSING_BY.reset(token)

    async def close(self, end_login: Callable[[], Awaitable[None]] | None = None) -> None:
        """Refuse new calls, then run ``end_login`` (a logout: its requests still go out), then
        close the transport. Calls already running end with the transport; a second close does
        nothing."""
        connection = self._connection
        if connection.state is not _OPEN:
            return
        connection.state = _CLOSING
        token = _CLOSING_BY.set(connection)
        try:
            if end_login is not None:
                await end_login()
        finally:
            _CLOSING_BY.reset(token)
            connection.state = _CLOSED
            transport, connection.transport = connection.transport, None
            if transport is not None:
                await transport.aclose()

    # -- building ------------------------------------------------------------------------------

    def url(self, path: str, *, cache: bool = True) -> URL:
        """``path`` joined onto the base URL the way httpx joins it (appended, not resolved)."""
        url = self._urls.get(path) if cache else None
        if url is None:
            given = URL(path)
            if given.is_relative_url:
                url = self.base_url.copy_with(raw_path=self._base_raw_path + given.raw_path.lstrip(b"/"))
            else:
                url = given
            if cache:
                if len(self._urls) >= _URL_CACHE_SIZE:
                    self._urls.clear()
                self._urls[path] = url
        return url

    def build(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        options: RequestOptions | None = None,
        path_template: str | None = None,
    ) -> Request:
        """A ready-to-send ``Request``: what ``httpx.AsyncClient.build_request`` makes, from a
        pre-parsed base URL and pre-encoded default headers.

        Headers: the defaults, then the body's ``Content-Length`` / ``Content-Type``, then
        ``headers``, then ``options.headers``; a later one replaces an earlier one of the same
        name (in any case), and ``Host`` keeps its place in front. ``path_template`` stands for
        a path holding a secret (a reset token) in logs and error messages."""
        method = method.upper()
        url = self.url(path, cache=path_template is None)
        if params:
            url = url.copy_merge_params(params)
        own: list[tuple[bytes, bytes]] = []
        if json is not None:
            try:
                body = _json.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            except ValueError as exc:
                raise InvalidInputError(f"the request body cannot be sent as JSON: {exc}") from None
            own.append((b"Content-Length", b"%d" % len(body)))
            own.append((b"Content-Type", b"application/json"))
        else:
            body = b""
            if method in _BODY_METHODS:
                own.append((b"Content-Length", b"0"))
        timeout: dict[str, Any] | None = None
        if options is not None:
            if options.headers:
                headers = {**(headers or {}), **options.headers}
            if options.timeout is not None:
                timeout = Timeout(options.timeout).as_dict()
        if headers:
            try:
                given = [(_header_bytes(name), _header_bytes(value)) for name, value in headers.items()]
            except UnicodeError as exc:
                raise InvalidInputError("a header value holds characters no header may carry") from exc
            names = {name.lower() for name, _ in given}
            own = [item for item in own if item[0].lower() not in names]
            own.extend(given)
        items: list[tuple[bytes, bytes]] | Headers
        if not own and "://" not in path:
            items = self._default_headers
        else:
            names = {name.lower() for name, _ in own}
            items = [(name, value) for name, lower, value in self._default_items if lower not in names]
            # An absolute URL to another host: its own Host header, in the same place.
            if "://" in path and b"host" not in names:
                netloc = url.netloc
                if netloc != self._base_netloc:
                    items = [(name, netloc if name.lower() == b"host" else value) for name, value in items]
            items.extend(own)
        extensions: dict[str, Any] = {"timeout": timeout or self._timeout_ext}
        if path_template is not None:
            extensions[PATH_TEMPLATE_EXTENSION] = path_template
            mask_templated_segments(url.raw_path.decode("ascii"), path_template)
        request = Request(method, url, headers=items, stream=httpx.ByteStream(body), extensions=extensions)
        # The requestor's own URL object, not Request's copy of it: the one object per path lets
        # the auth flow and the transport recognise a URL they have seen before.
        request.url = url
        # What Request.read() stores, without its typing.Iterable check of the stream (a
        # measurable share of building a request).
        request._content = body
        return request

    # -- sending -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authenticated: bool = True,
        options: RequestOptions | None = None,
        path_template: str | None = None,
        raise_for_status: bool = True,
    ) -> Response:
        """Build and send one call, with retries, under the call's deadline; return the
        response or raise.

        The request is built as :meth:`build` builds it and sent through the one attempt loop
        (see the module docstring): retries are the
        :class:`~mfa_common.retry.RetryPolicy`'s decision and none sleeps past the deadline.

        Args:
            method: The HTTP method (any case; sent upper-case).
            path: The path, appended to the base URL (not resolved against it), or an absolute
                URL.
            json: The body, sent as compact JSON with ``Content-Type: application/json``
                (None: no body).
            params: Query parameters, merged into the URL.
            headers: Headers of this call, over the client's defaults and the body's
                ``Content-Length`` / ``Content-Type`` (a header of the same name, in any case,
                is replaced); ``options.headers`` go over these.
            idempotent: Overrides the method's default for retry decisions (a POST that is safe
                to repeat may pass True; None: the retry policy's default for ``method``).
            authenticated: Sign the call with the client's auth backend (False: send it
                without credentials).
            options: Per-call overrides (timeout, deadline, retries, headers), taken over the
                requestor's defaults (:meth:`with_defaults`): a
                :class:`~mfa_common.options.RequestOptions`.
            path_template: Stands for a path holding a secret (a reset token) in logs, spans and
                error messages.
            raise_for_status: With False an error status is returned, not raised, and not
                retried (the caller reads it: a code-bearing step that must not be resent, an
                answer with its own meaning).

        Returns:
            The answer, its body read (within the size limits): a 2xx, or with
            ``raise_for_status=False`` an error status too. A read's 2xx whose JSON body is
            broken is returned as it is (parsing it raises ResponseDecodeError).

        Raises:
            ClientClosedError: The client is closed (or closing).
            InvalidInputError: A body that cannot be sent as JSON, or a header no header may
                carry.
            APIStatusError: An error status (4xx, 5xx) once retries are spent, typed by the
                requestor's error mapper (unless ``raise_for_status=False``).
            RedirectError: A 3xx: redirects are never followed.
            APITimeoutError: The call's deadline ended, or a phase timed out, before an answer
                (a read, or a write that was not sent).
            OutcomeUnknownTimeoutError: The same for a write that may have been sent: it may
                have been applied, check before repeating it.
            OutcomeUnknownError: A write was sent but its answer could not be read (the
                connection dropped, the answer was too large, or a 2xx body was not valid JSON).
            APIConnectionError: The connection failed (``request_sent`` says whether the
                request may have left).
            ResponseTooLargeError: An answer to a read above the header or body size limit.
        """
        self.check_open()
        if self._defaults is not None:
            options = (options or RequestOptions()).over(self._defaults)
        request = self.build(
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            options=options,
            path_template=path_template,
        )
        deadline = self.options.deadline
        max_retries: int | None = None
        if options is not None:
            if options.deadline is not None:
                deadline = options.deadline
            max_retries = options.max_retries
        call = _Call(None if deadline is None else time.monotonic() + deadline)
        attempts = self._attempts(
            request,
            self.auth if authenticated else None,
            call,
            idempotent=self.retry_policy.is_idempotent(method) if idempotent is None else idempotent,
            max_retries=max_retries,
            retry_status=raise_for_status,
            raise_for_status=raise_for_status,
        )
        if deadline is None:
            return await attempts
        return await self._under_deadline(attempts, deadline, request, call)

    async def send(
        self,
        request: Request,
        *,
        authenticated: bool = False,
        max_retries: int | None = None,
        raise_for_status: bool = False,
    ) -> Response:
        """Send a request made by :meth:`build` (a login step, a logout) through the same
        attempt loop as every call, under the deadline of the call it runs in (or none).

        Unauthenticated by default; any status is returned, not raised, so a login machine can
        read its challenges (207, 401 + ``X-MFA-Token``); ``max_retries=0`` for a step carrying
        a one-time code, which only the login driver repeats (with a fresh code). Raises only
        the SDK's typed errors."""
        self.check_open()
        return await self._attempts(
            request,
            self.auth if authenticated else None,
            _Call(None),
            idempotent=self.retry_policy.is_idempotent(request.method),
            max_retries=max_retries,
            retry_status=True,
            raise_for_status=raise_for_status,
        )

    async def within_deadline(
        self, func: Callable[[], Awaitable[T]], *, options: RequestOptions | None = None, what: str
    ) -> T:
        """Run ``func()`` (an explicit login, a manual login step) under the call deadline, or
        ``options.deadline``; its expiry raises APITimeoutError naming ``what``."""
        self.check_open()
        deadline = self.options.deadline
        if options is not None and options.deadline is not None:
            deadline = options.deadline
        elif self._defaults is not None and self._defaults.deadline is not None:
            deadline = self._defaults.deadline
        if deadline is None:
            return await func()
        return await self._under_deadline(func(), deadline, what, None)

    async def _under_deadline(
        self, work: Awaitable[T], deadline: float, what: Request | str, call: _Call | None
    ) -> T:
        """``await work`` within ``deadline`` seconds. Only this deadline's own expiry becomes
        the deadline error; a TimeoutError raised inside (a code provider's own) passes."""
        if _NATIVE_ASYNCIO_TIMEOUT and sniffio.current_async_library() == "asyncio":
            # asyncio.timeout's semantics (the task cancelled at the deadline, that cancellation
            # told apart from any other), on the connection's shared alarm timer instead of one
            # loop timer per call. asyncio is imported here, not at the top: it is loaded already
            # when it runs the call, and a Trio application (or a plain ``import``) does not pay
            # for it.
            import asyncio

            task = asyncio.current_task()
            assert task is not None
            alarms = self._connection.alarms_for(asyncio.get_running_loop())
            cancelling = task.cancelling()  # type: ignore[attr-defined,unused-ignore]
            alarm = alarms.add(deadline, task.cancel)
            try:
                result = await work
            except asyncio.CancelledError as exc:
                if alarm.rung and task.uncancel() <= cancelling:  # type: ignore[attr-defined,unused-ignore]
                    raise self._deadline_error(what, deadline, call) from exc
                raise
            except BaseException:
                if alarm.rung:
                    task.uncancel()  # type: ignore[attr-defined,unused-ignore]
                raise
            finally:
                alarms.remove(alarm)
            if alarm.rung:
                task.uncancel()  # type: ignore[attr-defined,unused-ignore]
            return result
        import anyio  # Trio: loaded by the first call, not by an import of the SDK

        with anyio.move_on_after(deadline) as cancel_scope:
            return await work
        if cancel_scope.cancelled_caught:
            raise self._deadline_error(what, deadline, call)
        raise AssertionError("unreachable")  # pragma: no cover

    def _deadline_error(self, what: Request | str, deadline: float, call: _Call | None) -> APITimeoutError:
        if not isinstance(what, Request):
            return APITimeoutError(f"{what}: not finished within the {deadline} s deadline")
        method, url = describe(what)
        if call is not None and call.maybe_sent and what.method not in _SAFE_METHODS:
            return OutcomeUnknownTimeoutError(
                f"{method} {url}: no answer within the {deadline} s deadline after the request was "
                "sent; the write may have been applied: check before repeating it",
                method=method,
                url=url,
            )
        return APITimeoutError(
            f"{method} {url}: no answer within the {deadline} s deadline", method=method, url=url
        )

    async def _attempts(
        self,
        request: Request,
        auth: Auth | None,
        call: _Call,
        *,
        idempotent: bool,
        max_retries: int | None,
        retry_status: bool,
        raise_for_status: bool,
    ) -> Response:
        """The one attempt loop: send, classify the answer, retry or return or raise. Every
        retry is the policy's decision, and none sleeps past the deadline."""
        policy = self.options.retry
        write = request.method not in _SAFE_METHODS
        connection = self._connection
        attempt = 0
        while True:
            if connection.state is not _OPEN and _CLOSING_BY.get() is not connection:
                raise ClientClosedError("the client was closed before this request was sent")
            debug = debug_enabled()
            started = time.monotonic() if debug else 0.0
            tracer = _tracing.ACTIVE
            try:
                if tracer is None:
                    response = await self._send(request, auth, call)
                else:
                    response = await self._traced_send(tracer, request, auth, call, attempt + 1)
            except _AnswerLost as lost:
                exc = lost.cause
                delay = policy.delay_after_error(
                    exc, attempt=attempt, idempotent=idempotent, max_retries=max_retries
                )
                if delay is not None and call.allows(delay):
                    attempt += 1
                    await _sleep(delay)
                    continue
                if write and (isinstance(exc, TransportError) or 200 <= lost.status < 300):
                    why = (
                        "its body is too large"
                        if isinstance(exc, ResponseTooLargeError)
                        else type(exc).__name__
                    )
                    raise self._unknown_outcome(request, lost.status, why) from exc
                if isinstance(exc, ResponseTooLargeError):
                    raise self._too_large(exc, request) from exc
                raise self._connection_error(exc, request, write) from exc
            except ResponseTooLargeError as exc:
                # The head was too large to read: the request went out and was answered.
                if write:
                    raise self._unknown_outcome(
                        request, exc.status_code, f"its head is too large: {exc.message}"
                    ) from exc
                raise self._too_large(exc, request) from exc
            except TransportError as exc:
                delay = policy.delay_after_error(
                    exc, attempt=attempt, idempotent=idempotent, max_retries=max_retries
                )
                if delay is not None and call.allows(delay):
                    attempt += 1
                    if debug:
                        log_debug(
                            "retry %d after %s on %s %s", attempt, type(exc).__name__, *describe(request)
                        )
                    await _sleep(delay)
                    continue
                raise self._connection_error(exc, request, write) from exc
            status = response.status_code
            if debug:
                self._log_answer(request, status, started, attempt + 1)
            if 200 <= status < 300:
                if _BROKEN_JSON not in response.extensions:
                    return response
                delay = policy.delay_after_broken_body(
                    attempt=attempt, idempotent=idempotent, max_retries=max_retries
                )
                if delay is not None and call.allows(delay):
                    attempt += 1
                    await _sleep(delay)
                    continue
                if write:
                    raise self._unknown_outcome(request, status, "its body is not valid JSON")
                return response  # a read: the caller's parse raises ResponseDecodeError
            if 300 <= status < 400:
                raise self._redirect_error(response)
            if status < 400:
                return response
            if retry_status:
                delay = policy.delay_after_status(
                    response, attempt=attempt, idempotent=idempotent, max_retries=max_retries
                )
                if delay is not None and call.allows(delay):
                    attempt += 1
                    await _sleep(delay)
                    continue
            if not raise_for_status:
                return response
            raise self.map_error(response)

    def _log_answer(self, request: Request, status: int, started: float, attempt: int) -> None:
        elapsed = (time.monotonic() - started) * 1000
        step = request.extensions.get(_tracing.LOGIN_STEP_EXTENSION)
        if step is None:
            log_debug("%s %s -> %d in %.1f ms (attempt %d)", *describe(request), status, elapsed, attempt)
            return
        log_debug(
            "%s login step %s: %s %s -> %d in %.1f ms (attempt %d)",
            self.api_name,
            step,
            *describe(request),
            status,
            elapsed,
            attempt,
        )

    async def _traced_send(
        self, tracer: Tracer, request: Request, auth: Auth | None, call: _Call, attempt: int
    ) -> Response:
        template = request.extensions.get(PATH_TEMPLATE_EXTENSION)
        return await _tracing.traced_exchange(
            tracer,
            lambda: self._send(request, auth, call),
            request,
            template=template if isinstance(template, str) else None,
            base_path=self.base_url.path,
            api=self.api_name,
            attempt=attempt,
        )

    async def _send(self, request: Request, auth: Auth | None, call: _Call) -> Response:
        """One exchange, body read, through the auth flow when there is one.

        The transport is called directly: ``AsyncClient.send`` adds redirect handling, a
        cookie jar, event hooks and an INFO log line that this path does not use (it never
        follows redirects, and credentials travel only as the auth backend sets them)."""
        if auth is None:
            return await self._exchange(request, call)
        flow = auth.async_auth_flow(request)
        ended = False
        try:
            request = await flow.__anext__()
            while True:
                response = await self._exchange(request, call)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    ended = True  # a flow that ran to its end is closed already
                    return response
        finally:
            if not ended:
                await flow.aclose()

    async def _exchange(self, request: Request, call: _Call) -> Response:
        """Send ``request`` and read its answer within the size limits."""
        transport = self._connection.open_transport()
        request.extensions.setdefault("timeout", self._timeout_ext)
        sent_before = call.maybe_sent
        call.maybe_sent = True
        try:
            response = await transport.handle_async_request(request)
        except TransportError as exc:
            if request_not_sent(exc):
                call.maybe_sent = sent_before
            raise
        response.request = request
        try:
            encoded, json_type = self._check_head(response)
            await self._read_body(response, encoded)
        except (TransportError, ResponseTooLargeError) as exc:
            await response.aclose()
            raise _AnswerLost(exc, response.status_code) from exc
        except BaseException:
            await response.aclose()
            raise
        # A success's JSON body is decoded once, here (parse_json_body reuses it); a broken one
        # is marked for the attempt loop, which retries a read or reports a write's outcome.
        if json_type and 200 <= response.status_code < 300 and not json_body_ok(response):
            response.extensions[_BROKEN_JSON] = True
        return response

    def _check_head(self, response: Response) -> tuple[bool, bool]:
        """Refuse a head above the header limit or announcing a body above the body limit;
        return whether the body is content-encoded and whether it is JSON (a Content-Type
        naming json). One pass over the raw header lines."""
        limit = self.options.max_header_bytes
        size = 0
        length: bytes | None = None
        encoding: bytes | None = None
        json_type = False
        for name, value in response.headers.raw:
            size += len(name) + len(value) + 4
            lower = name.lower()
            # Repeated fields read as one comma-joined value, as Headers.get gives them.
            if lower == b"content-length":
                length = value if length is None else length + b", " + value
            elif lower == b"content-encoding":
                encoding = value if encoding is None else encoding + b", " + value
            elif lower == b"content-type" and b"json" in value:
                json_type = True
        if size > limit:
            raise ResponseTooLargeError(
                f"response headers of {size} bytes exceed the {limit}-byte limit",
                limit=limit,
                status_code=response.status_code,
            )
        max_body = self.options.max_body_bytes
        if length and length.isdigit() and int(length) > max_body:
            raise ResponseTooLargeError(
                f"response body of {length.decode('ascii')} bytes exceeds the {max_body}-byte limit",
                limit=max_body,
                status_code=response.status_code,
            )
        return encoding is not None and encoding.lower() not in (b"", b"identity"), json_type

    async def _read_body(self, response: Response, encoded: bool) -> None:
        """Stream the body in, counting: past the limit it is refused, never buffered whole."""
        limit = self.options.max_body_bytes
        if hasattr(response, "_content"):  # a transport that hands over a body already in memory
            if len(response.content) > limit:
                raise _body_too_large(limit, response.status_code)
            return
        stream = response.stream
        chunk_iterator: AsyncIterable[bytes]
        own: AsyncByteStream | None = None
        if encoded or not isinstance(stream, AsyncByteStream):
            chunk_iterator = response.aiter_bytes() if encoded else response.aiter_raw()
        else:
            # An uncompressed body comes in the transport's own chunks, without httpx's
            # re-chunking layers (they cost about as much per small answer as reading it); the
            # response is closed below, as aiter_raw() would close it.
            response.is_stream_consumed = True
            chunk_iterator = own = stream
        chunks: list[bytes] = []
        size = 0
        async for chunk in chunk_iterator:
            size += len(chunk)
            if size > limit:
                raise _body_too_large(limit, response.status_code)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what Response.aread() stores
        if own is None:
            await response.aclose()
        elif not response.is_closed:  # what Response.aclose() does, without its context manager
            response.is_closed = True
            try:
                await own.aclose()
            except httpx.RequestError as exc:
                exc.request = response.request
                raise

    # -- typed errors --------------------------------------------------------------------------

    def _redirect_error(self, response: Response) -> RedirectError:
        location = response.headers.get("location")
        shown = None
        if location:
            try:
                shown = redact_url(response.request.url.join(location))
            except (httpx.InvalidURL, ValueError, TypeError):
                shown = "(an invalid URL)"
        error = build_status_error(
            response,
            server_message=f"redirect to {shown} not followed" if shown else "redirect not followed",
            body=json_or_none(response.content),
            cls=RedirectError,
            location=shown,
        )
        assert isinstance(error, RedirectError)
        return error

    def _unknown_outcome(self, request: Request, status: int | None, why: str) -> OutcomeUnknownError:
        method, url = describe(request)
        answer = f"its answer ({status})" if status is not None else "its answer"
        return OutcomeUnknownError(
            f"{method} {url}: the request was sent but {answer} could not be read ({why}); "
            "the write may have been applied: check before repeating it",
            status_code=status,
            method=method,
            url=url,
        )

    def _too_large(self, exc: ResponseTooLargeError, request: Request) -> ResponseTooLargeError:
        method, url = describe(request)
        return ResponseTooLargeError(
            f"{method} {url}: {exc.message}",
            limit=exc.limit,
            status_code=exc.status_code,
            method=method,
            url=url,
        )

    def _connection_error(self, exc: TransportError, request: Request, write: bool) -> APIConnectionError:
        """The typed error of a failed send. A write that may have reached the server is an
        unknown outcome (it may have been applied), like an answer lost mid-body:
        ``OutcomeUnknownTimeoutError`` for a timeout, else ``OutcomeUnknownError``."""
        method, url = describe(request)
        sent = not request_not_sent(exc)
        timeout = isinstance(exc, TimeoutException)
        if sent and write:
            unknown = OutcomeUnknownTimeoutError if timeout else OutcomeUnknownError
            return unknown(
                f"{method} {url}: {type(exc).__name__} after the request was sent; "
                "the write may have been applied: check before repeating it",
                method=method,
                url=url,
            )
        cls = APITimeoutError if timeout else APIConnectionError
        return cls(
            f"{method} {url}: {type(exc).__name__}" + ("" if sent else " (the request was not sent)"),
            request_sent=sent,
            method=method,
            url=url,
        )


def _body_too_large(limit: int, status_code: int) -> ResponseTooLargeError:
    """The error of a body that grew past ``limit`` bytes while it was read."""
    return ResponseTooLargeError(
        f"response body exceeds the {limit}-byte limit", limit=limit, status_code=status_code
    )
