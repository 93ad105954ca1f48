"""The HTTP machinery both API clients stand on.

:class:`BaseClient` owns one transport (created when the first request is sent, so it fits
the running event loop) and sends every request, login steps included, through **one attempt
loop** (:meth:`BaseClient._attempts`) that gives each of them:

* an explicit lifecycle (``async with`` / ``aclose()``); the closed state is checked before
  every attempt, so a request waiting out a backoff is never sent after ``aclose()``;
* a timeout on every phase, and one total deadline per call (explicit logins too, through
  :meth:`BaseClient.within_deadline`);
* retries by :class:`~mfa_common.retry.RetryPolicy` (never a blind retry of a write), with the
  API's own rules as hooks of the policy;
* bounded answers: headers and body above the limits of :mod:`mfa_common._constants` end in
  :class:`~mfa_common.errors.ResponseTooLargeError` while the body streams in;
* only a 2xx as success: a 3xx is never followed and raises
  :class:`~mfa_common.errors.RedirectError`; a write whose answer could not be read raises
  :class:`~mfa_common.errors.OutcomeUnknownError`;
* errors mapped onto :mod:`mfa_common.errors` by an API-specific mapper; redacted DEBUG logs;
* refusal to send credentials over plain ``http://`` to a non-loopback host.

The pure helpers (JSON reading, error building, path segments) live in :mod:`mfa_common.wire`
and are re-exported here.
"""

from __future__ import annotations

import ipaddress
import json as _json
import sys
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import attrs
import sniffio

from . import _constants as C
from . import tracing as _tracing
from ._httpx import (
    URL,
    AsyncBaseTransport,
    AsyncByteStream,
    Auth,
    Headers,
    Limits,
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
from ._transports import TransportFactory
from .auth._single_flight import CredentialAuth
from .auth.static import StaticHeaderAuth
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
from .retry import RetryPolicy, request_not_sent
from .wire import (
    JSON_ERRORS,
    JSON_EXTENSION,
    PATH_TEMPLATE_EXTENSION,
    build_status_error,
    decode_error,
    default_error_mapper,
    describe,
    json_body_ok,
    json_or_none,
    parse_json_body,
    path_segment,
    request_id_of,
    structure,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    if sys.version_info >= (3, 11):
        from typing import Self
    else:  # pragma: no cover
        from typing_extensions import Self

__all__ = [
    "JSON_ERRORS",
    "JSON_EXTENSION",
    "PATH_TEMPLATE_EXTENSION",
    "BaseClient",
    "ErrorMapper",
    "RequestOptions",
    "build_status_error",
    "check_transport_security",
    "decode_error",
    "default_error_mapper",
    "describe",
    "is_loopback_host",
    "json_or_none",
    "parse_json_body",
    "path_segment",
    "request_id_of",
    "structure",
]

T = TypeVar("T")

ErrorMapper = Callable[[Response], APIStatusError]

_NATIVE_ASYNCIO_TIMEOUT = sys.version_info >= (3, 11)
# Methods that change nothing on the server: an unreadable answer to one is just a failed read.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Joined request URLs kept per client (paths without secrets only).
_URL_CACHE_SIZE = 512


@attrs.frozen
class RequestOptions:
    """Per-call overrides: ``timeout`` (seconds per phase), ``deadline`` (seconds for the whole
    call including retries), ``max_retries``, extra ``headers``."""

    timeout: float | None = None
    deadline: float | None = None
    max_retries: int | None = None
    headers: Mapping[str, str] | None = None


class _AnswerLost(Exception):
    """Internal: the response head arrived, then reading its body failed."""

    def __init__(self, cause: TransportError | ResponseTooLargeError, status: int) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause
        self.status = status


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


def _body_too_large(limit: int, status_code: int) -> ResponseTooLargeError:
    """The error of a body that grew past ``limit`` bytes while it was read."""
    return ResponseTooLargeError(
        f"response body exceeds the {limit}-byte limit", limit=limit, status_code=status_code
    )


def _base_url_of(base_url: str | URL) -> URL:
    """The base URL with one trailing slash, or InvalidInputError for anything not http(s)."""
    text = str(base_url).strip()
    try:
        url = URL(text.rstrip("/") + "/")
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidInputError(f"base_url {text!r} is not a valid URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidInputError(
            f"base_url {text!r} is not an http(s) URL with a host (e.g. https://api.example.com)"
        )
    return url


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
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


class BaseClient:
    """Shared lifecycle, the attempt loop, deadline and error mapping; see the module docstring.

    ``max_body_bytes`` / ``max_header_bytes`` bound what one answer may hold (defaults in
    :mod:`mfa_common._constants`).
    """

    #: Which API this client speaks, in login-step log lines and spans (``mfa.api``).
    api_name: ClassVar[str] = "http"
    #: The constructor keywords that make the client log in, for :meth:`login`'s error.
    login_keywords: ClassVar[str] = "auth= (a CredentialAuth)"

    def __init__(
        self,
        base_url: str | URL,
        *,
        auth: Auth | None = None,
        transport: AsyncBaseTransport | None = None,
        timeout: float | Timeout | None = None,
        deadline: float | None = C.TOTAL_DEADLINE,
        retry: RetryPolicy | None = None,
        max_retries: int | None = None,
        limits: Limits | None = None,
        headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        verify: bool | str = True,
        error_mapper: ErrorMapper | None = None,
        max_body_bytes: int = C.MAX_RESPONSE_BODY_BYTES,
        max_header_bytes: int = C.MAX_RESPONSE_HEADER_BYTES,
    ) -> None:
        self.base_url = _base_url_of(base_url)
        if auth is not None:
            check_transport_security(self.base_url, allow_insecure_http=allow_insecure_http)
        self.allow_insecure_http = allow_insecure_http
        self._auth = auth
        # Static one-header credentials whose flow is the plain one can skip httpx's auth flow.
        self._static_auth = (
            isinstance(auth, StaticHeaderAuth)
            and type(auth).async_auth_flow is StaticHeaderAuth.async_auth_flow
        )
        self._transport = transport
        if timeout is None:
            timeout = Timeout(
                connect=C.CONNECT_TIMEOUT,
                read=C.READ_TIMEOUT,
                write=C.WRITE_TIMEOUT,
                pool=C.POOL_TIMEOUT,
            )
        self._timeout = timeout if isinstance(timeout, Timeout) else Timeout(timeout)
        self._timeout_ext = self._timeout.as_dict()
        self._deadline = deadline
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        self.retry_policy = policy
        self._limits = limits or Limits(
            max_connections=C.MAX_CONNECTIONS,
            max_keepalive_connections=C.MAX_KEEPALIVE_CONNECTIONS,
            keepalive_expiry=C.KEEPALIVE_EXPIRY,
        )
        self._verify = verify
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        # Sent with every request; Host first, as httpx orders it.
        self._base_headers = Headers({"Host": self.base_url.netloc.decode("ascii")})
        self._base_headers.update({"User-Agent": C.USER_AGENT, "Accept": "application/json"})
        self._base_headers.update(headers or {})
        # The defaults as (name, lower-case name, value) bytes, merged per request without
        # building an intermediate Headers (see _build).
        self._base_items = [(name, name.lower(), value) for name, value in self._base_headers.raw]
        self._base_netloc = self.base_url.netloc
        self._base_raw_path = self.base_url.raw_path
        self._urls: dict[str, URL] = {}
        self._error_mapper = error_mapper or default_error_mapper
        self._active_transport: AsyncBaseTransport | None = None
        self._closed = False
        protect_third_party_loggers()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._ensure_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def login(self) -> None:
        """Log in now with the client's own credentials (otherwise the first call does it):
        surfaces MFA, CAPTCHA, lockout and enrolment errors early. Runs under the client's
        deadline, like any call. :class:`~mfa_common.errors.InvalidInputError` when the client
        has no login (an API key, a static token, or no credentials)."""
        auth = self._auth
        if not isinstance(auth, CredentialAuth):
            raise InvalidInputError(f"login() needs a client built with {self.login_keywords}")
        await self.within_deadline(auth.get_credential, what=f"{self.api_name} login")

    async def aclose(self) -> None:
        """End the login's session (best effort, shielded and bounded: a logout where the API
        has one), then close the connection pool. A second call does nothing."""
        if self._closed:
            return
        try:
            if isinstance(self._auth, CredentialAuth):
                await self._auth.aclose()
        finally:
            self._closed = True
            transport, self._active_transport = self._active_transport, None
            if transport is not None:
                await transport.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        # The kind of credential, never its value: the backend's class name only.
        auth = type(self._auth).__name__ if self._auth is not None else None
        return f"{type(self).__name__}(base_url={str(self.base_url)!r}, auth={auth}, closed={self._closed})"

    def _ensure_open(self) -> AsyncBaseTransport:
        """The transport (created on first use); ClientClosedError after ``aclose()``."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        transport = self._active_transport
        if transport is None:
            transport = (
                self._transport
                or TransportFactory(
                    limits=self._limits, verify=self._verify, max_header_bytes=self.max_header_bytes
                )()
            )
            self._active_transport = transport
        return transport

    @property
    def auth(self) -> Auth | None:
        return self._auth

    # -- building requests -----------------------------------------------------------------

    def _url(self, path: str, cache: bool) -> URL:
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

    def _build(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: dict[str, Any] | None = None,
        extensions: dict[str, Any] | None = None,
        cache_url: bool = True,
    ) -> Request:
        """A ready-to-send ``Request``: what ``httpx.AsyncClient.build_request`` makes, built
        from a pre-parsed base URL and pre-encoded default headers.

        Headers: the client's defaults, then the body's ``Content-Length`` / ``Content-Type``,
        then ``headers``; a later one replaces an earlier one of the same name (in any case),
        as ``Headers.update`` would, and ``Host`` keeps its place in front."""
        method = method.upper()
        url = self._url(path, cache_url)
        if params:
            url = url.copy_merge_params(params)
        own: list[tuple[bytes, bytes]] = []
        if json is not None:
            body = _json.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            own.append((b"Content-Length", b"%d" % len(body)))
            own.append((b"Content-Type", b"application/json"))
        else:
            body = b""
            if method in _BODY_METHODS:
                own.append((b"Content-Length", b"0"))
        if headers:
            try:
                given = [(_header_bytes(name), _header_bytes(value)) for name, value in headers.items()]
            except UnicodeError as exc:
                raise InvalidInputError("a header value holds characters no header may carry") from exc
            names = {name.lower() for name, _ in given}
            own = [item for item in own if item[0].lower() not in names]
            own.extend(given)
        names = {name.lower() for name, _ in own}
        items: list[tuple[bytes, bytes]] = [
            (name, value) for name, lower, value in self._base_items if lower not in names
        ]
        # An absolute URL to another host: its own Host header, in the same place.
        if "://" in path and b"host" not in names:
            netloc = url.netloc
            if netloc != self._base_netloc:
                items = [(name, netloc if name.lower() == b"host" else value) for name, value in items]
        items.extend(own)
        ext = dict(extensions) if extensions else {}
        ext["timeout"] = timeout or self._timeout_ext
        request = Request(method, url, headers=items, stream=httpx.ByteStream(body), extensions=ext)
        request.read()
        return request

    def build_request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Request:
        """A request against this client's base URL (for auth backends' login steps), with
        this client's default headers and per-phase timeouts."""
        self._ensure_open()
        return self._build(method, path, json=json, params=params, headers=headers, cache_url=False)

    # -- requests ------------------------------------------------------------------------------

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
        """Send one call with retries inside the deadline; return the response or raise.

        ``idempotent`` overrides the method's default for retry decisions (a POST that is safe
        to repeat, such as a read-only search, may pass True). ``path_template`` replaces a
        path holding a secret (a reset token) in logs and error messages. With
        ``raise_for_status=False`` an error status is returned, not raised, and not retried
        (the caller reads it: a login challenge, a code-bearing step that must not be resent).
        """
        self._ensure_open()
        policy = self.retry_policy
        idem = policy.is_idempotent(method) if idempotent is None else idempotent
        deadline = self._deadline
        max_retries = policy.max_retries
        timeout: dict[str, Any] | None = None
        if options is not None:
            if options.deadline is not None:
                deadline = options.deadline
            if options.max_retries is not None:
                max_retries = options.max_retries
            if options.timeout is not None:
                timeout = Timeout(options.timeout).as_dict()
            if options.headers:
                headers = {**(headers or {}), **options.headers}
        extensions: dict[str, Any] | None = None
        if path_template is not None:
            extensions = {PATH_TEMPLATE_EXTENSION: path_template}
            mask_templated_segments(self._url(path, False).raw_path.decode("ascii"), path_template)
        auth = self._auth if authenticated else None
        if auth is not None and self._static_auth and "://" not in path:
            # A one-header credential to our own base URL: no auth flow needed per request.
            name, value = auth.static_header()  # type: ignore[attr-defined]
            headers = {**headers, name: value} if headers else {name: value}
            auth = None
        request = self._build(
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            timeout=timeout,
            extensions=extensions,
            cache_url=path_template is None,
        )
        attempts = self._attempts(
            request,
            auth,
            idempotent=idem,
            max_retries=max_retries,
            retry_status=raise_for_status,
            raise_for_status=raise_for_status,
        )
        if deadline is None:
            return await attempts
        return await self._under_deadline(attempts, deadline, request)

    async def send_unauthenticated(self, request: Request, *, max_retries: int | None = None) -> Response:
        """Send a request built elsewhere (an auth backend's login step) without auth.

        The same attempt loop as every call: per-phase timeouts (this client's, unless the
        request carries its own), the closed state checked before each attempt, retries by the
        policy (``max_retries=0`` for a code-bearing step that must never be resent), no 3xx
        followed (:class:`~mfa_common.errors.RedirectError`). Any other status is returned, not
        raised, so the auth backend can read challenges (207, 401 + X-MFA-Token). Runs under
        the caller's deadline; raises only the SDK's typed errors.
        """
        self._ensure_open()
        request.extensions.setdefault("timeout", self._timeout_ext)
        policy = self.retry_policy
        return await self._attempts(
            request,
            None,
            idempotent=policy.is_idempotent(request.method),
            max_retries=policy.max_retries if max_retries is None else max_retries,
            retry_status=True,
            raise_for_status=False,
        )

    async def within_deadline(
        self,
        func: Callable[[], Awaitable[T]],
        *,
        options: RequestOptions | None = None,
        what: str,
    ) -> T:
        """Run ``func()`` (an explicit login, a manual step) under the client's total deadline,
        or ``options.deadline``; its expiry raises APITimeoutError naming ``what``."""
        self._ensure_open()
        deadline = self._deadline
        if options is not None and options.deadline is not None:
            deadline = options.deadline
        if deadline is None:
            return await func()
        return await self._under_deadline(func(), deadline, what)

    async def _under_deadline(self, work: Awaitable[T], deadline: float, what: Request | str) -> T:
        """``await work`` within ``deadline`` seconds. Only this deadline's own expiry becomes
        APITimeoutError; a TimeoutError raised inside (a code provider's own) passes unchanged."""
        if _NATIVE_ASYNCIO_TIMEOUT and sniffio.current_async_library() == "asyncio":
            # Same semantics as anyio.move_on_after, at a third of the cost per call. asyncio is
            # imported here, not at the top: it is loaded already when it runs the call, and a
            # Trio application (or a plain ``import``) does not pay for it.
            import asyncio

            scope = asyncio.timeout(deadline)  # type: ignore[attr-defined,unused-ignore]
            try:
                async with scope:
                    return await work
            except TimeoutError as exc:
                if scope.expired():
                    raise self._deadline_error(what, deadline) from exc
                raise
        import anyio  # Trio: loaded by the first call, not by an import of the SDK

        with anyio.move_on_after(deadline) as cancel_scope:
            return await work
        if cancel_scope.cancelled_caught:
            raise self._deadline_error(what, deadline)
        raise AssertionError("unreachable")  # pragma: no cover

    def _deadline_error(self, what: Request | str, deadline: float) -> APITimeoutError:
        if isinstance(what, Request):
            method, url = describe(what)
            return APITimeoutError(
                f"{method} {url}: no answer within the {deadline} s deadline", method=method, url=url
            )
        return APITimeoutError(f"{what}: not finished within the {deadline} s deadline")

    async def _attempts(
        self,
        request: Request,
        auth: Auth | None,
        *,
        idempotent: bool,
        max_retries: int,
        retry_status: bool,
        raise_for_status: bool,
    ) -> Response:
        """The one attempt loop: send, classify the answer, retry or return or raise."""
        policy = self.retry_policy
        write = request.method not in _SAFE_METHODS
        attempt = 0
        while True:
            if self._closed:
                raise ClientClosedError("the client was closed before this request was sent")
            debug = debug_enabled()
            started = time.monotonic() if debug else 0.0
            tracer = _tracing.ACTIVE
            try:
                if tracer is None:
                    response = await self._send(request, auth)
                else:
                    response = await self._traced_send(tracer, request, auth, attempt + 1)
            except _AnswerLost as lost:
                exc = lost.cause
                if attempt < max_retries and policy.retry_exception(exc, idempotent=idempotent):
                    attempt += 1
                    await _sleep(policy.backoff(attempt) or 0)
                    continue
                if isinstance(exc, ResponseTooLargeError):
                    if write and 200 <= lost.status < 300:
                        raise self._unknown_outcome(request, lost.status, "its body is too large") from exc
                    raise self._too_large(exc, request) from exc
                if write:
                    raise self._unknown_outcome(request, lost.status, type(exc).__name__) from exc
                raise self._connection_error(exc, request, idempotent) from exc
            except ResponseTooLargeError as exc:
                raise self._too_large(exc, request) from exc
            except TransportError as exc:
                if attempt < max_retries and policy.retry_exception(exc, idempotent=idempotent):
                    attempt += 1
                    if debug:
                        log_debug(
                            "retry %d after %s on %s %s", attempt, type(exc).__name__, *describe(request)
                        )
                    await _sleep(policy.backoff(attempt) or 0)
                    continue
                raise self._connection_error(exc, request, idempotent) from exc
            status = response.status_code
            if debug:
                self._log_answer(request, status, started, attempt + 1)
            if 200 <= status < 300:
                if json_body_ok(response):
                    return response
                if idempotent and attempt < max_retries:
                    # A read whose JSON body arrived broken is as safe to repeat as a 503.
                    attempt += 1
                    await _sleep(policy.backoff(attempt) or 0)
                    continue
                if write:
                    raise self._unknown_outcome(request, status, "its body is not valid JSON")
                return response  # a read: the caller's parse raises ResponseDecodeError
            if 300 <= status < 400:
                raise self._redirect_error(response)
            if status < 400:
                return response
            if retry_status:
                delay = policy.status_delay(response, attempt=attempt, idempotent=idempotent)
                if delay is not None and attempt < max_retries:
                    attempt += 1
                    await _sleep(delay)
                    continue
            if not raise_for_status:
                return response
            raise self._error_mapper(response)

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
        self, tracer: Tracer, request: Request, auth: Auth | None, attempt: int
    ) -> Response:
        template = request.extensions.get(PATH_TEMPLATE_EXTENSION)
        return await _tracing.traced_exchange(
            tracer,
            lambda: self._send(request, auth),
            request,
            template=template if isinstance(template, str) else None,
            base_path=self.base_url.path,
            api=self.api_name,
            attempt=attempt,
        )

    async def _send(self, request: Request, auth: Auth | None) -> Response:
        """One exchange, body read, through the auth flow when there is one.

        The transport is called directly: ``AsyncClient.send`` adds redirect handling, a
        cookie jar, event hooks and an INFO log line that this client does not use (it never
        follows redirects, and credentials travel only as the auth backend sets them), at
        about the cost of the transport itself per request."""
        if auth is None:
            return await self._exchange(request)
        flow = auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._exchange(request)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
        finally:
            await flow.aclose()

    async def _exchange(self, request: Request) -> Response:
        """Send ``request`` and read its answer within the size limits."""
        transport = self._active_transport
        if transport is None or self._closed:
            raise ClientClosedError("the client was closed before this request was sent")
        request.extensions.setdefault("timeout", self._timeout_ext)
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            encoded = self._check_head(response)
            await self._read_body(response, encoded)
        except TransportError as exc:
            await response.aclose()
            raise _AnswerLost(exc, response.status_code) from exc
        except ResponseTooLargeError as exc:
            await response.aclose()
            raise _AnswerLost(exc, response.status_code) from exc
        except BaseException:
            await response.aclose()
            raise
        return response

    def _check_head(self, response: Response) -> bool:
        """Refuse a head above the header limit or announcing a body above the body limit;
        return whether the body is content-encoded. One pass over the raw header lines."""
        limit = self.max_header_bytes
        size = 0
        length: bytes | None = None
        encoding: bytes | None = None
        for name, value in response.headers.raw:
            size += len(name) + len(value) + 4
            lower = name.lower()
            # Repeated fields read as one comma-joined value, as Headers.get gives them.
            if lower == b"content-length":
                length = value if length is None else length + b", " + value
            elif lower == b"content-encoding":
                encoding = value if encoding is None else encoding + b", " + value
        if size > limit:
            raise ResponseTooLargeError(
                f"response headers of {size} bytes exceed the {limit}-byte limit",
                limit=limit,
                status_code=response.status_code,
            )
        if length and length.isdigit() and int(length) > self.max_body_bytes:
            raise ResponseTooLargeError(
                f"response body of {length.decode('ascii')} bytes exceeds the "
                f"{self.max_body_bytes}-byte limit",
                limit=self.max_body_bytes,
                status_code=response.status_code,
            )
        return encoding is not None and encoding.lower() not in (b"", b"identity")

    async def _read_body(self, response: Response, encoded: bool) -> None:
        """Stream the body in, counting: past the limit it is refused, never buffered whole."""
        limit = self.max_body_bytes
        if hasattr(response, "_content"):  # a transport that hands over a body already in memory
            if len(response.content) > limit:
                raise _body_too_large(limit, response.status_code)
            return
        stream = response.stream
        chunk_iterator: AsyncIterable[bytes]
        if encoded or not isinstance(stream, AsyncByteStream):
            chunk_iterator = response.aiter_bytes() if encoded else response.aiter_raw()
        else:
            # An uncompressed body comes in the transport's own chunks, without httpx's
            # re-chunking layers (they cost about as much per small answer as reading it); the
            # response is closed below, as aiter_raw() would close it.
            response.is_stream_consumed = True
            chunk_iterator = stream
        chunks: list[bytes] = []
        size = 0
        async for chunk in chunk_iterator:
            size += len(chunk)
            if size > limit:
                raise _body_too_large(limit, response.status_code)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what Response.aread() stores
        await response.aclose()

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

    def _unknown_outcome(self, request: Request, status: int, why: str) -> OutcomeUnknownError:
        method, url = describe(request)
        return OutcomeUnknownError(
            f"{method} {url}: the request was sent but its answer ({status}) could not be read "
            f"({why}); the write may have been applied: check before repeating it",
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

    def _connection_error(
        self, exc: TransportError, request: Request, idempotent: bool
    ) -> APIConnectionError:
        """The typed error of a failed send. A non-idempotent request that may have reached the
        server is an unknown outcome (its write may have been applied), like an answer lost
        mid-body: ``OutcomeUnknownTimeoutError`` for a timeout, else ``OutcomeUnknownError``."""
        method, url = describe(request)
        sent = not request_not_sent(exc)
        timeout = isinstance(exc, TimeoutException)
        if sent and not idempotent:
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

    def map_error(self, response: Response) -> APIStatusError:
        """The typed error for an error response, by this client's API-specific mapper."""
        return self._error_mapper(response)
