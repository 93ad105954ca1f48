"""The HTTP machinery both API clients stand on.

:class:`BaseClient` owns one ``httpx.AsyncClient`` (created when the first request is sent, so
the transport fits the running event loop) and gives every call:

* an explicit lifecycle (``async with`` / ``aclose()``); use after close raises;
* finite timeouts per phase and a total deadline across retries and backoff sleeps;
* retries by :class:`~mfa_common.retry.RetryPolicy` (never a blind retry of a write);
* errors mapped onto :mod:`mfa_common.errors` by an API-specific mapper;
* redacted DEBUG logging;
* refusal to send credentials over plain ``http://`` to a non-loopback host, and no redirects
  followed (credentials never reach another origin).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json as _json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import attrs
import cattrs
import sniffio

from . import _constants as C
from ._httpx import (
    URL,
    AsyncBaseTransport,
    AsyncClient,
    Auth,
    Limits,
    Request,
    Response,
    Timeout,
    TimeoutException,
    TransportError,
)
from ._logging import (
    debug_enabled,
    log_debug,
    mask_templated_segments,
    protect_third_party_loggers,
    redact_url,
)
from ._transports import TransportFactory
from .auth.static import StaticHeaderAuth
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    InsecureTransportError,
    InvalidInputError,
    RateLimitError,
    ResponseDecodeError,
    status_error_class,
)
from .retry import RetryPolicy, parse_retry_after, request_not_sent

T = TypeVar("T")

ErrorMapper = Callable[[Response], APIStatusError]

PATH_TEMPLATE_EXTENSION = "mfa_sdk_path_template"
# The decoded JSON body, kept on the response when the client already parsed it.
JSON_EXTENSION = "mfa_sdk_json"

_NATIVE_ASYNCIO_TIMEOUT = sys.version_info >= (3, 11)


@attrs.frozen
class RequestOptions:
    """Per-call overrides: ``timeout`` (seconds per phase), ``deadline`` (seconds for the whole
    call including retries), ``max_retries``, extra ``headers``."""

    timeout: float | None = None
    deadline: float | None = None
    max_retries: int | None = None
    headers: Mapping[str, str] | None = None


def path_segment(value: str, what: str = "id") -> str:
    """``value`` made safe as one URL path segment (percent-encoded), or InvalidInputError.

    Refused before anything is sent: empty or blank values, ``.`` and ``..`` (a URL join would
    climb out of the resource), and control characters. A ``/`` is encoded, never a separator.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what} must be a non-empty string")
    if value in (".", "..") or len(value) > 1024 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInputError(f"{what} is not a valid identifier")
    return quote(value, safe="")


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


def request_id_of(response: Response) -> str | None:
    """The server's request id, under any of the usual header names."""
    headers = response.headers
    for name in ("x-request-id", "request-id", "x-amzn-requestid"):
        value = headers.get(name)
        if value:
            return str(value)
    return None


# What json.loads raises on bad input: a deeply nested body exhausts the recursion limit.
JSON_ERRORS = (ValueError, UnicodeDecodeError, RecursionError)


def json_or_none(content: bytes) -> Any:
    """The decoded JSON of ``content``, or None when it is empty or not JSON (never raises)."""
    if not content:
        return None
    try:
        return _json.loads(content)
    except JSON_ERRORS:
        return None


def _json_body_ok(response: Response) -> bool:
    """Decode a JSON body once, keeping the result for :func:`parse_json_body`; False if broken."""
    if not response.content or "json" not in response.headers.get("content-type", ""):
        return True
    try:
        response.extensions[JSON_EXTENSION] = _json.loads(response.content)
    except JSON_ERRORS:
        return False
    return True


def parse_json_body(response: Response) -> Any:
    """The JSON body, or ResponseDecodeError (never the raw body in the message)."""
    if JSON_EXTENSION in response.extensions:
        return response.extensions[JSON_EXTENSION]
    try:
        return _json.loads(response.content) if response.content else None
    except JSON_ERRORS as exc:
        raise decode_error(
            response, f"response body is not valid JSON ({len(response.content)} bytes)"
        ) from exc


def decode_error(response: Response, problem: str) -> ResponseDecodeError:
    """A ResponseDecodeError for ``response``: ``"<METHOD> <redacted URL>: <problem>"`` (the
    problem must not quote the body)."""
    method, url = describe(response.request)
    return ResponseDecodeError(
        f"{method} {url}: {problem}",
        status_code=response.status_code,
        method=method,
        url=url,
        request_id=request_id_of(response),
    )


def describe(request: Request | None) -> tuple[str | None, str | None]:
    """(method, redacted URL) of a request, for messages and logs."""
    if request is None:
        return None, None
    template = request.extensions.get(PATH_TEMPLATE_EXTENSION)
    return request.method, redact_url(request.url, template if isinstance(template, str) else None)


def structure(converter: cattrs.Converter, data: Any, cls: type[T], response: Response) -> T:
    """Turn decoded JSON into a model; a shape mismatch becomes ResponseDecodeError."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise decode_error(response, f"response does not match {cls.__name__}") from exc


def build_status_error(
    response: Response,
    *,
    server_message: str | None = None,
    error_code: int | str | None = None,
    details: Mapping[str, Any] | None = None,
    body: Any = None,
    cls: type[APIStatusError] | None = None,
    **extra: Any,
) -> APIStatusError:
    """An APIStatusError of the right class for ``response``, with a message free of secrets."""
    status = response.status_code
    cls = cls or status_error_class(status)
    method, url = describe(response.request)
    text = f"{method} {url} -> {status}"
    if error_code is not None:
        text += f" [code {error_code}]"
    if server_message:
        text += f": {server_message[:300]}"
    if cls is RateLimitError or issubclass(cls, RateLimitError):
        extra.setdefault(
            "retry_after", parse_retry_after(response.headers.get("retry-after"), now=time.time())
        )
    return cls(
        text,
        status_code=status,
        body=body,
        error_code=error_code,
        server_message=server_message,
        details=details,
        response=response,
        method=method,
        url=url,
        request_id=request_id_of(response),
        **extra,
    )


def default_error_mapper(response: Response) -> APIStatusError:
    """Reads ``message`` / ``msg`` / ``error`` from a JSON body when there is one."""
    message: str | None = None
    body = json_or_none(response.content)
    if isinstance(body, dict):
        raw = body.get("message") or body.get("msg") or body.get("error")
        message = raw if isinstance(raw, str) else None
    return build_status_error(response, server_message=message, body=body)


class BaseClient:
    """Shared lifecycle, retries, deadline and error mapping; see the module docstring."""

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
    ) -> None:
        self.base_url = URL(str(base_url).rstrip("/") + "/")
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
        self._headers = {
            "User-Agent": C.USER_AGENT,
            "Accept": "application/json",
            **(headers or {}),
        }
        self._error_mapper = error_mapper or default_error_mapper
        self._client: AsyncClient | None = None
        self._active_transport: AsyncBaseTransport | None = None
        self._closed = False
        protect_third_party_loggers()

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self: Any) -> Any:
        self._ensure_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Subclasses log out first where the API has a logout."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        # The kind of credential, never its value: the backend's class name only.
        auth = type(self._auth).__name__ if self._auth is not None else None
        return f"{type(self).__name__}(base_url={str(self.base_url)!r}, auth={auth}, closed={self._closed})"

    def _ensure_open(self) -> AsyncClient:
        if self._closed:
            raise ClientClosedError("the client is closed")
        client = self._client
        if client is None:
            transport = self._transport or TransportFactory(limits=self._limits, verify=self._verify)()
            self._active_transport = transport
            client = self._client = AsyncClient(
                base_url=self.base_url,
                transport=transport,
                timeout=self._timeout,
                headers=self._headers,
                follow_redirects=False,
                trust_env=False,
            )
        return client

    @property
    def auth(self) -> Auth | None:
        return self._auth

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
        path holding a secret (a reset token) in logs and error messages.
        """
        client = self._ensure_open()
        policy = self.retry_policy
        idem = policy.is_idempotent(method) if idempotent is None else idempotent
        deadline = self._deadline
        max_retries = policy.max_retries
        timeout = self._timeout
        if options is not None:
            if options.deadline is not None:
                deadline = options.deadline
            if options.max_retries is not None:
                max_retries = options.max_retries
            if options.timeout is not None:
                timeout = Timeout(options.timeout)
            if options.headers:
                headers = {**(headers or {}), **options.headers}
        extensions: dict[str, Any] = {}
        if path_template is not None:
            extensions[PATH_TEMPLATE_EXTENSION] = path_template
            mask_templated_segments(self.base_url.join(path).raw_path.decode("ascii"), path_template)
        auth = self._auth if authenticated else None
        if auth is not None and self._static_auth and "://" not in path:
            # A one-header credential to our own base URL: no auth flow needed per request.
            name, value = auth.static_header()  # type: ignore[attr-defined]
            headers = {**headers, name: value} if headers else {name: value}
            auth = None
        send = self._send_with_retries(
            client,
            method,
            path,
            json,
            params,
            headers,
            timeout,
            extensions,
            auth,
            idem,
            max_retries,
            raise_for_status,
        )
        try:
            if deadline is None:
                return await send
            if _NATIVE_ASYNCIO_TIMEOUT and sniffio.current_async_library() == "asyncio":
                # Same semantics as anyio.fail_after, at a third of the cost per call.
                async with asyncio.timeout(deadline):  # type: ignore[attr-defined,unused-ignore]
                    return await send
            with anyio.fail_after(deadline):
                return await send
        except TimeoutError as exc:
            raise APITimeoutError(
                f"{method} {redact_url(self.base_url.join(path), path_template)}: "
                f"no answer within the {deadline} s deadline",
                method=method,
                url=redact_url(self.base_url.join(path), path_template),
            ) from exc

    async def _send_with_retries(
        self,
        client: AsyncClient,
        method: str,
        path: str,
        json: Any,
        params: Any,
        headers: Mapping[str, str] | None,
        timeout: Timeout,
        extensions: dict[str, Any],
        auth: Auth | None,
        idempotent: bool,
        max_retries: int,
        raise_for_status: bool,
    ) -> Response:
        policy = self.retry_policy
        attempt = 0
        while True:
            request = client.build_request(
                method,
                path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout,
                extensions=extensions or None,
            )
            debug = debug_enabled()
            started = time.perf_counter() if debug else 0.0
            try:
                response = await self._send(request, auth)
            except TransportError as exc:
                if attempt < max_retries and policy.retry_exception(exc, idempotent=idempotent):
                    attempt += 1
                    delay = policy.backoff(attempt)
                    if debug:
                        log_debug(
                            "retry %d after %s on %s %s",
                            attempt,
                            type(exc).__name__,
                            *describe(request),
                        )
                    await anyio.sleep(delay or 0)
                    continue
                raise self._connection_error(exc, request) from exc
            if debug:
                m, u = describe(request)
                log_debug(
                    "%s %s -> %d in %.1f ms (attempt %d)",
                    m,
                    u,
                    response.status_code,
                    (time.perf_counter() - started) * 1000,
                    attempt + 1,
                )
            status = response.status_code
            if status < 300 and idempotent and attempt < max_retries and not _json_body_ok(response):
                # A read whose JSON body arrived broken is as safe to repeat as a 503.
                attempt += 1
                await anyio.sleep(policy.backoff(attempt) or 0)
                continue
            if status < 400 or not raise_for_status:
                return response
            delay = self._status_retry_delay(response, attempt, max_retries, idempotent)
            if delay is not None:
                attempt += 1
                await anyio.sleep(delay)
                continue
            raise self._error_mapper(response)

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
        transport = self._active_transport
        assert transport is not None, "the client is not open"
        response = await transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response

    def _status_retry_delay(
        self, response: Response, attempt: int, max_retries: int, idempotent: bool
    ) -> float | None:
        """Seconds to wait before retrying after this error status, or None for no retry."""
        if attempt >= max_retries or not self.retry_policy.retry_status(
            response.status_code, idempotent=idempotent
        ):
            return None
        if response.headers.get("x-account-lockout") not in (None, "", "0"):
            return None  # a lockout is final: each retry would feed the lockout counter
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
        return self.retry_policy.backoff(attempt + 1, retry_after=retry_after)

    def _connection_error(self, exc: TransportError, request: Request) -> APIConnectionError:
        method, url = describe(request)
        sent = not request_not_sent(exc)
        cls = APITimeoutError if isinstance(exc, TimeoutException) else APIConnectionError
        return cls(
            f"{method} {url}: {type(exc).__name__}" + ("" if sent else " (the request was not sent)"),
            request_sent=sent,
            method=method,
            url=url,
        )

    async def send_unauthenticated(self, request: Request, *, max_retries: int | None = None) -> Response:
        """Send a request built elsewhere (an auth backend's login step) without auth.

        Retries follow the same policy (``max_retries`` overrides its count: 0 for a request
        carrying a one-time code); status errors are returned, not raised, so the auth backend
        can read challenges (207, 401 + X-MFA-Token).
        """
        self._ensure_open()
        policy = self.retry_policy
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        idem = policy.is_idempotent(request.method)
        attempt = 0
        while True:
            try:
                response = await self._send(request, None)
            except TransportError as exc:
                if attempt < policy.max_retries and policy.retry_exception(exc, idempotent=idem):
                    attempt += 1
                    await anyio.sleep(policy.backoff(attempt) or 0)
                    continue
                raise self._connection_error(exc, request) from exc
            delay = self._status_retry_delay(response, attempt, policy.max_retries, idem)
            if delay is not None:
                attempt += 1
                await anyio.sleep(delay)
                continue
            return response

    def build_request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Request:
        """A request against this client's base URL (for auth backends' login steps)."""
        return self._ensure_open().build_request(method, path, json=json, params=params, headers=headers)

    def map_error(self, response: Response) -> APIStatusError:
        """The typed error for an error response, by this client's API-specific mapper."""
        return self._error_mapper(response)
