"""OpenTelemetry spans for every HTTP attempt and every login (the optional ``otel`` extra).

Tracing is off until :func:`enable_tracing` is called; until then the SDK never imports
``opentelemetry`` and the only cost per request is reading :data:`ACTIVE` (None).

Once on, the SDK makes:

* one CLIENT span per HTTP attempt (calls and login steps alike), named
  ``"{method} {route template}"`` and carrying the attributes of the OpenTelemetry HTTP
  conventions: ``http.request.method``, ``url.template`` (the route template when the SDK has
  one, such as ``/api/users/{id}/reset/{token}``; otherwise the request path; never a query),
  ``http.response.status_code``, ``http.request.resend_count``, ``error.type`` (an exception's
  type name or the status code, never a message), plus ``mfa.api`` (``quatrix``,
  ``metalcloud``, ``xmfa``), ``mfa.attempt`` (1 for the first) and, for a login step,
  ``mfa.login_step`` (``password``, ``code``, ``renew``);
* one INTERNAL span ``mfa.login`` around each login (``mfa.api``), with an event per one-time code sent
  (``mfa.code.settled``: the challenge kind and what the server did with it, never the code).

No header, body, query value, code, password, session id, token or key goes into a span.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ._httpx import Request, Response

__all__ = [
    "ACTIVE",
    "LOGIN_STEP_EXTENSION",
    "code_settled",
    "disable_tracing",
    "enable_tracing",
    "traced_exchange",
    "traced_login",
]

P = ParamSpec("P")
T = TypeVar("T")

#: The tracer in use, or None: tracing off. Read once per attempt by the client.
ACTIVE: Tracer | None = None

#: Request extension naming the login step a request is (set by the login driver).
LOGIN_STEP_EXTENSION = "mfa_sdk_login_step"

OTEL_EXTRA_INSTALL = "pip install 'mfa-sdks[otel]'"
_INSTRUMENTATION = "mfa_common"


def enable_tracing(tracer_provider: TracerProvider | None = None) -> None:
    """Make spans from now on, through ``tracer_provider`` (default: the global one that
    ``opentelemetry.trace.set_tracer_provider`` installed). Needs the ``otel`` extra."""
    global ACTIVE
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError(f"tracing needs opentelemetry-api: {OTEL_EXTRA_INSTALL}") from exc
    from . import __version__

    ACTIVE = trace.get_tracer(_INSTRUMENTATION, __version__, tracer_provider=tracer_provider)


def disable_tracing() -> None:
    """Stop making spans (the default)."""
    global ACTIVE
    ACTIVE = None


def route_of(request: Request, template: str | None, base_path: str) -> str:
    """The route template (a relative one under ``base_path``), or the request's path when the
    SDK has no template; never a query."""
    if template is None:
        return request.url.path
    template = template.split("?", 1)[0]
    if template.startswith("/"):
        return template
    return base_path.rstrip("/") + "/" + template


def _error_type(exc: BaseException) -> str:
    # The client wraps a lost answer; its cause names what happened on the wire.
    cause = getattr(exc, "cause", None)
    return type(cause if isinstance(cause, BaseException) else exc).__name__


async def traced_exchange(
    tracer: Tracer,
    send: Callable[[], Awaitable[Response]],
    request: Request,
    *,
    template: str | None,
    base_path: str,
    api: str,
    attempt: int,
) -> Response:
    """``await send()`` (one attempt of ``request``) inside a CLIENT span; see the module
    docstring for its name and attributes."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    route = route_of(request, template, base_path)
    attributes: dict[str, Any] = {
        "http.request.method": request.method,
        "url.template": route,
        "server.address": request.url.host,
        "mfa.api": api,
        "mfa.attempt": attempt,
    }
    if request.url.port is not None:
        attributes["server.port"] = request.url.port
    if attempt > 1:
        attributes["http.request.resend_count"] = attempt - 1
    step = request.extensions.get(LOGIN_STEP_EXTENSION)
    if isinstance(step, str):
        attributes["mfa.login_step"] = step
    with tracer.start_as_current_span(
        f"{request.method} {route}",
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            response = await send()
        except BaseException as exc:
            # The type only: an exception's message may quote a server's words or a URL.
            span.set_attribute("error.type", _error_type(exc))
            span.set_status(Status(StatusCode.ERROR))
            raise
        status = response.status_code
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_attribute("error.type", str(status))
            span.set_status(Status(StatusCode.ERROR))
        return response


@contextmanager
def _login_span(tracer: Tracer, api: str) -> Iterator[Span]:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    with tracer.start_as_current_span(
        "mfa.login",
        kind=SpanKind.INTERNAL,
        attributes={"mfa.api": api},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", _error_type(exc))
            span.set_status(Status(StatusCode.ERROR))
            raise


def traced_login(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Wrap a login driver so each run is an ``mfa.login`` span (with the ``api=`` keyword of
    the call as ``mfa.api``) when tracing is on."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        tracer = ACTIVE
        if tracer is None:
            return await func(*args, **kwargs)
        api = kwargs.get("api")
        with _login_span(tracer, api if isinstance(api, str) else "http"):
            return await func(*args, **kwargs)

    return wrapper


def code_settled(attributes: Mapping[str, str]) -> None:
    """Note a one-time code's settlement on the current span (the login's), when tracing."""
    if ACTIVE is None:
        return
    from opentelemetry import trace

    trace.get_current_span().add_event("mfa.code.settled", attributes=dict(attributes))
